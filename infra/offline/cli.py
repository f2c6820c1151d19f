"""`python -m infra <command>`: the offline commands users, CI and the tests rely on."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from infra.offline.errors import ConfigError
from infra.offline.manifests import ManifestError
from infra.offline.tools import RenderError, ToolMissing

COMMANDS = ("render", "check", "audit", "db_sql", "agent_config")


def parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command, or only `only`: then its module alone is imported (a folder check
    never loads the config model, the Pulumi SDK or the audit)."""
    root = argparse.ArgumentParser(
        prog="python -m infra",
        description="agent-perimeter offline commands (no cluster, no cloud, no Pulumi CLI)",
    )
    subparsers = root.add_subparsers(dest="command", required=True, metavar="command")
    for name in [only] if only in COMMANDS else COMMANDS:
        importlib.import_module(f"infra.offline.commands.{name}").register(subparsers)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0].replace("-", "_") if argv else None
    args = parser(command).parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, ManifestError, RenderError, ToolMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def exit_now(code: int) -> None:
    """End the process once its output is flushed, without tearing the heap down object by
    object: a render leaves hundreds of thousands of SDK objects behind, and freeing them
    took longer than writing the files (a second at 50 servers). Every file is closed by
    then; nothing registers an atexit handler that matters here."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away, or the stream is closed
            code = code or 1
    os._exit(code)
