"""The worker's settings: parsed once from the command line, checked before anything starts."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

# Environment variables a tool subprocess inherits from the worker; everything else (and the
# environment key above all) is left out. HOME and TMPDIR are set per session instead.
DEFAULT_TOOL_ENV = ("PATH", "LANG", "LC_ALL", "TZ")

_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h)$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class SettingsError(ValueError):
    """A bad flag or an unreadable key file: reported in one line, exit 2."""


def duration_seconds(text: str) -> float:
    """`60s`, `5m`, `500ms`, `1h` as seconds (the stack files' duration format)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise SettingsError(f"--max-idle: {text!r} is not a duration such as 60s, 5m or 500ms")
    return int(match.group(1)) * _SECONDS[match.group(2)]


@dataclass(frozen=True)
class Settings:
    environment_id: str
    environment_key: str = field(repr=False)
    tool_socket: Path
    run_timeout_seconds: float
    max_tool_calls: int
    max_idle_seconds: float
    health_host: str = "0.0.0.0"
    health_port: int = 8080
    readiness_window_seconds: float = 60.0
    scratch_dirs: tuple[Path, ...] = ()
    tool_env: tuple[str, ...] = DEFAULT_TOOL_ENV
    log_format: str = "json"


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """Reports a bad flag as a `SettingsError` (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise SettingsError(message)


def _parser() -> _Parser:
    p = _Parser(
        prog="python -m sandbox",
        description="Serve a self-hosted environment's sessions with the pool's limits enforced.",
    )
    p.add_argument("--environment-id", required=True, help="env_... of the pool's environment")
    p.add_argument(
        "--environment-key-file",
        required=True,
        type=Path,
        help="file holding the environment key (a mounted Secret); never put the key in argv or env",
    )
    p.add_argument(
        "--tool-socket",
        type=Path,
        required=True,
        help="the tool host's Unix socket (python -m sandbox.toolhost): tools run there",
    )
    p.add_argument("--run-timeout-seconds", type=_positive_float, required=True)
    p.add_argument("--max-tool-calls", type=_positive_int, required=True)
    p.add_argument("--max-idle", default="60s", help="idle time after a turn ends, e.g. 60s")
    p.add_argument("--health-host", default="0.0.0.0")
    p.add_argument("--health-port", type=int, default=8080)
    p.add_argument("--readiness-window-seconds", type=_positive_float, default=60.0)
    p.add_argument(
        "--scratch-dir",
        action="append",
        type=Path,
        default=[],
        help="another writable directory emptied after every session (repeatable), e.g. /tmp",
    )
    p.add_argument(
        "--tool-env",
        action="append",
        default=[],
        help="name of a worker environment variable tools may also see (repeatable)",
    )
    p.add_argument("--log-format", choices=("json", "text"), default="json")
    return p


def parse(argv: list[str]) -> Settings:
    args = _parser().parse_args(argv)
    try:
        key = args.environment_key_file.read_text().strip()
    except OSError as e:
        raise SettingsError(
            f"--environment-key-file: cannot read {str(args.environment_key_file)!r}: {e.strerror}"
        ) from None
    if not key:
        raise SettingsError(f"--environment-key-file: {str(args.environment_key_file)!r} is empty")
    if not args.tool_socket.is_absolute():
        raise SettingsError(f"--tool-socket: {str(args.tool_socket)!r} is not an absolute path")
    leaked = [n for n in args.tool_env if n.startswith("ANTHROPIC_")]
    if leaked:
        raise SettingsError(
            f"--tool-env: {leaked[0]} is an ANTHROPIC_* variable; tools never get those"
        )
    if not 0 <= args.health_port <= 65535:
        raise SettingsError(f"--health-port: {args.health_port} is not a port")
    return Settings(
        environment_id=args.environment_id,
        environment_key=key,
        tool_socket=args.tool_socket,
        run_timeout_seconds=args.run_timeout_seconds,
        max_tool_calls=args.max_tool_calls,
        max_idle_seconds=duration_seconds(args.max_idle),
        health_host=args.health_host,
        health_port=args.health_port,
        readiness_window_seconds=args.readiness_window_seconds,
        scratch_dirs=tuple(args.scratch_dir),
        tool_env=DEFAULT_TOOL_ENV + tuple(n for n in args.tool_env if n not in DEFAULT_TOOL_ENV),
        log_format=args.log_format,
    )
