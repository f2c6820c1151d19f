"""`python -m infra <command>`: the offline commands users, CI and the tests rely on."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from infra.config import ConfigError
from infra.manifests import ManifestError
from infra.tools import RenderError, ToolMissing

COMMANDS = ("render", "check", "audit", "db_sql", "agent_config")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m infra",
        description="agent-perimeter offline commands (no cluster, no cloud, no Pulumi CLI)",
    )
    subparsers = root.add_subparsers(dest="command", required=True, metavar="command")
    for name in COMMANDS:
        importlib.import_module(f"infra.commands.{name}").register(subparsers)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, ManifestError, RenderError, ToolMissing) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
