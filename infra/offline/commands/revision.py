"""An environment as a git revision would deploy it: that revision's stack file, code and charts.

The revision's tree is extracted with `git archive` into a temporary folder and
rendered there by its own `python -m infra render`, so a change to a chart or to
the program shows up as well as a change to the stack file. The working tree
and the repository's worktree list are never touched.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.offline.commands.source import Source
from infra.offline.manifests import load_dir
from infra.offline.tools import helm_binary, renderer_binary
from infra.pure.config import ConfigError, load, stack_file


class RevisionError(Exception):
    """The revision cannot be read or rendered."""


def _git(root: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        raise RevisionError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def stacks_at(tree: Path) -> list[str]:
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in tree.glob("Pulumi.*.yaml")
    )


@contextmanager
def checkout(rev: str, root: Path | None = None) -> Iterator[Path]:
    """The files of `rev` in a temporary folder, removed afterwards."""
    root = root or stack_file("any").parent
    try:
        commit = (
            _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
        )
    except RevisionError:
        raise RevisionError(
            f"--diff {rev}: not a commit of this repository (in CI, fetch the PR's base first)"
        ) from None
    archive = _git(root, "archive", "--format=tar", commit)
    with tempfile.TemporaryDirectory(prefix="agent-perimeter-rev-") as tmp:
        tree = Path(tmp) / "tree"
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        yield tree


def render_at(tree: Path, stack: str, label: str) -> Source | None:
    """The stack at that tree, rendered by that tree's program; None when it has no such stack."""
    stack_path = tree / f"Pulumi.{stack}.yaml"
    if not stack_path.exists():
        return None
    out = tree.parent / f"render-{stack}"
    # the extracted tree has no .tools of its own: it uses this checkout's helm and renderer
    tools = [str(Path(found()).parent) for found in (renderer_binary, helm_binary)]
    env = {**os.environ, "PATH": os.pathsep.join([*tools, os.environ.get("PATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "infra", "render", "--stack", stack, "--out", str(out)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RevisionError(f"rendering {label} failed: {proc.stderr.strip()[-2000:]}")
    try:
        config = load(config_file=str(stack_path))
    except ConfigError:
        config = None  # the revision's settings this version no longer reads: objects only
    tier = config.tier.value if config else "dev"
    return Source(label, load_dir(out), config, tier)
