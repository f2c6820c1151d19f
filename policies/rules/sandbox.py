"""Sandbox pools reach MCP servers only through the platform, unless a stack opts in.

A direct path from a pool to an MCP server bypasses the platform's approval gate
(`always_ask`): code in the sandbox could call a write tool nobody approved. The
program opens one only where a pool lists the server in `direct_mcp_access`; this
rule warns about each so a reviewer sees it.
"""

from __future__ import annotations

from collections.abc import Iterator

from . import names
from .model import ADVISORY, Resource, Settings, as_list, as_map, resource_rule


@resource_rule(
    "sandbox-no-direct-mcp-access",
    "Sandbox pools reach MCP servers only through the platform (its approval gate), not directly.",
    "Remove the server from the pool's `direct_mcp_access` unless its code must call the server "
    "directly, and say why in the stack file.",
    kinds={"NetworkPolicy"},
    levels={"*": ADVISORY},
)
def sandbox_no_direct_mcp_access(resource: Resource, settings: Settings) -> Iterator[str]:
    spec = as_map(resource.props.get("spec"))
    selected = as_map(as_map(spec.get("podSelector")).get("matchLabels"))
    if selected.get(names.LABEL_NAME) != names.COMPONENT_SANDBOX:
        return
    pool = selected.get(names.LABEL_INSTANCE, names.COMPONENT_SANDBOX)
    for rule in as_list(spec.get("egress")):
        for peer in as_list(as_map(rule).get("to")):
            labels = as_map(as_map(as_map(peer).get("podSelector")).get("matchLabels"))
            if labels.get(names.LABEL_NAME) == names.COMPONENT_MCP_SERVER:
                server = labels.get(names.LABEL_INSTANCE, "an MCP server")
                yield (
                    f"sandbox pool {pool} may call {server} directly, bypassing the platform's "
                    "approval gate"
                )


RULES = (sandbox_no_direct_mcp_access,)
