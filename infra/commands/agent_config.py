"""`agent-config`: the agent definition (`mcp_servers` + `mcp_toolset` entries) as JSON."""

from __future__ import annotations

import argparse
import json

from infra.agent import agent_definition
from infra.commands.source import add_source_arguments, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("agent-config", help="print the agent definition as JSON")
    add_source_arguments(parser, allow_dir=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(agent_definition(load_config(args)), indent=2))
    return 0
