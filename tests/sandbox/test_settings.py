"""`python -m sandbox` refuses bad settings in one line, exit 2, without echoing the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.cli import main
from sandbox.settings import DEFAULT_TOOL_ENV, duration_seconds, parse

from .attempts import ENVIRONMENT_KEY


def argv(key_file: Path, *extra: str) -> list[str]:
    return [
        "--environment-id", "env_01JTESTsandbox1",
        "--environment-key-file", str(key_file),
        "--run-timeout-seconds", "300",
        "--max-tool-calls", "20",
        "--tool-socket", "/run/agent-perimeter/tools/tools.sock",
        *extra,
    ]  # fmt: skip


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_text(ENVIRONMENT_KEY + "\n")
    return path


def test_the_key_comes_from_the_file(key_file: Path) -> None:
    settings = parse(argv(key_file, "--tool-env", "MCP_SERVERS"))
    assert settings.environment_key == ENVIRONMENT_KEY
    assert ENVIRONMENT_KEY not in repr(settings)
    assert settings.tool_env == (*DEFAULT_TOOL_ENV, "MCP_SERVERS")
    assert settings.max_idle_seconds == 60.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--max-tool-calls", "0"), "--max-tool-calls: must be greater than 0"),
        (("--max-idle", "soon"), "--max-idle: 'soon' is not a duration"),
        (("--tool-socket", "tools.sock"), "--tool-socket: 'tools.sock' is not an absolute path"),
        (("--tool-env", "ANTHROPIC_API_KEY"), "--tool-env: ANTHROPIC_API_KEY is an ANTHROPIC_*"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    key_file: Path, extra: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv(key_file, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_an_unreadable_or_empty_key_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv(tmp_path / "missing")) == 2
    assert "--environment-key-file: cannot read" in capsys.readouterr().err
    (tmp_path / "empty").write_text("\n")
    assert main(argv(tmp_path / "empty")) == 2
    assert "is empty" in capsys.readouterr().err


def test_durations_read_like_the_stack_files() -> None:
    assert [duration_seconds(d) for d in ("500ms", "60s", "5m", "1h")] == [0.5, 60, 300, 3600]
