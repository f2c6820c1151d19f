"""Locating the external tools the offline commands drive (helm)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "charts"


def chart_path(name: str) -> str:
    """Absolute, because the engine starts providers in the program's directory (`infra/`),
    where a path relative to the repo root names nothing."""
    return str(CHARTS_DIR / name)


class ToolMissing(RuntimeError):
    """A tool the offline commands drive is not installed."""


class RenderError(RuntimeError):
    """A chart the program deploys failed to render."""


def helm_binary() -> str:
    """helm from PATH, or the copy `make setup` builds into .tools/bin."""
    found = shutil.which("helm") or shutil.which("helm", path=str(REPO_ROOT / ".tools" / "bin"))
    if not found:
        raise ToolMissing(
            "helm is not installed: run `make setup` (it builds helm v3.21.4 from Go modules "
            "into .tools/bin)"
        )
    return found


RENDERER = "agent-perimeter-render"


def renderer_binary() -> str:
    """The batch renderer `make setup` builds from scripts/renderer (helm's own packages):
    this checkout's copy first, else one on PATH (a revision extracted for `--diff`)."""
    own = REPO_ROOT / ".tools" / "bin" / RENDERER
    found = str(own) if os.access(own, os.X_OK) else shutil.which(RENDERER)
    if not found:
        raise ToolMissing(
            f"{RENDERER} is not installed: run `make setup` (it builds the chart renderer "
            "from helm's Go packages into .tools/bin)"
        )
    return found


def helm_env() -> dict[str, str]:
    """An environment that keeps helm away from the user's repositories and caches."""
    env = dict(os.environ)
    env.setdefault("HELM_CACHE_HOME", str(REPO_ROOT / ".tools" / "helm" / "cache"))
    env.setdefault("HELM_CONFIG_HOME", str(REPO_ROOT / ".tools" / "helm" / "config"))
    env.setdefault("HELM_DATA_HOME", str(REPO_ROOT / ".tools" / "helm" / "data"))
    return env
