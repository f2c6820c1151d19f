"""The fake platform as the end-to-end tier runs it: a process, its state in a file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anthropic

from tests.conftest import REPO_ROOT
from tests.fakes.platform_api import DEFAULT_API_KEY


def _start(state: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.platform_api", "--port", "0", "--state", str(state)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on http://127.0.0.1:"), line
    return proc, line.removeprefix("listening on ")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "platform-state.json"
    proc, url = _start(state)
    try:
        client = anthropic.Anthropic(api_key=DEFAULT_API_KEY, base_url=url)
        vault = client.beta.vaults.create(display_name="dev")
    finally:
        _stop(proc)
    proc, url = _start(state)
    try:
        client = anthropic.Anthropic(api_key=DEFAULT_API_KEY, base_url=url)
        assert client.beta.vaults.retrieve(vault.id).display_name == "dev"
    finally:
        _stop(proc)
