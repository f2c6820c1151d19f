"""Sandbox pools reach MCP servers only through the platform, unless a stack opts in.

A direct path from a pool to an MCP server bypasses the platform's approval gate
(`always_ask`): code in the sandbox could call a write tool nobody approved. The
program opens one only where a pool lists the server in `direct_mcp_access`; this
rule warns about each so a reviewer sees it. A path no pool declared is refused by
`egress-in-cluster-declared`, whatever selector it is written with.
"""

from __future__ import annotations

from collections.abc import Iterator

from .contract import names
from .flows import declared_direct_servers
from .inventory import Inventory
from .k8s import pod_labels
from .model import ADVISORY, Settings, Target, as_list, as_map, stack_rule


@stack_rule(
    "sandbox-no-direct-mcp-access",
    "Sandbox pools reach MCP servers only through the platform (its approval gate), not directly.",
    "Remove the server from the pool's `direct_mcp_access` unless its code must call the server "
    "directly, and say why in the stack file.",
    levels={"*": ADVISORY},
)
def sandbox_no_direct_mcp_access(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    for policy in inventory.kind("NetworkPolicy"):
        selected = as_map(as_map(policy.spec.get("podSelector")).get("matchLabels"))
        if selected.get(names.LABEL_NAME) != names.COMPONENT_SANDBOX:
            continue
        pool = selected.get(names.LABEL_INSTANCE, names.COMPONENT_SANDBOX)
        declared: set[str] = set()
        for workload in inventory.workloads:
            if workload.effective_namespace == policy.effective_namespace and (
                pod_labels(workload).get(names.LABEL_INSTANCE) == pool
            ):
                declared |= declared_direct_servers(workload)
        for rule in as_list(policy.spec.get("egress")):
            for peer in as_list(as_map(rule).get("to")):
                labels = as_map(as_map(as_map(peer).get("podSelector")).get("matchLabels"))
                server = labels.get(names.LABEL_INSTANCE)
                if (
                    labels.get(names.LABEL_NAME) == names.COMPONENT_MCP_SERVER
                    and server in declared
                ):
                    yield (
                        policy,
                        f"sandbox pool {pool} may call {server} directly, bypassing the "
                        "platform's approval gate",
                    )


RULES = (sandbox_no_direct_mcp_access,)
