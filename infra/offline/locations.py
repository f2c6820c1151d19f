"""Where each object of a check came from: a file and a line, for annotations on a pull request.

Line numbers are found by splitting each file at its document markers (`---` in
column 0), so locating costs one text scan per file on top of the parse, and is
only done when a report needs it (`check --format sarif`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from infra.offline.manifests import (
    MANIFEST_SUFFIXES,
    PLATFORM_FILE,
    Manifest,
    _Loader,
    expand_lists,
    ref,
)

# Release names carry the chart name before the stack's own name (mcp-server-tickets).
_RELEASE_PREFIXES = ("mcp-server-", "sandbox-runner-", "role-provisioner-")
_DOCUMENT_MARKER = re.compile(r"^---(?:\s|$)")


@dataclass(frozen=True)
class Location:
    path: str  # relative to the folder the report is about, with forward slashes
    line: int  # 1-based


def document_lines(text: str) -> list[int]:
    """The 1-based line of the first content line of each non-empty YAML document."""
    starts: list[int] = []
    first_content: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if _DOCUMENT_MARKER.match(line):
            if first_content is not None:
                starts.append(first_content)
            first_content = None
            rest = line[3:].strip()
            if rest and not rest.startswith("#"):
                first_content = number  # `--- {kind: ...}`: the document starts on the marker
            continue
        stripped = line.strip()
        if first_content is None and stripped and not stripped.startswith(("#", "%", "...")):
            first_content = number
    if first_content is not None:
        starts.append(first_content)
    return starts


def _key(manifest: Manifest) -> tuple[str, str, str]:
    meta = manifest.get("metadata") or {}
    return (str(manifest.get("kind", "?")), str(meta.get("namespace") or ""), str(meta.get("name")))


class LocationIndex:
    """Object -> Location; an object placed into a namespace later is still found."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str, str], Location] = {}
        self._by_ref: dict[str, Location] = {}

    def add(self, manifest: Manifest, location: Location) -> None:
        self._by_key.setdefault(_key(manifest), location)

    def find(self, resource_ref: str, default: Location | None = None) -> Location | None:
        """A location by `Kind/namespace/name` (the ref every violation carries)."""
        kind, _, rest = resource_ref.partition("/")
        namespace, _, name = rest.partition("/")
        namespace = "" if namespace == "-" else namespace
        return (
            self._by_key.get((kind, namespace, name))
            or self._by_key.get((kind, "", name))
            or self._by_ref.get(resource_ref)
            or default
        )


def locate_dir(folder: Path) -> LocationIndex:
    """Where every object under a folder (or in one file) starts."""
    index = LocationIndex()
    root = folder if folder.is_dir() else folder.parent
    files = (
        sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES
        )
        if folder.is_dir()
        else [folder]
    )
    for path in files:
        if path.name == PLATFORM_FILE:
            continue
        text = path.read_text()
        documents = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
        lines = document_lines(text) if path.suffix.lower() != ".json" else [1]
        if len(lines) != len(documents):
            lines = [1] * len(documents)  # an unusual layout: the file is still right
        relative = path.relative_to(root).as_posix()
        for doc, line in zip(documents, lines, strict=True):
            if isinstance(doc, dict):
                for manifest in expand_lists(doc, path):
                    index.add(manifest, Location(relative, line))
    return index


def locate_in_stack_file(
    stack_file: Path, manifests: list[Manifest], relative: str
) -> LocationIndex:
    """Objects rendered from a stack, mapped to the line of the stack file that declares them.

    A rendered object is not a file in the repository, so a pull-request
    annotation goes where the change is made: the stack file, at the first line
    naming the object's workload (its `app.kubernetes.io/instance` label or its
    name), else line 1.
    """
    index = LocationIndex()
    lines = stack_file.read_text().splitlines()
    for manifest in manifests:
        meta = manifest.get("metadata") or {}
        labels = meta.get("labels") or {}
        instance = str(labels.get("app.kubernetes.io/instance") or "")
        candidates = [
            instance.removeprefix(prefix)
            for prefix in _RELEASE_PREFIXES
            if instance.startswith(prefix)
        ] + [instance, meta.get("name")]
        line = 1
        for candidate in candidates:
            if not candidate:
                continue
            pattern = re.compile(rf"(?:name|-)\s*:?\s*['\"]?{re.escape(str(candidate))}['\"]?\s*$")
            found = next((n for n, text in enumerate(lines, 1) if pattern.search(text)), None)
            if found is not None:
                line = found
                break
        index.add(manifest, Location(relative, line))
    return index


__all__ = [
    "Location",
    "LocationIndex",
    "document_lines",
    "locate_dir",
    "locate_in_stack_file",
    "ref",
]
