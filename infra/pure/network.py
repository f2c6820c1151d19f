"""What may talk to what, as NetworkPolicy manifests computed from the config.

Kept pure (plain manifest dicts) so the component, the tests and the audit all
read the same thing. The model: deny everything in both directions, allow DNS
to kube-dns only, then one policy per workload naming exactly its flows from
the DESIGN boundaries table.
"""

from __future__ import annotations

from typing import Any

from infra.pure.config import McpServer, PerimeterConfig
from infra.pure.naming import (
    NAMESPACE_NAME_LABEL,
    common_labels,
    mcp_release,
    mcp_server_selector,
    provisioner_name,
    provisioner_selector,
    sandbox_release,
    sandbox_selector,
    tunnel_selector,
)

Manifest = dict[str, Any]


def allowed_egress_cidrs(config: PerimeterConfig) -> list[str]:
    """Destinations this environment declares: the platform endpoints, its databases and the
    MCP servers' backends."""
    found = [*config.platform.api_cidrs, *config.platform.tunnel_edge_cidrs]
    found += [cidr for database in config.databases.values() for cidr in database.cidrs]
    found += [
        cidr
        for server in config.mcp_servers
        for backend in server.backends
        for cidr in backend.effective_cidrs
    ]
    return list(dict.fromkeys(found))


def pack_config_of(config: PerimeterConfig) -> dict[str, object]:
    """The `--policy-pack-config` document of this environment (policies/config/<tier>.json):
    its declared egress, as a whole, and its breadth limit."""
    from policies.rules import pack_config

    limits = (config.min_cidr_prefix.ipv4, config.min_cidr_prefix.ipv6)
    return pack_config(config.tier.value, allowed_egress_cidrs(config), limits)


def destination_names(config: PerimeterConfig | None) -> dict[str, str]:
    """What each external address range is, in the words a reviewer uses; without a stack, the
    platform's published defaults."""
    from infra.pure.config import ClusterNetwork, PlatformEndpoints

    platform = config.platform if config else PlatformEndpoints()
    cluster = config.cluster if config else ClusterNetwork()
    names = {cidr: "platform API" for cidr in platform.api_cidrs}
    names.update({cidr: "tunnel edge" for cidr in platform.tunnel_edge_cidrs})
    names.update({cidr: "cluster services" for cidr in cluster.service_cidrs})
    for name, database in (config.databases if config else {}).items():
        names.update({cidr: f"database {name}" for cidr in database.cidrs})
    backends: dict[str, list[str]] = {}
    for server in config.mcp_servers if config else []:
        for backend in server.backends:
            for cidr in backend.effective_cidrs:
                backends.setdefault(cidr, []).append(f"{server.name}/{backend.name}")
    names.update({cidr: f"backend {', '.join(who)}" for cidr, who in backends.items()})
    return names


def _ports(port: int, *protocols: str) -> list[dict[str, Any]]:
    return [{"protocol": p, "port": port} for p in protocols or ("TCP",)]


def _cidrs(cidrs: list[str]) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]


def _pods(labels: dict[str, str]) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": labels}}


def _policy(
    config: PerimeterConfig,
    name: str,
    selector: dict[str, str],
    ingress: list[dict[str, Any]],
    egress: list[dict[str, Any]],
) -> Manifest:
    """Both policy types always: a workload policy never leaves one direction open."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": config.namespace,
            "labels": common_labels("network-policy", name, config.environment),
        },
        "spec": {
            "podSelector": {"matchLabels": selector} if selector else {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def default_deny(config: PerimeterConfig) -> Manifest:
    return _policy(config, "default-deny-all", {}, [], [])


def dns_egress(config: PerimeterConfig) -> Manifest:
    """One peer with both selectors: kube-dns pods AND in kube-system, nothing else on 53."""
    peer = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: config.cluster.dns_namespace}},
        "podSelector": {"matchLabels": dict(config.cluster.dns_pod_labels)},
    }
    manifest = _policy(
        config, "allow-dns-egress", {}, [], [{"to": [peer], "ports": _ports(53, "UDP", "TCP")}]
    )
    manifest["spec"]["policyTypes"] = ["Egress"]
    del manifest["spec"]["ingress"]
    return manifest


def tunnel_policy(config: PerimeterConfig) -> Manifest:
    platform = config.platform
    egress = [
        {
            "to": _cidrs(platform.tunnel_edge_cidrs),
            "ports": _ports(platform.tunnel_edge_port, "TCP", "UDP"),
        },
        {"to": _cidrs(platform.api_cidrs), "ports": _ports(platform.api_port)},
    ]
    egress += [
        {"to": [_pods(mcp_server_selector(s))], "ports": _ports(s.port)} for s in config.mcp_servers
    ]
    return _policy(config, "mcp-tunnel", tunnel_selector(), metrics_ingress(config), egress)


METRICS_PORT_NAMES = ("metrics", "proxy-metrics")  # the tunnel chart's container port names


def metrics_ingress(config: PerimeterConfig) -> list[dict[str, Any]]:
    """The named scraper, and only it, on the named metrics ports only; nothing when off."""
    metrics = config.metrics
    if metrics is None:
        return []
    scraper = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: metrics.scraper_namespace}},
        "podSelector": {"matchLabels": dict(metrics.scraper_pod_labels)},
    }
    names = METRICS_PORT_NAMES if metrics.proxy_port is not None else METRICS_PORT_NAMES[:1]
    return [{"from": [scraper], "ports": [{"protocol": "TCP", "port": n} for n in names]}]


def mcp_server_policy(config: PerimeterConfig, server_name: str) -> Manifest:
    server = config.server(server_name)
    callers = [_pods(tunnel_selector())]
    callers += [
        _pods(sandbox_selector(pool.name))
        for pool in config.sandboxes
        if server.name in pool.direct_mcp_access
    ]
    return _policy(
        config,
        mcp_release(server),
        mcp_server_selector(server),
        [{"from": callers, "ports": _ports(server.port)}],
        mcp_server_egress(config, server),
    )


def mcp_server_egress(config: PerimeterConfig, server: McpServer) -> list[dict[str, Any]]:
    """Exactly the server's backends (its database among them), each on its own ports."""
    egress = []
    if server.database is not None:
        database = config.databases[server.database]
        egress.append({"to": _cidrs(database.cidrs), "ports": _ports(database.port)})
    egress += [
        {
            "to": _cidrs(backend.effective_cidrs),
            "ports": [{"protocol": backend.protocol, "port": p} for p in backend.ports],
        }
        for backend in server.backends
    ]
    return egress


def sandbox_policy(config: PerimeterConfig, pool_name: str) -> Manifest:
    """A pool reaches the platform API; an MCP server only where it opted in (no approval gate)."""
    platform = config.platform
    egress = [{"to": _cidrs(platform.api_cidrs), "ports": _ports(platform.api_port)}]
    egress += [
        {"to": [_pods(mcp_server_selector(name))], "ports": _ports(config.server(name).port)}
        for name in config.pool(pool_name).direct_mcp_access
    ]
    return _policy(config, sandbox_release(pool_name), sandbox_selector(pool_name), [], egress)


def provisioner_policy(config: PerimeterConfig, database_name: str) -> Manifest:
    database = config.databases[database_name]
    return _policy(
        config,
        provisioner_name(database_name),
        provisioner_selector(database_name),
        [],
        [{"to": _cidrs(database.cidrs), "ports": _ports(database.port)}],
    )


def used_databases(config: PerimeterConfig) -> list[str]:
    """Databases some MCP server uses: only those get roles and a provisioning Job."""
    used = {s.database for s in config.mcp_servers if s.database is not None}
    return [name for name in config.databases if name in used]


def network_policies(config: PerimeterConfig) -> list[Manifest]:
    policies = [default_deny(config), dns_egress(config), tunnel_policy(config)]
    policies += [mcp_server_policy(config, s.name) for s in config.mcp_servers]
    policies += [sandbox_policy(config, pool.name) for pool in config.sandboxes]
    policies += [provisioner_policy(config, name) for name in used_databases(config)]
    return policies


def _peer_text(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        return peer["ipBlock"]["cidr"]
    labels = peer.get("podSelector", {}).get("matchLabels", {})
    return labels.get("app.kubernetes.io/instance", "pods")


def _rules_text(rules: list[dict[str, Any]], side: str) -> list[str]:
    out = []
    for rule in rules:
        ports = "/".join(sorted({f"{p['port']}/{p['protocol']}" for p in rule.get("ports", [])}))
        out += [f"{_peer_text(peer)} on {ports}" for peer in rule.get(side, [])]
    return out


def boundaries_summary(config: PerimeterConfig) -> dict[str, Any]:
    """The plain stack output auditors read first: each workload's allowed flows.

    Every workload also has DNS to kube-dns; everything not listed is denied.
    """
    summary: dict[str, Any] = {"default": "deny all ingress and egress; DNS to kube-dns only"}
    for policy in network_policies(config)[2:]:
        spec = policy["spec"]
        summary[policy["metadata"]["name"]] = {
            "ingress_from": _rules_text(spec.get("ingress", []), "from"),
            "egress_to": _rules_text(spec.get("egress", []), "to"),
        }
    return summary
