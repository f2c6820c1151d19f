"""One environment, assembled from the components in dependency order.

The one place the config is sliced: each component gets its own section and the
cross-references resolved for it (a pool its servers' URLs, a provisioner its SQL), never
the whole config, so each can be reused and tested alone.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from infra.engine.components.admission_policies import AdmissionPolicies, AdmissionPoliciesArgs
from infra.engine.components.agent_definition import AgentDefinition, AgentDefinitionArgs
from infra.engine.components.mcp_credentials import McpServerCredentials, McpServerCredentialsArgs
from infra.engine.components.mcp_server import McpServer, McpServerArgs
from infra.engine.components.mcp_tunnel import (
    McpTunnel,
    McpTunnelArgs,
    TunnelSecrets,
    tunnel_routes,
)
from infra.engine.components.namespace import PerimeterNamespace, PerimeterNamespaceArgs
from infra.engine.components.network_boundary import NetworkBoundary, NetworkBoundaryArgs
from infra.engine.components.platform_vault import PlatformVault, PlatformVaultArgs
from infra.engine.components.role_provisioner import RoleProvisioner, RoleProvisionerArgs
from infra.engine.components.sandbox_environment import SandboxEnvironment, SandboxEnvironmentArgs
from infra.engine.components.sandbox_pool import SandboxPool, SandboxPoolArgs
from infra.engine.components.upstream_tls import UpstreamTls, UpstreamTlsArgs
from infra.pure.agent import agent_tools
from infra.pure.config import (
    AgentSpec,
    McpServer as McpServerConfig,
    PerimeterConfig,
    PerimeterSecrets,
    SandboxPool as SandboxPoolConfig,
    as_secret,
)
from infra.pure.database.sql import role_sql, roles_for
from infra.pure.naming import (
    UPSTREAM_CA_CONFIG_MAP,
    Placement,
    mcp_in_cluster_origin,
    mcp_release,
    mcp_service_host,
    server_tls_secret,
)
from infra.pure.network import (
    allowed_egress_cidrs,
    boundaries_summary,
    network_policies,
    used_databases,
)


@dataclass
class Perimeter:
    """What `build` created, for the tests and the stack outputs."""

    namespace: PerimeterNamespace
    network: NetworkBoundary
    admission: AdmissionPolicies
    credentials: dict[str, McpServerCredentials]
    provisioners: dict[str, RoleProvisioner]
    servers: dict[str, McpServer]
    tunnel: McpTunnel
    upstream_tls: UpstreamTls | None
    sandboxes: dict[str, SandboxPool]
    agents: dict[str, AgentDefinition]
    vault: PlatformVault | None
    vault_credentials: pulumi.Output[list]
    environment_ids: dict[str, pulumi.Output[str]]


def platform_connection(
    config: PerimeterConfig, secrets: PerimeterSecrets
) -> pulumi.Output[dict[str, Any]] | None:
    """What every platform resource reaches the API with; None when the platform is not managed."""
    if not config.platform.enabled:
        return None
    assert secrets.platform_api_key is not None, "load_pulumi requires platformApiKey"

    def connection(api_key: str) -> dict[str, Any]:
        return {
            "api_key": api_key,
            "base_url": config.platform.base_url,
            "workspace_id": config.platform.workspace_id,
        }

    return as_secret(secrets.platform_api_key.apply(connection))


def server_url(config: PerimeterConfig, server: McpServerConfig, domain: str) -> str:
    return config.mcp_url(server, domain)


def placement(config: PerimeterConfig) -> Placement:
    return Placement(config.namespace, config.environment)


def tunnel_args(
    config: PerimeterConfig,
    secrets: PerimeterSecrets,
    connection: pulumi.Input[dict[str, Any]] | None = None,
    certificates: UpstreamTls | None = None,
) -> McpTunnelArgs:
    return McpTunnelArgs(
        placement(config),
        config.tunnel,
        TunnelSecrets(
            tls_cert=secrets.tunnel_tls_cert,
            tls_key=secrets.tunnel_tls_key,
            token=secrets.tunnel_token,
            ca_cert=secrets.tunnel_ca_cert,
        ),
        routes=tunnel_routes(config.namespace, config.mcp_servers, config.upstream_tls.enabled),
        service_cidrs=config.cluster.service_cidrs,
        metrics_port=config.metrics.proxy_port if config.metrics else None,
        connection=connection,
        upstream_ca_config_map=certificates.ca_config_map if certificates else None,
        upstream_ca_sha256=certificates.ca_sha256 if certificates else None,
    )


def sandbox_pool_args(
    config: PerimeterConfig,
    pool: SandboxPoolConfig,
    environment_key: pulumi.Input[str],
    environment_id: pulumi.Input[str] | None = None,
) -> SandboxPoolArgs:
    """The pool gets the URLs of the servers it may dial directly, in the scheme they serve."""
    direct = {
        name: mcp_in_cluster_origin(
            config.namespace, config.server(name), config.upstream_tls.enabled
        )
        + config.server(name).path
        for name in pool.direct_mcp_access
    }
    return SandboxPoolArgs(placement(config), pool, environment_key, environment_id, direct)


def role_provisioner_args(
    config: PerimeterConfig,
    database: str,
    admin_password: pulumi.Output[str],
    verifiers: Mapping[str, pulumi.Output[str]],
) -> RoleProvisionerArgs:
    return RoleProvisionerArgs(
        placement(config),
        database,
        config.databases[database],
        config.provisioner,
        config.rotation_epoch,
        role_sql(config, database),
        roles_for(config, database),
        admin_password,
        verifiers,
    )


def agent_args(
    config: PerimeterConfig,
    agent: AgentSpec | None,
    domain: pulumi.Input[str],
    connection: pulumi.Input[dict[str, Any]] | None = None,
) -> AgentDefinitionArgs:
    """No agents configured: the legacy single definition over every server."""
    system = config.system_prompt(agent) if agent is not None else ""
    return AgentDefinitionArgs(
        placement(config), agent, agent_tools(config, agent), domain, connection, system
    )


def server_dns_names(config: PerimeterConfig, server: McpServerConfig) -> list[str]:
    """Every name the Service answers to in the cluster; the proxy dials the first."""
    release = mcp_release(server)
    return [
        mcp_service_host(config.namespace, server),
        f"{release}.{config.namespace}.svc",
        release,
    ]


def upstream_tls(config: PerimeterConfig, opts: pulumi.ResourceOptions) -> UpstreamTls | None:
    settings = config.upstream_tls
    if not settings.enabled:
        return None
    return UpstreamTls(
        "upstream-tls",
        UpstreamTlsArgs(
            namespace=config.namespace,
            environment=config.environment,
            servers={
                s.name: (server_tls_secret(s.name), server_dns_names(config, s))
                for s in config.mcp_servers
            },
            validity_hours=settings.validity_hours,
            renew_within_hours=settings.renew_within_hours,
            ca_config_map=UPSTREAM_CA_CONFIG_MAP,
            ca_validity_hours=settings.ca_validity_hours,
        ),
        opts,
    )


def build(
    config: PerimeterConfig,
    secrets: PerimeterSecrets,
    restore_tokens: Mapping[str, str] | None = None,
) -> Perimeter:
    """Register every resource of one environment, cluster and platform (`export_outputs` then
    exports what an operator reads).

    The NetworkPolicies exist before any workload, and each MCP server waits for
    its database roles, so no pod ever runs unfenced or without its role. Every
    MCP server URL derives from the tunnel's domain; a vault credential changes
    only after its server rolled out with the token it will hold.
    """
    for warning in config.warnings:
        pulumi.log.warn(warning)
    connection = platform_connection(config, secrets)
    place = placement(config)
    namespace = PerimeterNamespace("perimeter", PerimeterNamespaceArgs(place, config.quota))
    after_namespace = pulumi.ResourceOptions(depends_on=[namespace])
    network = NetworkBoundary(
        "network",
        NetworkBoundaryArgs(network_policies(config), restore_tokens or {}),
        after_namespace,
    )
    admission = AdmissionPolicies(
        "admission", AdmissionPoliciesArgs(place, allowed_egress_cidrs(config)), after_namespace
    )
    fenced = pulumi.ResourceOptions(depends_on=[namespace, network])

    certificates = upstream_tls(config, after_namespace)
    tunnel = McpTunnel(
        "tunnel",
        tunnel_args(config, secrets, connection, certificates),
        pulumi.ResourceOptions(
            depends_on=[namespace, network, *([certificates] if certificates else [])]
        ),
    )
    urls: dict[str, pulumi.Output[str]] = {
        server.name: tunnel.domain.apply(functools.partial(server_url, config, server))
        for server in config.mcp_servers
    }
    credentials = {
        server.name: McpServerCredentials(
            f"credentials-{server.name}",
            McpServerCredentialsArgs(
                place,
                server,
                config.rotation_epoch,
                urls[server.name],
                {
                    backend: value
                    for (owner, backend), value in secrets.backend_credentials.items()
                    if owner == server.name
                },
            ),
            after_namespace,
        )
        for server in config.mcp_servers
    }
    provisioners = {}
    for database in used_databases(config):
        verifiers = {
            role: verifier
            for server in config.mcp_servers
            if server.database == database
            for role, verifier in credentials[server.name].verifiers.items()
        }
        provisioners[database] = RoleProvisioner(
            f"roles-{database}",
            role_provisioner_args(
                config, database, secrets.database_admin_passwords[database], verifiers
            ),
            fenced,
        )
    servers = {
        server.name: McpServer(
            f"mcp-{server.name}",
            McpServerArgs(
                place,
                server,
                credentials[server.name].tool_secrets,
                credentials[server.name].platform_token_secret,
                credentials[server.name].backend_secrets,
                tls_secret=certificates.server_secrets[server.name] if certificates else None,
                tls_cert_sha256=certificates.cert_sha256[server.name] if certificates else None,
                database=config.databases[server.database] if server.database else None,
            ),
            pulumi.ResourceOptions(
                depends_on=[
                    namespace,
                    network,
                    credentials[server.name],
                    *([provisioners[server.database]] if server.database else []),
                    *([certificates] if certificates else []),
                ]
            ),
        )
        for server in config.mcp_servers
    }
    sandboxes = {}
    environment_ids: dict[str, pulumi.Output[str]] = {}
    for pool in config.sandboxes:
        if connection is not None:
            environment_ids[pool.name] = SandboxEnvironment(
                f"environment-{pool.name}",
                SandboxEnvironmentArgs(config.environment, pool, connection),
            ).environment_id
        else:
            environment_ids[pool.name] = pulumi.Output.from_input(str(pool.environment_id))
        sandboxes[pool.name] = SandboxPool(
            f"sandbox-{pool.name}",
            sandbox_pool_args(
                config, pool, secrets.environment_keys[pool.name], environment_ids[pool.name]
            ),
            fenced,
        )
    vault = None
    if connection is not None:
        vault = PlatformVault(
            "platform",
            PlatformVaultArgs(
                config.environment,
                config.vault,
                config.mcp_servers,
                connection,
                urls={name: url for name, url in urls.items()},
                tokens={name: c.platform_token for name, c in credentials.items()},
                after={name: [server] for name, server in servers.items()},
            ),
        )
    specs = config.agents if config.agents else [None]
    agents = {
        (spec.name if spec else "agent"): AgentDefinition(
            f"agent-{spec.name}" if spec else "agent",
            agent_args(config, spec, tunnel.domain, connection),
            after_namespace,
        )
        for spec in specs
    }

    every_credential: pulumi.Output[list] = pulumi.Output.all(
        *[credentials[s.name].vault_credential for s in config.mcp_servers]
    )
    vault_credentials = as_secret(every_credential)
    return Perimeter(
        namespace,
        network,
        admission,
        credentials,
        provisioners,
        servers,
        tunnel,
        certificates,
        sandboxes,
        agents,
        vault,
        vault_credentials,
        environment_ids,
    )


def export_outputs(config: PerimeterConfig, perimeter: Perimeter) -> None:
    """The stack outputs: what an operator reads after `up`, apart from what `build` creates."""
    pulumi.export("namespace", perimeter.namespace.name)
    pulumi.export("boundaries", boundaries_summary(config))
    pulumi.export("tunnel_domain", perimeter.tunnel.domain)
    if perimeter.vault is None:
        # Outputs-only mode: a person copies these into the platform by hand.
        pulumi.export("agent_definitions", {n: a.definition for n, a in perimeter.agents.items()})
        pulumi.export("vault_credentials", perimeter.vault_credentials)
    else:
        pulumi.export("vault_id", perimeter.vault.vault.id)
        pulumi.export("environment_ids", perimeter.environment_ids)
        pulumi.export(
            "agents",
            {
                name: {"id": a.platform_agent.id, "version": a.platform_agent.version}
                for name, a in perimeter.agents.items()
                if a.platform_agent is not None
            },
        )
