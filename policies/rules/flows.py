"""In-cluster egress judged by its effect against the flows the environment declares.

A selector peer is resolved against the workloads in the set, so a path written with other
labels, an expression or an empty selector is seen for what it reaches. The flows the bundle
declares are few: the tunnel to the MCP servers, a sandbox pool to the servers its
`direct_mcp_access` lists (the chart passes them as the worker's MCP_SERVERS), and every pod
to DNS in kube-system. Anything else a selector reaches inside the cluster is undeclared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .contract import names
from .contract.names import NAMESPACE_NAME_LABEL
from .inventory import Inventory
from .k8s import containers, pod_labels, pod_views, selector_is_empty, selector_matches
from .model import Resource, Settings, Target, as_list, as_map, stack_rule
from .network import matches_every_namespace, policy_types

# The env var the sandbox-runner chart writes `direct_mcp_access` into (charts/sandbox-runner).
DIRECT_SERVERS_ENV = "MCP_SERVERS"
DNS_NAMESPACE = "kube-system"
DNS_PORTS = frozenset({("UDP", 53), ("TCP", 53)})


def declared_direct_servers(pool: Resource) -> set[str]:
    """The releases of the MCP servers a sandbox pool's worker is given to call directly."""
    found: set[str] = set()
    for pod in pod_views(pool):
        for _, container in containers(pod.spec):
            for env in as_list(container.get("env")):
                env = as_map(env)
                if env.get("name") != DIRECT_SERVERS_ENV or not isinstance(env.get("value"), str):
                    continue
                try:
                    entries = json.loads(str(env["value"]))
                except ValueError:
                    continue
                found |= {
                    names.mcp_release(str(as_map(e).get("name")))
                    for e in as_list(entries)
                    if as_map(e).get("name")
                }
    return found


def _declared(source: Resource, target: Resource) -> bool:
    source_labels, target_labels = pod_labels(source), pod_labels(target)
    if target_labels.get(names.LABEL_NAME) != names.COMPONENT_MCP_SERVER:
        return False
    component = source_labels.get(names.LABEL_NAME)
    if component == names.COMPONENT_TUNNEL:
        return True
    if component == names.COMPONENT_SANDBOX:
        return target_labels.get(names.LABEL_INSTANCE) in declared_direct_servers(source)
    return False


def _dns_only(ports: Sequence[Any]) -> bool:
    return bool(ports) and all(
        (str(as_map(p).get("protocol", "TCP")), as_map(p).get("port")) in DNS_PORTS
        and "endPort" not in as_map(p)
        for p in ports
    )


def _other_namespaces(peer: Mapping[str, Any], ports: Sequence[Any]) -> str | None:
    """Why a peer that reaches outside the policy's namespace is undeclared, or None for DNS."""
    namespaces = peer.get("namespaceSelector")
    pods = peer.get("podSelector")
    if matches_every_namespace(namespaces):
        if selector_is_empty(pods):
            return "reaches every pod of every namespace"
        return "reaches pods in every namespace"
    named = as_map(as_map(namespaces).get("matchLabels")).get(NAMESPACE_NAME_LABEL)
    if named == DNS_NAMESPACE and not selector_is_empty(pods) and _dns_only(ports):
        return None
    if named == DNS_NAMESPACE and not _dns_only(ports):
        return "reaches kube-system on ports other than DNS (53/UDP, 53/TCP)"
    if named == DNS_NAMESPACE:
        return "reaches every pod of kube-system, not only its DNS pods"
    return "reaches pods of other namespaces; the perimeter declares only DNS in kube-system"


def _same_namespace(peer: Mapping[str, Any], namespace: str | None) -> bool:
    if "namespaceSelector" not in peer:
        return True
    named = as_map(as_map(peer.get("namespaceSelector")).get("matchLabels"))
    return (
        named.get(NAMESPACE_NAME_LABEL) == namespace
        and len(named) == 1
        and not as_list(as_map(peer.get("namespaceSelector")).get("matchExpressions"))
    )


@stack_rule(
    "egress-in-cluster-declared",
    "In-cluster egress follows the declared flows only: the tunnel to the MCP servers, a sandbox "
    "pool to the servers its direct_mcp_access lists, and DNS in kube-system; never every pod "
    "of a namespace or of every namespace.",
    "Select the one peer the flow needs by its release labels; for a sandbox pool that must call "
    "a server directly, list it in the pool's `direct_mcp_access` (the program then writes the "
    "policy); reach other namespaces only for DNS.",
)
def egress_in_cluster_declared(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    for policy in inventory.kind("NetworkPolicy"):
        if "Egress" not in policy_types(policy.spec):
            continue
        namespace = policy.effective_namespace
        here = [w for w in inventory.workloads if w.effective_namespace == namespace]
        sources = [
            w for w in here if selector_matches(policy.spec.get("podSelector"), pod_labels(w))
        ]
        for i, rule in enumerate(as_list(policy.spec.get("egress")), start=1):
            rule = as_map(rule)
            ports = as_list(rule.get("ports"))
            for peer in as_list(rule.get("to")):  # a rule with no `to` is egress-only-...'s
                peer = as_map(peer)
                if "ipBlock" in peer:
                    continue
                if not _same_namespace(peer, namespace):
                    problem = _other_namespaces(peer, ports)
                    if problem:
                        yield policy, f"egress rule {i} {problem}"
                    continue
                for target in here:
                    if not selector_matches(peer.get("podSelector"), pod_labels(target)):
                        continue
                    for source in sources:
                        if source is not target and not _declared(source, target):
                            yield (
                                policy,
                                f"egress rule {i} lets {source.ref} reach {target.ref}, a flow "
                                "the environment does not declare",
                            )


RULES = (egress_in_cluster_declared,)
