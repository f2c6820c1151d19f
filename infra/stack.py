"""One environment, assembled from the components in dependency order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from infra.components.admission_policies import AdmissionPolicies, AdmissionPoliciesArgs
from infra.components.agent_definition import AgentDefinition, AgentDefinitionArgs
from infra.components.mcp_credentials import McpServerCredentials, McpServerCredentialsArgs
from infra.components.mcp_server import McpServer, McpServerArgs
from infra.components.mcp_tunnel import McpTunnel, McpTunnelArgs
from infra.components.namespace import PerimeterNamespace, PerimeterNamespaceArgs
from infra.components.network_boundary import NetworkBoundary, NetworkBoundaryArgs
from infra.components.role_provisioner import RoleProvisioner, RoleProvisionerArgs
from infra.components.sandbox_pool import SandboxPool, SandboxPoolArgs
from infra.config import PerimeterConfig, PerimeterSecrets, as_secret
from infra.network import boundaries_summary, used_databases


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
    sandbox: SandboxPool
    agent: AgentDefinition
    vault_credentials: pulumi.Output[list]


def build(
    config: PerimeterConfig,
    secrets: PerimeterSecrets,
    restore_tokens: Mapping[str, str] | None = None,
) -> Perimeter:
    """Register every resource of one environment and export its outputs.

    The NetworkPolicies exist before any workload, and each MCP server waits for
    its database roles, so no pod ever runs unfenced or without its role.
    """
    namespace = PerimeterNamespace("perimeter", PerimeterNamespaceArgs(config))
    after_namespace = pulumi.ResourceOptions(depends_on=[namespace])
    network = NetworkBoundary(
        "network", NetworkBoundaryArgs(config, restore_tokens or {}), after_namespace
    )
    admission = AdmissionPolicies("admission", AdmissionPoliciesArgs(config), after_namespace)
    fenced = pulumi.ResourceOptions(depends_on=[namespace, network])

    credentials = {
        server.name: McpServerCredentials(
            f"credentials-{server.name}", McpServerCredentialsArgs(config, server), after_namespace
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
            RoleProvisionerArgs(
                config, database, secrets.database_admin_passwords[database], verifiers
            ),
            fenced,
        )
    servers = {
        server.name: McpServer(
            f"mcp-{server.name}",
            McpServerArgs(
                config,
                server,
                credentials[server.name].tool_secrets,
                credentials[server.name].platform_token_secret,
            ),
            pulumi.ResourceOptions(
                depends_on=[
                    namespace,
                    network,
                    credentials[server.name],
                    provisioners[server.database],
                ]
            ),
        )
        for server in config.mcp_servers
    }
    tunnel = McpTunnel("tunnel", McpTunnelArgs(config, secrets), fenced)
    sandbox = SandboxPool("sandbox", SandboxPoolArgs(config, secrets), fenced)
    agent = AgentDefinition("agent", AgentDefinitionArgs(config), after_namespace)

    every_credential: pulumi.Output[list] = pulumi.Output.all(
        *[credentials[s.name].vault_credential for s in config.mcp_servers]
    )
    vault_credentials = as_secret(every_credential)
    pulumi.export("namespace", namespace.name)
    pulumi.export("agent_definition", agent.definition)
    pulumi.export("vault_credentials", vault_credentials)
    pulumi.export("boundaries", boundaries_summary(config))
    return Perimeter(
        namespace,
        network,
        admission,
        credentials,
        provisioners,
        servers,
        tunnel,
        sandbox,
        agent,
        vault_credentials,
    )
