"""The contract's names adapted to the config's models: what the program and its tests call.

Every name, label and form is defined once, in infra/contract/names.py (the layer the
policy pack holds a generated copy of); the builders here only take a server or a tool
where the contract takes its name, and `generated_secret_names` lists them per config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from infra.contract import names as contract
from infra.contract.names import (
    AGENT_DEFINITION_KEY as AGENT_DEFINITION_KEY,
    ANNOTATION_BACKEND as ANNOTATION_BACKEND,
    ANNOTATION_BOUNDARY_RESTORED as ANNOTATION_BOUNDARY_RESTORED,
    ANNOTATION_DATABASE_ROLE as ANNOTATION_DATABASE_ROLE,
    ANNOTATION_GRANTS as ANNOTATION_GRANTS,
    ANNOTATION_MCP_SERVER_URL as ANNOTATION_MCP_SERVER_URL,
    ANNOTATION_PATCH_FORCE as ANNOTATION_PATCH_FORCE,
    ANNOTATION_READER as ANNOTATION_READER,
    ANNOTATION_SERVING_CERTIFICATE as ANNOTATION_SERVING_CERTIFICATE,
    ANNOTATION_TOOL_ACCESS as ANNOTATION_TOOL_ACCESS,
    ANNOTATION_UPSTREAM_CA as ANNOTATION_UPSTREAM_CA,
    COMPONENT_MCP_SERVER as COMPONENT_MCP_SERVER,
    COMPONENT_PROVISIONER as COMPONENT_PROVISIONER,
    COMPONENT_SANDBOX as COMPONENT_SANDBOX,
    COMPONENT_SERVING_CERTIFICATE as COMPONENT_SERVING_CERTIFICATE,
    COMPONENT_TUNNEL as COMPONENT_TUNNEL,
    COMPONENT_UPSTREAM_CA as COMPONENT_UPSTREAM_CA,
    CREDENTIAL_BACKEND as CREDENTIAL_BACKEND,
    CREDENTIAL_DATABASE_ADMIN as CREDENTIAL_DATABASE_ADMIN,
    CREDENTIAL_DATABASE_ROLE as CREDENTIAL_DATABASE_ROLE,
    CREDENTIAL_ENVIRONMENT_KEY as CREDENTIAL_ENVIRONMENT_KEY,
    CREDENTIAL_NAME_FORMS as CREDENTIAL_NAME_FORMS,
    CREDENTIAL_PLATFORM_TOKEN as CREDENTIAL_PLATFORM_TOKEN,
    CREDENTIAL_ROLE_VERIFIERS as CREDENTIAL_ROLE_VERIFIERS,
    CREDENTIAL_SERVING_TLS as CREDENTIAL_SERVING_TLS,
    CREDENTIAL_TUNNEL_TLS as CREDENTIAL_TUNNEL_TLS,
    CREDENTIAL_TUNNEL_TOKEN as CREDENTIAL_TUNNEL_TOKEN,
    LABEL_AGENT_DEFINITION as LABEL_AGENT_DEFINITION,
    LABEL_COMPONENT as LABEL_COMPONENT,
    LABEL_CREDENTIAL as LABEL_CREDENTIAL,
    LABEL_ENVIRONMENT as LABEL_ENVIRONMENT,
    LABEL_INSTANCE as LABEL_INSTANCE,
    LABEL_MANAGED_BY as LABEL_MANAGED_BY,
    LABEL_MCP_SERVER as LABEL_MCP_SERVER,
    LABEL_NAME as LABEL_NAME,
    LABEL_PART_OF as LABEL_PART_OF,
    LABEL_ROLE_SQL as LABEL_ROLE_SQL,
    NAMESPACE_NAME_LABEL as NAMESPACE_NAME_LABEL,
    OUTBOUND_ONLY as OUTBOUND_ONLY,
    PART_OF as PART_OF,
    ROLE_SQL_KEY as ROLE_SQL_KEY,
    SANDBOX_RELEASE as SANDBOX_RELEASE,
    TUNNEL_CONFIG_KEY as TUNNEL_CONFIG_KEY,
    TUNNEL_RELEASE as TUNNEL_RELEASE,
    TUNNEL_TLS_SECRET as TUNNEL_TLS_SECRET,
    UPSTREAM_CA_CONFIG_MAP as UPSTREAM_CA_CONFIG_MAP,
    admin_secret_name as admin_secret_name,
    certificate_sha256 as certificate_sha256,
    common_labels as common_labels,
    credential_by_name as credential_by_name,
    database_ca_config_map as database_ca_config_map,
    environment_key_secret_name as environment_key_secret_name,
    issued_base as issued_base,
    issued_name as issued_name,
    keyed_name as keyed_name,
    password_env as password_env,
    provisioner_name as provisioner_name,
    provisioner_selector as provisioner_selector,
    provisioning_digest as provisioning_digest,
    role_name as role_name,
    sandbox_release as sandbox_release,
    sandbox_selector as sandbox_selector,
    selector_labels as selector_labels,
    server_tls_secret as server_tls_secret,
    tunnel_selector as tunnel_selector,
    tunnel_token_secret_name as tunnel_token_secret_name,
    vault_name as vault_name,
    verifiers_secret_name as verifiers_secret_name,
)

if TYPE_CHECKING:
    from infra.pure.config import McpServer, PerimeterConfig, Tool


def _name(server: McpServer | str) -> str:
    return server if isinstance(server, str) else server.name


def mcp_release(server: McpServer | str) -> str:
    return contract.mcp_release(_name(server))


def mcp_service_host(namespace: str, server: McpServer | str) -> str:
    return contract.mcp_service_host(namespace, _name(server))


def mcp_in_cluster_origin(namespace: str, server: McpServer, tls: bool) -> str:
    """https when the server serves the managed certificate (`upstream_tls.enabled`)."""
    return contract.in_cluster_origin(namespace, server.name, server.port, tls)


def mcp_url(server: McpServer, domain: str) -> str:
    return contract.mcp_url(server.route_name, domain, server.path)


def mcp_server_selector(server: McpServer | str) -> dict[str, str]:
    return selector_labels(COMPONENT_MCP_SERVER, mcp_release(server))


@dataclass(frozen=True)
class Placement:
    """Where a component's objects go: the environment's namespace and its label value.

    The slice of the config every component shares, so none needs the whole config."""

    namespace: str
    environment: str


def tool_secret_name(server: McpServer, tool: Tool, epoch: int) -> str:
    return contract.tool_secret_name(server.name, tool.name, epoch)


def platform_token_secret_name(server: McpServer, epoch: int, retiring: int | None = None) -> str:
    return contract.platform_token_secret_name(server.name, epoch, retiring)


def backend_secret_name(server: McpServer | str, backend: str) -> str:
    return contract.backend_secret_name(_name(server), backend)


def tool_role(server: McpServer, tool: Tool) -> str:
    return contract.role_name(server.name, tool.name)


def vault_credential_name(server: McpServer | str) -> str:
    """Display name of the vault credential holding one server's platform token."""
    return mcp_release(server)


def generated_secret_names(config: PerimeterConfig) -> list[tuple[str, str]]:
    """(Secret name, config field it derives from) of every Secret the program creates.

    A name that ends in a digest of its content (a certificate, a configured credential, the
    role SQL: `issued_name`, `keyed_name`, `verifiers_secret_name`) is listed by the base
    before `-<digest>`, which is what two entries could share.
    """
    names: list[tuple[str, str]] = [
        (tunnel_token_secret_name(config.tunnel.token_epoch), "tunnel.token_epoch"),
        (TUNNEL_TLS_SECRET, "tunnel"),
    ]
    for i, server in enumerate(config.mcp_servers):
        epoch = config.rotation_epoch
        names.append(
            (platform_token_secret_name(server, server.token_epoch), f"mcp_servers[{i}].name")
        )
        if config.upstream_tls.enabled:
            names.append((server_tls_secret(server.name), f"mcp_servers[{i}].name"))
        names += [
            (tool_secret_name(server, tool, epoch), f"mcp_servers[{i}].tools[{j}].name")
            for j, tool in enumerate(server.tools)
            if server.database is not None
        ]
        names += [
            (backend_secret_name(server, backend.name), f"mcp_servers[{i}].backends[{j}].name")
            for j, backend in enumerate(server.backends)
            if backend.credential
        ]
    for database in config.databases:
        names += [
            (contract.admin_secret_name(database), f"databases.{database}"),
            (verifiers_secret_name(database, digest=""), f"databases.{database}"),
        ]
    names += [
        (environment_key_secret_name(pool.name), f"sandboxes[{i}].name")
        for i, pool in enumerate(config.sandboxes)
    ]
    return names
