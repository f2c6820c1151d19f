"""`render`: every Kubernetes object of an environment as YAML files, offline."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from infra.commands.source import add_source_arguments, load_config
from infra.manifests import check_render_target, write_dir
from infra.network import used_databases


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render", help="write every object of an environment as YAML, secrets as placeholders"
    )
    add_source_arguments(parser, allow_dir=False)
    parser.add_argument(
        "--out",
        required=True,
        help="folder to write: new, empty, or one render wrote before (replaced as a whole)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from infra.offline import render_environment  # the Pulumi SDK loads only when needed

    config = load_config(args)
    out = Path(args.out)
    check_render_target(out)
    manifests = render_environment(config)
    written = write_dir(manifests, out)
    kinds = Counter(m["kind"] for m in manifests)
    tools = sum(len(s.tools) for s in config.mcp_servers)
    print(f"environment {config.environment} ({config.tier.value}) -> namespace {config.namespace}")
    print(f"  {len(written)} objects written to {out}/")
    print("  " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    print(
        f"  {len(config.mcp_servers)} MCP server(s), {tools} tool role(s) in "
        f"{len(used_databases(config))} database(s); tunnel {config.tunnel.id} "
        f"({config.tunnel.replicas} replica(s)); sandbox pool "
        f"{config.sandbox.min_replicas}-{config.sandbox.max_replicas} runner(s)"
    )
    for server in config.mcp_servers:
        print(f"  {server.name}: {config.mcp_url(server)} ({len(server.tools)} tools)")
    print("  secret values are placeholders; nothing was deployed")
    return 0
