"""Checks that span sections: names, roles, ranges and references that only make
sense against the whole environment. Every problem is reported at once.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from infra.contract.names import role_name
from infra.pure import naming
from infra.pure.config.addresses import overlap
from infra.pure.config.types import ImageRef, Tier, duplicates, repeats

if TYPE_CHECKING:
    from infra.pure.config.perimeter import PerimeterConfig


def _platform_problems(config: PerimeterConfig) -> list[str]:
    """Pools, agents and the platform section: checked with the other cross-references."""
    problems: list[str] = []
    declared = {s.name: s for s in config.mcp_servers}
    pools = [p.name for p in config.sandboxes]
    problems += duplicates(pools, "sandboxes", "name")
    problems += duplicates([a.name for a in config.agents], "agents", "name")
    if not config.platform.enabled:
        if config.tunnel.id is None or config.tunnel.domain is None:
            problems.append(
                "tunnel: with platform.enabled: false, give the hand-made tunnel's `id` and "
                "`domain`"
            )
        for i, pool in enumerate(config.sandboxes):
            if pool.environment_id is None:
                problems.append(
                    f"sandboxes[{i}].environment_id: required with platform.enabled: false"
                )
    for i, pool in enumerate(config.sandboxes):
        for j, name in enumerate(pool.direct_mcp_access):
            if name not in declared:
                problems.append(
                    f"sandboxes[{i}].direct_mcp_access[{j}]: {name!r} is not a declared MCP "
                    f"server (declared: {', '.join(declared)})"
                )
    for i, agent in enumerate(config.agents):
        where = f"agents[{i}]"
        if agent.sandbox not in pools:
            problems.append(
                f"{where}.sandbox: {agent.sandbox!r} is not a sandbox pool "
                f"(pools: {', '.join(pools)})"
            )
        problems += duplicates(
            [s.server for s in agent.mcp_servers], f"{where}.mcp_servers", "server"
        )
        for j, use in enumerate(agent.mcp_servers):
            server = declared.get(use.server)
            if server is None:
                problems.append(
                    f"{where}.mcp_servers[{j}].server: {use.server!r} is not a declared MCP "
                    f"server (declared: {', '.join(declared)})"
                )
                continue
            tools = [t.name for t in server.tools]
            for k, tool in enumerate(use.tools or []):
                if tool not in tools:
                    problems.append(
                        f"{where}.mcp_servers[{j}].tools[{k}]: {tool!r} is not a tool of "
                        f"{server.name} (tools: {', '.join(tools)})"
                    )
    return problems


def _scraper_problems(config: PerimeterConfig) -> list[str]:
    """A scraper in the perimeter's own namespace must be a pod no workload is: labels
    that select a server, the tunnel, a pool or a provisioner would let that workload
    (sandbox code, say) reach the tunnel's metrics ports as the scraper."""
    if config.metrics is None or config.metrics.scraper_namespace != config.namespace:
        return []
    workloads = [
        *(naming.mcp_server_selector(s) for s in config.mcp_servers),
        naming.tunnel_selector(),
        *(naming.sandbox_selector(p.name) for p in config.sandboxes),
        *(naming.provisioner_selector(d) for d in config.databases),
    ]
    wanted = config.metrics.scraper_pod_labels.items()
    for labels in workloads:
        if wanted <= labels.items():
            return [
                "metrics.scraper_pod_labels: in the perimeter's namespace these labels "
                f"select {labels[naming.LABEL_INSTANCE]}'s pods; a scraper must be outside "
                "the namespace, or a pod no workload's labels match"
            ]
    return []


def problems(config: PerimeterConfig) -> list[str]:
    """Every problem between sections, each `path: message`, reported together."""
    problems: list[str] = []
    names = [s.name for s in config.mcp_servers]
    problems += duplicates(names, "mcp_servers", "name")
    problems += duplicates([s.route_name for s in config.mcp_servers], "mcp_servers", "route")
    problems += _platform_problems(config)
    problems += _scraper_problems(config)
    for i, server in enumerate(config.mcp_servers):
        if server.database is not None and server.database not in config.databases:
            problems.append(
                f"mcp_servers[{i}].database: {server.database!r} is not declared under "
                f"databases (declared: {', '.join(sorted(config.databases)) or 'none'})"
            )
    roles: dict[str, str] = {}
    for i, server in enumerate(config.mcp_servers):
        for j, tool in enumerate(server.tools if server.database else []):
            role = role_name(server.name, tool.name)
            where = f"mcp_servers[{i}].tools[{j}].name"
            if len(role) > 63:
                problems.append(
                    f"{where}: database role {role!r} is {len(role)} characters; PostgreSQL "
                    "allows 63, so shorten the server or tool name"
                )
            if role in roles:
                problems.append(
                    f"{where}: database role {role!r} would also belong to {roles[role]}"
                )
            roles.setdefault(role, where)
    problems += _cidr_breadth(config)
    problems += _backend_overlaps(config)
    problems += _backends_across_servers(config)
    if config.tier is Tier.prod and not config.upstream_tls.enabled:
        problems.append(
            "upstream_tls.enabled: prod requires TLS from the proxy to every MCP server; "
            "the platform bearer token must not cross the cluster network in clear"
        )
    if len(set(names)) == len(names):  # duplicate servers already explain any shared name
        problems += _name_collisions(config)
    if config.tier is Tier.prod:
        for path, image in config_images(config):
            if not image.pinned:
                problems.append(
                    f"{path}: {image} is not pinned by digest; prod images must end in "
                    "@sha256:<64 hex>"
                )
    return problems


def _backend_overlaps(config: PerimeterConfig) -> list[str]:
    """A backend inside the platform's or the cluster's ranges would widen what those
    allowances mean, or never match (Service IPs are rewritten before policy applies)."""
    fixed = [
        (where, cidr)
        for where, cidr in config_cidrs(config)
        if where.startswith(("platform.", "cluster."))
    ]
    problems = []
    for i, server in enumerate(config.mcp_servers):
        if server.database is not None and server.database in config.databases:
            database = config.databases[server.database]
            fixed_here = [
                *fixed,
                *(
                    (f"databases.{server.database}.cidrs[{k}]", c)
                    for k, c in enumerate(database.cidrs)
                ),
            ]
        else:
            fixed_here = fixed
        for j, backend in enumerate(server.backends):
            spot = "cidrs[{k}]" if backend.cidrs else "host"
            for k, cidr in enumerate(backend.effective_cidrs):
                clash = overlap(cidr, fixed_here)
                if clash:
                    problems.append(f"mcp_servers[{i}].backends[{j}].{spot.format(k=k)}: {clash}")
    return problems


def _backends_across_servers(config: PerimeterConfig) -> list[str]:
    """One server's backend range that overlaps another server's backend would let the
    first reach the second's service (egress matches addresses, not intent), unless both
    declare the very same address: then they call one shared service on purpose."""
    declared = [
        (i, j, server, backend, [ipaddress.ip_network(c) for c in backend.effective_cidrs])
        for i, server in enumerate(config.mcp_servers)
        for j, backend in enumerate(server.backends)
    ]
    problems = []
    for i, j, server, backend, networks in declared:
        for k, m, other, theirs, their_networks in declared:
            if k <= i or (backend.host, sorted(map(str, networks))) == (
                theirs.host,
                sorted(map(str, their_networks)),
            ):
                continue
            for n, network in enumerate(networks):
                if any(
                    network.version == t.version and network.overlaps(t) for t in their_networks
                ):
                    spot = f"cidrs[{n}]" if backend.cidrs else "host"
                    problems.append(
                        f"mcp_servers[{i}].backends[{j}].{spot}: {network} overlaps "
                        f"mcp_servers[{k}].backends[{m}] ({other.name}'s {theirs.name}), so "
                        f"{server.name} could reach it too; narrow the range, or declare the "
                        "identical address (host and cidrs) in both when it is one service"
                    )
    return problems


def _cidr_breadth(config: PerimeterConfig) -> list[str]:
    problems = []
    for where, cidr in config_cidrs(config):
        network = ipaddress.ip_network(cidr)
        limit = config.min_cidr_prefix.ipv4 if network.version == 4 else config.min_cidr_prefix.ipv6
        if network.prefixlen < limit:
            problems.append(
                f"{where}: {cidr} is broader than /{limit}; name narrower ranges "
                f"(or lower min_cidr_prefix.ipv{network.version} deliberately)"
            )
    return problems


def _name_collisions(config: PerimeterConfig) -> list[str]:
    """Generated Kubernetes names that two config entries would both produce.

    Role names are checked where they are derived; Secret names follow other
    rules ('_' becomes '-'), so server `a-db-b` and tool `b_c` of server `a`
    could otherwise share one Secret.
    """

    return [
        f"{where}: its Secret {name!r} would also be the Secret of {first}"
        for name, where, first in repeats(naming.generated_secret_names(config))
    ]


def config_cidrs(config: PerimeterConfig) -> list[tuple[str, str]]:
    """(field path, CIDR) of every address range the config names."""
    found = [(f"platform.api_cidrs[{i}]", c) for i, c in enumerate(config.platform.api_cidrs)]
    found += [
        (f"platform.tunnel_edge_cidrs[{i}]", c)
        for i, c in enumerate(config.platform.tunnel_edge_cidrs)
    ]
    found += [
        (f"cluster.service_cidrs[{i}]", c) for i, c in enumerate(config.cluster.service_cidrs)
    ]
    for name, database in config.databases.items():
        found += [(f"databases.{name}.cidrs[{i}]", c) for i, c in enumerate(database.cidrs)]
    for i, server in enumerate(config.mcp_servers):
        for j, backend in enumerate(server.backends):
            found += [
                (f"mcp_servers[{i}].backends[{j}].cidrs[{k}]", c)
                for k, c in enumerate(backend.cidrs)
            ]
    return found


def config_images(config: PerimeterConfig) -> list[tuple[str, ImageRef]]:
    found = [
        ("tunnel.proxy_image", config.tunnel.proxy_image),
        ("tunnel.cloudflared_image", config.tunnel.cloudflared_image),
        ("provisioner.image", config.provisioner.image),
    ]
    found += [(f"sandboxes[{i}].image", p.image) for i, p in enumerate(config.sandboxes)]
    found += [(f"mcp_servers[{i}].image", s.image) for i, s in enumerate(config.mcp_servers)]
    return found
