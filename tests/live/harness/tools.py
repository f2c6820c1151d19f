"""The live node's parts: the control plane and node binaries and the images, built once
into the tool cache by `scripts/e2e/build-tools.sh` (keyed by each recipe's digest)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.e2e.harness.tools import ensure


@dataclass(frozen=True)
class Image:
    ref: str  # the name the CRI knows it by
    archive: Path  # docker-archive tar, imported into containerd


@dataclass(frozen=True)
class LiveTools:
    binaries: dict[str, Path]
    images: dict[str, Image]


def ensure_live_tools() -> LiveTools:
    binaries: dict[str, Path] = {}
    for part in ("control-plane", "node"):
        for name, built in ensure(part).items():
            if name.startswith("kwok"):
                continue
            for binary in built.directory.iterdir():
                binaries[binary.name] = binary
    images = {}
    for name, built in ensure("images").items():
        if not name.startswith("image-"):
            continue  # a root filesystem the images are built from
        short = name.removeprefix("image-")
        images[short] = Image(
            (built.directory / f"{short}.ref").read_text().strip(),
            built.directory / f"{short}.tar",
        )
    return LiveTools(binaries, images)
