"""The layers agree: agent definition, vault credentials, tunnel routes and role grants.

Each mismatch here deploys cleanly and fails only at an agent's first tool call
(`mcp_authentication_failed_error`, a connection error, or a write that never asks).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from . import sql
from .contract import names
from .inventory import Document, Inventory, agent_servers, agent_toolsets
from .k8s import containers, pod_labels, pod_views
from .model import (
    ADVISORY,
    MANDATORY,
    Resource,
    Settings,
    Target,
    as_list,
    as_map,
    resource_rule,
    stack_rule,
)

MAX_MCP_SERVERS = 20
PERMISSION_POLICIES = frozenset({"always_allow", "always_ask"})
SERVER_KEYS = frozenset({"type", "name", "url"})
_UPSTREAM = re.compile(r"^https?://[A-Za-z0-9.-]+:[0-9]{1,5}$")
# Where operating systems and language runtimes keep their public CA bundles: a proxy that
# trusts one trusts every public CA, whatever the file is called.
SYSTEM_CA_LOCATIONS = (
    "/etc/ssl/",
    "/etc/pki/",
    "/etc/ca-certificates/",
    "/usr/share/ca-certificates/",
    "/usr/local/share/ca-certificates/",
    "/usr/lib/ssl/",
    "/usr/local/ssl/",
    "/system/etc/security/",
)


def _service_hosts(inventory: Inventory, namespace: str | None) -> dict[str, Resource]:
    """Every name a Service of `namespace` answers to inside the cluster -> the Service."""
    found: dict[str, Resource] = {}
    for service in inventory.kind("Service"):
        if service.effective_namespace != namespace:
            continue
        for host in names.service_hosts(service.object_name, str(namespace)):
            found[host] = service
    return found


def _route_host_problems(document: Document, inventory: Inventory) -> Iterator[str]:
    """Routes go to the perimeter's own MCP server Services, and the proxy checks the
    addresses it dials (no disable_ip_validation)."""
    data = as_map(document.data)
    upstream = as_map(data.get("upstream"))
    if upstream.get("disable_ip_validation") is True:
        yield "upstream.disable_ip_validation is true: the proxy would dial any address a name resolves to"
    if not inventory.kind("Service"):
        return  # the Services are not in this set (a chart not expanded): nothing to hold routes to
    services = _service_hosts(inventory, document.resource.effective_namespace)
    for route, target in sorted(as_map(data.get("routes")).items()):
        host = (urlsplit(str(target)).hostname or "").lower()
        service = services.get(host)
        if service is None:
            yield f"route {route} -> {target}: {host} is no Service of the perimeter's namespace"
        elif (
            as_map(service.spec.get("selector")).get(names.LABEL_NAME) != names.COMPONENT_MCP_SERVER
        ):
            yield f"route {route} -> {target}: {service.ref} is not an MCP server's Service"


def _ca_file_problem(ca_file: str, inventory: Inventory, namespace: str | None) -> str | None:
    """The proxy's CA file must be the managed CA: not a system bundle, and (when the tunnel's
    Deployment is in the set) a file of the upstream-CA ConfigMap its proxy mounts."""
    if ca_file.startswith(SYSTEM_CA_LOCATIONS) or "/certifi/" in ca_file:
        return f"upstream.tls.ca_file {ca_file} is a system CA bundle: every public CA would vouch"
    for workload in inventory.workloads:
        if workload.effective_namespace != namespace:
            continue
        if pod_labels(workload).get(names.LABEL_NAME) != names.COMPONENT_TUNNEL:
            continue
        for pod in pod_views(workload):
            volumes = {
                str(as_map(v).get("name")): as_map(v) for v in as_list(pod.spec.get("volumes"))
            }
            for _, container in containers(pod.spec):
                for mount in as_list(container.get("volumeMounts")):
                    mount = as_map(mount)
                    path = str(mount.get("mountPath", "")).rstrip("/") + "/"
                    source = as_map(volumes.get(str(mount.get("name")), {}).get("configMap"))
                    if ca_file.startswith(path) and str(source.get("name", "")).startswith(
                        names.UPSTREAM_CA_CONFIG_MAP
                    ):
                        return None
        return f"upstream.tls.ca_file {ca_file} is not in the managed upstream CA the proxy mounts"
    return None


def _definition_problems(data: Any) -> Iterator[str]:
    if not isinstance(data, Mapping):
        yield "the agent definition is not a JSON object"
        return
    servers = [as_map(s) for s in as_list(data.get("mcp_servers"))]
    if len(servers) > MAX_MCP_SERVERS:
        yield f"declares {len(servers)} MCP servers; the platform accepts at most {MAX_MCP_SERVERS}"
    declared = Counter(str(s.get("name")) for s in servers)
    for name, count in sorted(declared.items()):
        if count > 1:
            yield f"MCP server {name} is declared {count} times"
    for server in servers:
        name = str(server.get("name"))
        if server.get("type") != "url" or not str(server.get("url", "")).startswith("https://"):
            yield f'MCP server {name} must be {{"type": "url", "url": "https://..."}}'
        extra = sorted(set(server) - SERVER_KEYS)
        if extra:
            yield f"MCP server {name} carries {', '.join(extra)}: credentials live in vaults only"
    toolsets = [
        as_map(t) for t in as_list(data.get("tools")) if as_map(t).get("type") == "mcp_toolset"
    ]
    used = Counter(str(t.get("mcp_server_name")) for t in toolsets)
    for name in sorted(set(used) - set(declared)):
        yield f"an mcp_toolset names {name}, which is not a declared MCP server"
    for name in sorted(declared):
        if used[name] != 1:
            yield f"MCP server {name} is referenced by {used[name]} mcp_toolset entries, not exactly one"
    for toolset in toolsets:
        yield from _toolset_problems(toolset)


def _toolset_problems(toolset: Mapping[str, Any]) -> Iterator[str]:
    server = toolset.get("mcp_server_name")
    if as_map(toolset.get("default_config")).get("enabled") is not False:
        yield f"toolset {server}: default_config.enabled must be false (tools are allowlisted)"
    for config in as_list(toolset.get("configs")):
        config = as_map(config)
        policy = as_map(config.get("permission_policy")).get("type")
        if config.get("enabled") is not True or policy not in PERMISSION_POLICIES:
            yield (
                f"toolset {server}: tool {config.get('name')} needs enabled: true and a "
                "permission_policy of always_allow or always_ask"
            )


@resource_rule(
    "agent-definition-consistent",
    "The agent definition's two halves agree: each declared MCP server has exactly one toolset, "
    "each toolset names a declared server, tools are allowlisted.",
    "Regenerate the agent definition from the stack config (`python -m infra agent-config`) "
    "instead of editing it by hand.",
    kinds={"ConfigMap"},
)
def agent_definition_consistent(resource: Resource, settings: Settings) -> Iterator[str]:
    if str(resource.labels.get(names.LABEL_AGENT_DEFINITION)).lower() != "true":
        return
    text = as_map(resource.props.get("data")).get(names.AGENT_DEFINITION_KEY)
    if not isinstance(text, str):
        yield f"has no data key {names.AGENT_DEFINITION_KEY!r}"
        return
    try:
        data = json.loads(text)
    except ValueError as exc:
        yield f"{names.AGENT_DEFINITION_KEY} is not valid JSON: {exc}"
        return
    yield from _definition_problems(data)


def _server_urls(document: Document) -> list[tuple[str, str]]:
    return [(str(s.get("name")), str(s.get("url"))) for s in agent_servers(document)]


@stack_rule(
    "mcp-server-vault-credential",
    "Each MCP server URL in the agent definition has exactly one vault credential with the "
    "identical URL.",
    "Create exactly one platform-token Secret per server, annotated "
    "agent-perimeter.io/mcp-server-url with the server's URL character for character.",
)
def mcp_server_vault_credential(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    tokens: dict[str, list[Resource]] = defaultdict(list)
    for secret in inventory.secrets_granting(names.CREDENTIAL_PLATFORM_TOKEN):
        url = secret.annotations.get(names.ANNOTATION_MCP_SERVER_URL)
        if not url:
            problem = f"a platform token without the {names.ANNOTATION_MCP_SERVER_URL} annotation"
            yield secret, problem
        else:
            tokens[str(url)].append(secret)
    declared: set[str] = set()
    for document in inventory.agent_definitions:
        for name, url in _server_urls(document):
            declared.add(url)
            found = tokens.get(url, [])
            if len(found) != 1:
                extra = f": {', '.join(s.ref for s in found)}" if found else ""
                problem = (
                    f"MCP server {name} ({url}) has {len(found)} vault credentials with that "
                    f"exact URL, not one{extra}"
                )
                yield document.resource, problem
    if inventory.agent_definitions:
        for url, secrets in sorted(tokens.items()):
            if url not in declared:
                for secret in secrets:
                    yield secret, f"holds a token for {url}, which no declared MCP server uses"


def _routes(document: Document) -> tuple[str, Mapping[str, Any]] | None:
    data = as_map(document.data)
    domain = data.get("tunnel_domain")
    if not domain:
        return None
    return str(domain).lower(), as_map(data.get("routes"))


@stack_rule(
    "mcp-server-tunnel-route",
    "Each MCP server URL in the agent definition has exactly one route in the tunnel's proxy "
    "config.",
    "Add one route per server to the tunnel config (subdomain -> scheme://host:port, no path) and "
    "keep the server URL at https://<route>.<tunnel_domain>/<path>.",
)
def mcp_server_tunnel_route(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    configs = inventory.tunnel_configs
    if not configs:
        return  # nothing to compare with, e.g. the chart is not expanded under mocks
    tables = []
    for document in configs:
        parsed = _routes(document) if document.error is None else None
        if parsed is None:
            yield document.resource, document.error or "the tunnel config has no tunnel_domain"
            continue
        tables.append(parsed)
        for problem in _route_host_problems(document, inventory):
            yield document.resource, problem
        for route, upstream in sorted(parsed[1].items()):
            if not _UPSTREAM.match(str(upstream)):
                problem = f"route {route} -> {upstream!r} is not written scheme://host:port"
                yield document.resource, problem
    for document in inventory.agent_definitions:
        for name, url in _server_urls(document):
            host = (urlsplit(url).hostname or "").lower()
            if not any(host.endswith("." + domain) for domain, _ in tables):
                domains = ", ".join(sorted({d for d, _ in tables}))
                yield document.resource, f"MCP server {name} ({url}) is not under {domains}"
                continue
            matches = [
                key
                for domain, routes in tables
                if host.endswith("." + domain)
                for key in routes
                if str(key).lower() in (host, host[: -len(domain) - 1])
            ]
            if len(matches) != 1:
                problem = f"MCP server {name} ({url}) has {len(matches)} tunnel routes, not one"
                yield document.resource, problem


@stack_rule(
    "upstream-tls-required",
    "Every tunnel route reaches its MCP server over https, and the proxy trusts only the CA "
    "file it is given (upstream.tls.ca_file set, include_system_cas false).",
    "Turn on upstream_tls (the default): the program issues each server a certificate from its "
    "own CA, routes https://<server>.<namespace>.svc.cluster.local:<port>, and points the proxy's "
    "upstream.tls.ca_file at that CA only.",
    levels={"prod": MANDATORY, "*": ADVISORY},
)
def upstream_tls_required(inventory: Inventory, settings: Settings) -> Iterator[tuple[Target, str]]:
    for document in inventory.tunnel_configs:
        if document.error is not None:
            continue  # mcp-server-tunnel-route reports an unreadable config
        data = as_map(document.data)
        routes = as_map(data.get("routes"))
        for route, upstream in sorted(routes.items()):
            if not str(upstream).startswith("https://"):
                yield (
                    document.resource,
                    (
                        f"route {route} -> {upstream}: not https, so the platform bearer token "
                        "crosses the cluster network in clear"
                    ),
                )
        if not routes:
            continue
        tls = as_map(as_map(data.get("upstream")).get("tls"))
        if not tls.get("ca_file"):
            yield (
                document.resource,
                "upstream.tls.ca_file is unset: no managed CA vouches for the servers",
            )
        else:
            problem = _ca_file_problem(
                str(tls["ca_file"]), inventory, document.resource.effective_namespace
            )
            if problem:
                yield document.resource, problem
        if tls.get("include_system_cas") is not False:
            yield (
                document.resource,
                (
                    "upstream.tls.include_system_cas is not false: any public CA could vouch for an "
                    "upstream"
                ),
            )


def _declared_write_tools(inventory: Inventory) -> dict[str, set[str]]:
    """Server name -> its tools its pods declare `write` (ANNOTATION_TOOL_ACCESS)."""
    found: dict[str, set[str]] = defaultdict(set)
    for workload in inventory.workloads:
        labels = pod_labels(workload)
        if labels.get(names.LABEL_NAME) != names.COMPONENT_MCP_SERVER:
            continue
        server = str(labels.get(names.LABEL_INSTANCE, "")).removeprefix(names.mcp_release(""))
        for pod in pod_views(workload):
            text = as_map(pod.metadata.get("annotations")).get(names.ANNOTATION_TOOL_ACCESS)
            try:
                access = json.loads(str(text)) if text is not None else {}
            except ValueError:
                continue
            found[server] |= {str(t) for t, a in as_map(access).items() if a == "write"}
    return found


@stack_rule(
    "write-tools-always-ask",
    "A write tool is never always_allow: one whose role may write (INSERT, UPDATE, DELETE), or "
    "that its server's pods declare write (HTTP-backed tools included).",
    "Set the tool's permission_policy to always_ask, or make it a read tool (SELECT only, "
    "access: read).",
)
def write_tools_always_ask(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    writers: set[str] = set()
    for _, text in inventory.role_sql:
        for grant in sql.grants(text):
            if grant.writes:
                writers.update(grant.grantees)
    declared = _declared_write_tools(inventory)
    for document in inventory.agent_definitions:
        for toolset in agent_toolsets(document):
            server = str(toolset.get("mcp_server_name"))
            for config in as_list(toolset.get("configs")):
                config = as_map(config)
                policy = as_map(config.get("permission_policy")).get("type")
                role = names.role_name(server, str(config.get("name")))
                if policy != "always_allow":
                    continue
                if role in writers:
                    problem = (
                        f"tool {config.get('name')} of {server} runs without asking, "
                        f"yet its role {role} may write"
                    )
                    yield document.resource, problem
                elif str(config.get("name")) in declared.get(server, set()):
                    problem = (
                        f"tool {config.get('name')} of {server} runs without asking, "
                        "yet its server declares it a write tool"
                    )
                    yield document.resource, problem


RULES = (
    agent_definition_consistent,
    mcp_server_vault_credential,
    mcp_server_tunnel_route,
    upstream_tls_required,
    write_tools_always_ask,
)
