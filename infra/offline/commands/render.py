"""`render`: every Kubernetes object of an environment as YAML files, offline."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from infra.offline.commands.source import add_source_arguments, load_config
from infra.offline.manifests import MANIFESTS_DIR, PLATFORM_FILE, check_render_target, write_dir
from infra.pure.network import used_databases


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
    # the Pulumi SDK loads only when needed
    from infra.offline.mocked import manifests_of, platform_objects, synthesize

    config = load_config(args)
    out = Path(args.out)
    check_render_target(out)
    synthesis = synthesize(config, render_charts=True)
    manifests = manifests_of(synthesis)
    platform = platform_objects(config, synthesis)
    platform_text = json.dumps(platform, indent=2, sort_keys=True) + "\n"
    written = write_dir(manifests, out, {PLATFORM_FILE: platform_text}, manifests_dir=MANIFESTS_DIR)
    kinds = Counter(m["kind"] for m in manifests)
    tools = sum(len(s.tools) for s in config.mcp_servers)
    print(f"environment {config.environment} ({config.tier.value}) -> namespace {config.namespace}")
    print(
        f"  {len(written)} objects written to {out / MANIFESTS_DIR}/ "
        f"(kubectl apply --server-side -f {out / MANIFESTS_DIR} applies them in order)"
    )
    print("  " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    print(
        f"  {len(config.mcp_servers)} MCP server(s), {tools} tool role(s) in "
        f"{len(used_databases(config))} database(s); tunnel "
        f"{config.tunnel.id or '(created by pulumi up)'} ({config.tunnel.replicas} replica(s))"
    )
    for pool in config.sandboxes:
        print(f"  sandbox pool {pool.name}: {pool.min_replicas}-{pool.max_replicas} runner(s)")
    if platform["managed"]:
        print(
            f"  platform: {len(platform['agents'])} agent(s), {len(platform['environments'])} "
            f"environment(s), {len(platform['vault_credentials'])} vault credential(s) "
            f"-> {out / PLATFORM_FILE}"
        )
    else:
        print(f"  platform: not managed (platform.enabled: false) -> {out / PLATFORM_FILE}")
    for server in config.mcp_servers:
        print(f"  {server.name}: {config.mcp_url(server)} ({len(server.tools)} tools)")
    print("  secret values are placeholders; nothing was deployed")
    return 0
