"""Reading and writing folders of Kubernetes manifests (the offline exchange format)."""

from __future__ import annotations

import collections
import copy
import json
import multiprocessing
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import yaml

Manifest = dict[str, Any]
# libyaml is ~10x faster than the pure-Python parser on a folder of hundreds of objects.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
PARALLEL_FROM = 200  # files; below this, starting workers costs more than it saves
LOAD_SLICES_PER_WORKER = 4  # small enough that the first slices come back early


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


# The order `kubectl apply -f <folder>` (which takes files by name) must create objects in,
# the engine's own: the namespace, its admission guards, its quota, the fences before any
# workload, then accounts, credentials and config, Services, and the workloads last.
APPLY_ORDER: Mapping[str, int] = {
    "Namespace": 0,
    "ValidatingAdmissionPolicy": 1,
    "ValidatingAdmissionPolicyBinding": 2,
    "ResourceQuota": 3,
    "LimitRange": 3,
    "NetworkPolicy": 4,
    "ServiceAccount": 5,
    "Role": 5,
    "RoleBinding": 5,
    "Secret": 6,
    "ConfigMap": 6,
    "Service": 7,
    **dict.fromkeys(("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"), 8),
}
LAST_IN_ORDER = 9


def applied_file_name(manifest: Manifest) -> str:
    """`file_name`, prefixed with the object's place in APPLY_ORDER."""
    order = APPLY_ORDER.get(str(manifest.get("kind")), LAST_IN_ORDER)
    return f"{order:02d}-{file_name(manifest)}"


def _first(mapping: Manifest, head: tuple[str, ...]) -> Manifest:
    ordered = {k: mapping[k] for k in head if k in mapping}
    ordered.update({k: v for k, v in mapping.items() if k not in head})
    return ordered


def conventional_order(manifest: Manifest) -> Manifest:
    """apiVersion, kind, metadata first, and the name and namespace first in metadata, the
    way people read and diff manifests (the engine's round trip does not keep key order)."""
    ordered = _first(manifest, ("apiVersion", "kind", "metadata"))
    if isinstance(ordered.get("metadata"), dict):
        ordered["metadata"] = _first(ordered["metadata"], ("name", "namespace"))
    return ordered


RENDER_MARKER = ".agent-perimeter-render"  # no YAML/JSON extension: never read as a manifest


def write_dir(
    manifests: Iterable[Manifest],
    out: Path,
    extra: Mapping[str, str] | None = None,
    manifests_dir: str | None = None,
) -> list[Path]:
    """One file per object, written into a fresh temporary folder and then renamed into place.

    `extra` maps a file name to its text (platform.json): written and replaced with the rest.
    `manifests_dir`: the objects go into that subfolder alone, named in APPLY_ORDER, so
    `kubectl apply --server-side -f <out>/<manifests_dir>` (and a GitOps tool pointed at it)
    applies exactly them, in an order the API server accepts.

    `out` must not exist, be empty, or be a folder this function wrote before
    (its marker lists every file in it); anything else is refused untouched, so
    no file render did not write is ever deleted or overwritten.
    """
    target = Path(os.path.abspath(out))
    previous = _previous_render(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.render-", dir=target.parent))
    try:
        files: dict[str, Manifest] = {}
        for manifest in manifests:
            name = (
                f"{manifests_dir}/{applied_file_name(manifest)}"
                if manifests_dir
                else file_name(manifest)
            )
            if name in files:
                raise ManifestError(f"two objects would be written to {name}: {ref(manifest)}")
            files[name] = manifest
        names = list(files)
        if manifests_dir:
            (staging / manifests_dir).mkdir()
        for name, manifest in files.items():
            (staging / name).write_text(
                yaml.dump(conventional_order(manifest), Dumper=_Dumper, sort_keys=False)
            )
        for name, text in (extra or {}).items():
            if name in names:
                raise ManifestError(f"two files would be written to {name}")
            (staging / name).write_text(text)
        written = [*names, *(extra or {})]
        (staging / RENDER_MARKER).write_text(
            json.dumps({"written_by": "python -m infra render", "files": sorted(written)}, indent=2)
            + "\n"
        )
        _swap_into_place(staging, target, previous)
    except OSError as exc:
        _remove_own(staging, None)
        raise ManifestError(
            f"cannot write {target}: {exc.strerror}; nothing was replaced"
        ) from None
    except BaseException:
        _remove_own(staging, None)
        raise
    return [target / name for name in names]


def check_render_target(out: Path) -> None:
    """Refuse an unusable `--out` before any work is done (write_dir checks again)."""
    _previous_render(Path(os.path.abspath(out)))


def _previous_render(target: Path) -> list[str] | None:
    """The files of an earlier render at `target`; None when there is nothing there.
    Raises, naming the path, for anything render must not replace."""
    if not os.path.lexists(target):
        return None
    if target.is_symlink() or not target.is_dir():
        raise ManifestError(f"{target} exists and is not a folder; refusing to replace it")
    found = _entries(target)
    entries = sorted(found)
    if not entries:
        return []
    refusal = (
        f"{target} is not empty and was not written by render; refusing to write there "
        "(give a new or empty folder, or one render wrote before)"
    )
    marker = target / RENDER_MARKER
    if not found.get(RENDER_MARKER):
        raise ManifestError(refusal)
    try:
        files = json.loads(marker.read_text())["files"]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ValueError("files is not a list of names")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ManifestError(f"{marker} is not a render marker; {refusal}") from None
    listed = set(files)
    folders = {str(Path(f).parent) for f in listed} - {"."}
    foreign = [
        name
        for name in entries
        if name != RENDER_MARKER
        and not (name in folders and not found[name])  # a subfolder render wrote
        and (name not in listed or not found[name])
    ]
    if foreign:
        shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
        raise ManifestError(
            f"{target} holds {len(foreign)} file(s) render did not write ({shown}); "
            "refusing to replace it"
        )
    return [name for name in entries if name != RENDER_MARKER and found[name]]


def _entries(folder: Path) -> dict[str, bool]:
    """Every entry below `folder`, by relative path -> whether it is a regular file (a
    symlink never is). Subfolders are walked too, so nothing in one can be overlooked."""
    found: dict[str, bool] = {}
    pending = [Path()]
    while pending:
        relative = pending.pop()
        with os.scandir(folder / relative) as scan:  # file types from the directory: no stat
            for entry in scan:
                name = str(relative / entry.name)
                is_file = entry.is_file(follow_symlinks=False)
                found[name] = is_file
                if entry.is_dir(follow_symlinks=False):
                    pending.append(relative / entry.name)
    return found


def _swap_into_place(staging: Path, target: Path, previous: list[str] | None) -> None:
    if previous is None:
        os.rename(staging, target)
        return
    if not previous:
        os.rename(staging, target)  # replaces an empty folder atomically
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, retired / "render")
    os.rename(staging, target)
    _remove_own(retired / "render", previous)
    retired.rmdir()


def _remove_own(folder: Path, files: list[str] | None) -> None:
    """Delete a folder render made: the named files (all when None), its marker, the folder."""
    if not folder.exists():
        return
    if files is None:
        shutil.rmtree(folder)  # a staging folder this process made itself
        return
    for name in [*files, RENDER_MARKER]:
        (folder / name).unlink(missing_ok=True)
    for sub in sorted({Path(f).parent for f in files} - {Path()}, key=lambda p: -len(p.parts)):
        (folder / sub).rmdir()
    folder.rmdir()


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
        if str(doc.get("kind")) == "Kustomization":
            raise ManifestError(f"{path}: a Kustomization is an input to kustomize, not an object")
        manifests.extend(expand_lists(doc, path))
    return manifests


def expand_lists(doc: Manifest, path: Path | str = "input") -> list[Manifest]:
    """The objects of a document: a `List` or any `*List` kind (PodList, ...) is expanded,
    nested lists too."""
    kind = str(doc.get("kind") or "")
    if not kind.endswith("List") or "items" not in doc:
        return [doc]
    found: list[Manifest] = []
    for item in doc.get("items") or []:
        if not isinstance(item, dict) or "kind" not in item:
            raise ManifestError(f"{path}: an item of a {kind} is not a Kubernetes object (no kind)")
        found.extend(expand_lists(item, path))
    return found


# Folders whose YAML is an input to a tool, not the objects that tool would produce.
_TOOL_INPUTS = {
    "kustomization.yaml": "a kustomization (run `kustomize build` and check its output)",
    "kustomization.yml": "a kustomization (run `kustomize build` and check its output)",
    "kustomization": "a kustomization (run `kustomize build` and check its output)",
    "chart.yaml": "a Helm chart (run `helm template` and check its output)",
    "helmfile.yaml": "a helmfile (render it and check the output)",
}
MANIFEST_SUFFIXES = frozenset({".yaml", ".yml", ".json"})


def _refuse_tool_inputs(files: list[Path], folder: Path) -> None:
    for path in files:
        what = _TOOL_INPUTS.get(path.name.lower())
        if what is not None:
            raise ManifestError(
                f"{path} makes {folder} {what}: the check reads rendered manifests only and "
                "cannot tell what this folder would deploy"
            )


# (objects of a slice, the workers' submit or None): see load_dir.
OnLoaded = Callable[[list[Manifest], Callable[..., Future[Any]] | None], None]


def _read_files(paths: list[Path]) -> list[list[Manifest]]:
    return [_read_file(path) for path in paths]


# Written beside the manifests by `render`: the platform objects, not Kubernetes ones.
PLATFORM_FILE = "platform.json"
# Where render puts the objects, apart from the platform plan: a folder kubectl and GitOps
# tools apply as it is.
MANIFESTS_DIR = "manifests"


def load_dir(folder: Path, on_loaded: OnLoaded | None = None) -> list[Manifest]:
    """Every object in every *.yaml / *.yml / *.json file under a folder (multi-document aware).

    Parsing dominates on big environments, so large folders are read on every core, in
    slices: `on_loaded` gets each slice's objects as it comes back, and the workers' `submit`
    (None when there are none), so this process can start on them (the check reads role SQL)
    while the rest is still being parsed.
    """
    if not folder.exists():
        raise ManifestError(f"{folder} does not exist")
    if folder.is_file():
        files = [folder]
    else:
        every = sorted(p for p in folder.rglob("*") if p.is_file())
        _refuse_tool_inputs(every, folder)
        files = [
            p for p in every if p.suffix.lower() in MANIFEST_SUFFIXES and p.name != PLATFORM_FILE
        ]
    if not files:
        raise ManifestError(f"{folder} holds no .yaml, .yml or .json files")
    workers = min(os.cpu_count() or 1, 4)
    # fork is only safe before any thread exists (the CLI reading a folder, not a Pulumi run)
    if len(files) < PARALLEL_FROM or workers < 2 or threading.active_count() > 1:
        per_file = _read_files(files)
        if on_loaded is not None:
            on_loaded([manifest for manifests in per_file for manifest in manifests], None)
    else:
        # Largest first, the largest alone: the biggest file (a role script) comes back first.
        sizes = {path: path.stat().st_size for path in files}
        by_size = sorted(files, key=sizes.__getitem__, reverse=True)
        count = workers * LOAD_SLICES_PER_WORKER
        slices = [by_size[:1], *(by_size[1 + i :: count] for i in range(count))]
        context = multiprocessing.get_context("fork")
        loaded: dict[Path, list[Manifest]] = {}
        todo = collections.deque(part for part in slices if part)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            pending: dict[Future[list[list[Manifest]]], list[Path]] = {}
            while todo or pending:
                # Only as many slices as workers are queued, so work `on_loaded` submits starts
                # next instead of after every slice.
                while todo and len(pending) < workers:
                    part = todo.popleft()
                    pending[pool.submit(_read_files, part)] = part
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for done in finished:
                    result = done.result()
                    loaded.update(zip(pending.pop(done), result, strict=True))
                    if on_loaded is not None:
                        on_loaded([m for manifests in result for m in manifests], pool.submit)
        per_file = [loaded[path] for path in files]
    return [manifest for manifests in per_file for manifest in manifests]
