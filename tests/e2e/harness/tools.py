"""The real tools the tier needs: a `pulumi` on PATH when the user has one, else built from
Go modules into a cache outside the repo (`scripts/e2e/build-tools.sh`), reused by later runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "scripts" / "e2e" / "build-tools.sh"


def ensure(part: str) -> dict[str, Path]:
    """Run the build script for one part; it prints "<tool set> <bin dir>" per line."""
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), part], stdout=subprocess.PIPE, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"building the e2e tools ({part}) failed with exit {done.returncode}; "
            "the progress lines above say which step"
        )
    found = {}
    for line in done.stdout.splitlines():
        name, _, directory = line.partition(" ")
        found[name] = Path(directory)
    return found


@dataclass(frozen=True)
class Tools:
    control_plane: dict[str, Path]
    kwok_stages: Path
    engine_path: list[Path]  # directories to put first on PATH: `pulumi` and its language host
    kubectl: Path
    built_engine: bool  # False when the user's own `pulumi` (with its plugin cache) is used
    providers: dict[str, tuple[str, Path]]  # built providers: name -> (version, binary)

    @property
    def pulumi(self) -> str:
        for directory in self.engine_path:
            if (directory / "pulumi").exists():
                return str(directory / "pulumi")
        found = shutil.which("pulumi")
        if not found:
            raise RuntimeError("no pulumi CLI: neither on PATH nor built")
        return found

    def path_env(self) -> str:
        return os.pathsep.join([*map(str, self.engine_path), os.environ.get("PATH", "")])


def ensure_tools() -> Tools:
    cp = ensure("control-plane")
    engine = ensure("engine")
    bins: dict[str, Path] = {}
    for directory in cp.values():
        for binary in directory.iterdir():
            bins[binary.name] = binary
    return Tools(
        control_plane=bins,
        kwok_stages=cp["kwok"].parent / "stages",
        engine_path=[engine["pulumi"]],
        kubectl=bins["kubectl"],
        built_engine="pulumi-resource-kubernetes" in engine,
        providers={
            name.removeprefix("pulumi-resource-"): (
                directory.parent.name.rsplit("-", 1)[1],
                directory / name,
            )
            for name, directory in engine.items()
            if name.startswith("pulumi-resource-")
        },
    )
