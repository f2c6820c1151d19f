"""The e2e build script, run as-is or as an edited copy, against a cache of the test's choosing."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "e2e" / "build-tools.sh"
STAGES = re.compile(r'^KWOK_STAGES="[^"]*"$', re.MULTILINE)
# The list this script shipped before kwok's `fast` pod stages: the general pod-ready waits
# for an Initialized condition that only the general pod-create (not in the list) sets.
GENERAL_STAGES = (
    "node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease\n"
    "pod/general/pod-ready pod/general/pod-complete pod/general/pod-delete"
)


def script_with_stages(root: Path, stages: str) -> Path:
    """A copy of the build script whose only change is its stage list."""
    text = SCRIPT.read_text()
    assert STAGES.search(text), "build-tools.sh no longer sets KWOK_STAGES on one line pair"
    copy = root / "scripts" / "e2e" / "build-tools.sh"
    copy.parent.mkdir(parents=True)
    copy.write_text(STAGES.sub(f'KWOK_STAGES="{stages}"', text))
    return copy


def run(script: Path, *args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "E2E_SOURCES": str(SCRIPT.parent / "sources")}
    if cache is not None:
        env["AP_CACHE"] = str(cache)
    return subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=300
    )


def digests(script: Path, part: str = "all") -> dict[str, str]:
    done = run(script, "--digests", part)
    assert done.returncode == 0, done.stderr
    return {name: digest for name, _version, digest in map(str.split, done.stdout.splitlines())}
