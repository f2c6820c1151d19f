"""A fresh workspace per session, and nothing left behind for the next one.

Bash runs unconfined inside the tools' container, so a session can write anywhere the tools'
user can: into its own directory, next to it, or into a scratch volume such as /tmp. After each
session the tool host therefore empties the whole workspace volume and every scratch directory,
not just the session's own directory. One worker serves one session at a time, so nothing else
is using them then.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def session_workspace(root: Path, session_id: str) -> Path:
    """Create `<root>/<session id>` for one session: the tool host's user and the worker's
    group (the worker writes the session's skills and memory stores there), nobody else."""
    path = root / ("session-" + _UNSAFE.sub("_", session_id)[:100])
    path.mkdir(mode=0o770)
    (path / ".tmp").mkdir(mode=0o770)
    return path


def empty(directories: Iterable[Path]) -> None:
    """Remove everything inside each directory, keeping the directory (a mount point)."""
    for directory in directories:
        try:
            entries = list(directory.iterdir())
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except OSError as e:
                log.error("could not remove %s from the workspace: %s", entry, e.strerror)


def tool_environment(
    workdir: Path, inherit: Iterable[str], source: Mapping[str, str]
) -> dict[str, str]:
    """The whole environment a tool subprocess gets: an allowlist, never the worker's own.

    HOME and TMPDIR point into the session's workspace so that tools which write there by
    default write somewhere that is emptied after the session.
    """
    env = {name: source[name] for name in inherit if name in source}
    env.update(HOME=str(workdir), TMPDIR=str(workdir / ".tmp"), PWD=str(workdir))
    return env
