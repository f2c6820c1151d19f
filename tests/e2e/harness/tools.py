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


@dataclass(frozen=True)
class Built:
    directory: Path
    version: str  # "user" for the user's own `pulumi`


def ensure(part: str, env: dict[str, str] | None = None) -> dict[str, Built]:
    """Run the build script for one part; it prints "<tool> <bin dir> <version>" per line."""
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), part],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"building the e2e tools ({part}) failed with exit {done.returncode}; "
            "the progress lines above say which step"
        )
    found = {}
    for line in done.stdout.splitlines():
        name, directory, version = line.split(" ")
        found[name] = Built(Path(directory), version)
    return found


@dataclass(frozen=True)
class Tools:
    control_plane: dict[str, Path]
    kwok_config: Path  # every Stage file of the recipe, in order (the stage files beside it)
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
    stages = cp.pop("kwok-stages")
    bins: dict[str, Path] = {}
    for built in cp.values():
        for binary in built.directory.iterdir():
            bins[binary.name] = binary
    return Tools(
        control_plane=bins,
        kwok_config=stages.directory / "kwok.yaml",
        engine_path=[engine["pulumi"].directory],
        kubectl=bins["kubectl"],
        built_engine="pulumi-resource-kubernetes" in engine,
        providers={
            name.removeprefix("pulumi-resource-"): (built.version, built.directory / name)
            for name, built in engine.items()
            if name.startswith("pulumi-resource-")
        },
    )
