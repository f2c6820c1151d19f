"""Reading and writing folders of Kubernetes manifests (the offline exchange format)."""

from __future__ import annotations

import copy
import multiprocessing
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]
# libyaml is ~10x faster than the pure-Python parser on a folder of hundreds of objects.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
PARALLEL_FROM = 200  # files; below this, starting workers costs more than it saves


class ManifestError(Exception):
    """Input that cannot be read as Kubernetes manifests."""


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SECRET_PLACEHOLDER = "<redacted:{name}/{key}>"


def redact(manifest: Manifest) -> Manifest:
    """A Secret without values: data keys kept with placeholders, last-applied copy dropped.

    The last-applied annotation `kubectl apply` writes holds the whole object,
    values included, so it is as secret as `data`.
    """
    if manifest.get("kind") != "Secret":
        return manifest
    out = copy.copy(manifest)
    meta = dict(out.get("metadata") or {})
    name = meta.get("name", "?")
    if LAST_APPLIED in (meta.get("annotations") or {}):
        meta["annotations"] = {k: v for k, v in meta["annotations"].items() if k != LAST_APPLIED}
    out["metadata"] = meta
    for key in ("data", "stringData"):
        if isinstance(out.get(key), dict):
            out[key] = {k: SECRET_PLACEHOLDER.format(name=name, key=k) for k in out[key]}
    return out


def ref(manifest: Manifest) -> str:
    """`Kind/namespace/name`, the way every report names an object."""
    meta = manifest.get("metadata") or {}
    namespace = meta.get("namespace") or "-"
    return f"{manifest.get('kind', '?')}/{namespace}/{meta.get('name', '?')}"


def file_name(manifest: Manifest) -> str:
    meta = manifest.get("metadata") or {}
    slug = re.sub(r"[^a-z0-9.-]+", "-", str(meta.get("name", "unnamed")).lower())
    return f"{str(manifest.get('kind', 'object')).lower()}-{slug}.yaml"


def conventional_order(manifest: Manifest) -> Manifest:
    """apiVersion, kind, metadata first, the way people read and diff manifests."""
    head = ("apiVersion", "kind", "metadata")
    ordered = {k: manifest[k] for k in head if k in manifest}
    ordered.update({k: v for k, v in manifest.items() if k not in head})
    return ordered


def write_dir(manifests: Iterable[Manifest], out: Path) -> list[Path]:
    """One file per object; an existing folder is emptied of YAML first so it mirrors the program."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    written: list[Path] = []
    for manifest in manifests:
        path = out / file_name(manifest)
        if path.exists():
            raise ManifestError(f"two objects would be written to {path.name}: {ref(manifest)}")
        path.write_text(yaml.dump(conventional_order(manifest), Dumper=_Dumper, sort_keys=False))
        written.append(path)
    return written


def _read_file(path: Path) -> list[Manifest]:
    try:
        documents = list(yaml.load_all(path.read_text(), Loader=_Loader))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not valid YAML: {exc}") from None
    manifests: list[Manifest] = []
    for doc in documents:
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc:
            raise ManifestError(f"{path}: a document is not a Kubernetes object (no kind)")
        if doc.get("kind") == "List":
            manifests.extend(i for i in doc.get("items") or [] if isinstance(i, dict))
        else:
            manifests.append(doc)
    return manifests


def _read_files(paths: list[Path]) -> list[list[Manifest]]:
    return [_read_file(path) for path in paths]


# Written beside the manifests by `render`: the platform objects, not Kubernetes ones.
PLATFORM_FILE = "platform.json"


def load_dir(folder: Path) -> list[Manifest]:
    """Every object in every *.yaml / *.yml / *.json file under a folder (multi-document aware).

    Parsing dominates on big environments, so large folders are read on every core.
    """
    if not folder.exists():
        raise ManifestError(f"{folder} does not exist")
    files = (
        [folder]
        if folder.is_file()
        else sorted(
            p
            for p in folder.rglob("*")
            if p.suffix in {".yaml", ".yml", ".json"} and p.name != PLATFORM_FILE
        )
    )
    if not files:
        raise ManifestError(f"{folder} holds no .yaml, .yml or .json files")
    workers = min(os.cpu_count() or 1, 4)
    # fork is only safe before any thread exists (the CLI reading a folder, not a Pulumi run)
    if len(files) < PARALLEL_FROM or workers < 2 or threading.active_count() > 1:
        per_file = _read_files(files)
    else:
        chunks = [files[i::workers] for i in range(workers)]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = list(pool.map(_read_files, chunks))
        order = {path: i for i, path in enumerate(files)}
        per_file = [[] for _ in files]
        for chunk, result in zip(chunks, results, strict=True):
            for path, manifests in zip(chunk, result, strict=True):
                per_file[order[path]] = manifests
    return [manifest for manifests in per_file for manifest in manifests]
