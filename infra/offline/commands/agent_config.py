"""`agent-config`: every agent (name, model, instructions, `mcp_servers` + `mcp_toolset`) as JSON.

Offline, the tunnel's domain is the configured one or a placeholder until the
platform assigns it: `pulumi up` creates the agents with the real URLs.
"""

from __future__ import annotations

import argparse
import json

from infra.offline.commands.source import add_source_arguments, load_config
from infra.pure.agent import agent_definition, agent_spec, agent_tools


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("agent-config", help="print the agent definitions as JSON")
    add_source_arguments(parser, allow_dir=False)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    domain = config.tunnel_domain
    if config.agents:
        document = {
            "tunnel_domain": domain,
            "agents": [
                agent_spec(agent, config.system_prompt(agent), agent_tools(config, agent), domain)
                for agent in config.agents
            ],
        }
    else:
        document = {"tunnel_domain": domain, **agent_definition(agent_tools(config, None), domain)}
    print(json.dumps(document, indent=2))
    return 0
