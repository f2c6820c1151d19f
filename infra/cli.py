"""`python -m infra <command>`: the offline commands users, CI and the tests rely on."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from infra.errors import ConfigError
from infra.manifests import ManifestError
from infra.tools import RenderError, ToolMissing

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
        importlib.import_module(f"infra.commands.{name}").register(subparsers)
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
