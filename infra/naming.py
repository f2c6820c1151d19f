"""Names and labels shared by the program, the charts, the policies and the audit.

NetworkPolicies select pods by the labels the charts put on them, and the
policies and audit recognise credentials by the labels and annotations the
program puts on Secrets. Those the policy pack reads too are defined in
policies/rules/names.py (the pack runs without the program) and imported here; the rest are
defined here. Either way, once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from policies.rules import names as rule_names

# The names the policy pack reads too: defined there (it runs without the program), re-exported.
from policies.rules.names import (
    ANNOTATION_BACKEND as ANNOTATION_BACKEND,
    ANNOTATION_DATABASE_ROLE as ANNOTATION_DATABASE_ROLE,
    ANNOTATION_MCP_SERVER_URL as ANNOTATION_MCP_SERVER_URL,
    ANNOTATION_READER as ANNOTATION_READER,
    ANNOTATION_TOOL_ACCESS as ANNOTATION_TOOL_ACCESS,
    COMPONENT_MCP_SERVER as COMPONENT_MCP_SERVER,
    COMPONENT_PROVISIONER as COMPONENT_PROVISIONER,
    COMPONENT_SANDBOX as COMPONENT_SANDBOX,
    COMPONENT_TUNNEL as COMPONENT_TUNNEL,
    CREDENTIAL_BACKEND as CREDENTIAL_BACKEND,
    CREDENTIAL_DATABASE_ADMIN as CREDENTIAL_DATABASE_ADMIN,
    CREDENTIAL_DATABASE_ROLE as CREDENTIAL_DATABASE_ROLE,
    CREDENTIAL_PLATFORM_TOKEN as CREDENTIAL_PLATFORM_TOKEN,
    LABEL_AGENT_DEFINITION as LABEL_AGENT_DEFINITION,
    LABEL_COMPONENT as LABEL_COMPONENT,
    LABEL_CREDENTIAL as LABEL_CREDENTIAL,
    LABEL_INSTANCE as LABEL_INSTANCE,
    LABEL_NAME as LABEL_NAME,
    LABEL_ROLE_SQL as LABEL_ROLE_SQL,
    NAMESPACE_NAME_LABEL as NAMESPACE_NAME_LABEL,
    UPSTREAM_CA_CONFIG_MAP as UPSTREAM_CA_CONFIG_MAP,
)

if TYPE_CHECKING:
    from infra.config import McpServer, PerimeterConfig, Tool

PART_OF = "agent-perimeter"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

# The perimeter's own vocabulary.
LABEL_ENVIRONMENT = "agent-perimeter.io/environment"
ANNOTATION_GRANTS = "agent-perimeter.io/grants"
# Changed when a NetworkPolicy's live rules drifted, so the provider re-applies it (boundary_repair).
ANNOTATION_BOUNDARY_RESTORED = "agent-perimeter.io/boundary-restored"
# Server-side apply takes the fields back from whichever manager edited them by hand.
ANNOTATION_PATCH_FORCE = "pulumi.com/patchForce"

# Values of LABEL_CREDENTIAL: what a Secret grants.
CREDENTIAL_TUNNEL_TOKEN = "tunnel-token"
CREDENTIAL_TUNNEL_TLS = "tunnel-tls"
CREDENTIAL_ENVIRONMENT_KEY = "environment-key"
CREDENTIAL_ROLE_VERIFIERS = "role-verifiers"

TUNNEL_RELEASE = "mcp-tunnel"
SANDBOX_RELEASE = "sandbox-runner"


def mcp_release(server: McpServer | str) -> str:
    """Release (and Deployment, Service) name of one MCP server; contains the chart name
    so the chart's fullname helper keeps it unchanged."""
    return rule_names.mcp_release(server if isinstance(server, str) else server.name)


def mcp_service_host(namespace: str, server: McpServer | str) -> str:
    """The server's Service in the cluster: what the proxy and a direct pool dial, and the
    name its certificate is issued for."""
    return f"{mcp_release(server)}.{namespace}.svc.cluster.local"


def mcp_in_cluster_origin(namespace: str, server: McpServer, tls: bool) -> str:
    """scheme://host:port of the server inside the cluster: https when it serves the managed
    certificate (`upstream_tls.enabled`), http otherwise."""
    scheme = "https" if tls else "http"
    return f"{scheme}://{mcp_service_host(namespace, server)}:{server.port}"


def mcp_url(server: McpServer, domain: str) -> str:
    """The exact URL the platform dials and the vault credential is bound to: the server's
    route under the tunnel's domain, as the platform assigned it."""
    return f"https://{server.route_name}.{domain}{server.path}"


def provisioner_name(database: str) -> str:
    return rule_names.provisioner_name(database)


def provisioning_digest(rotation_epoch: int, sql: str) -> str:
    """Suffix of one provisioning run's Job, SQL ConfigMap and verifiers Secret: new SQL or a
    new epoch is a new set, created before the old one goes."""
    return hashlib.sha256(f"{rotation_epoch}\n{sql}".encode()).hexdigest()[:10]


def verifiers_secret_name(database: str, digest: str) -> str:
    """Named like the Job that reads it: a rotation creates both before deleting either.
    With no digest, the base the collision check compares."""
    base = f"{provisioner_name(database)}-verifiers"
    return f"{base}-{digest}" if digest else base


def selector_labels(chart: str, release: str) -> dict[str, str]:
    """The labels a chart's pods carry and its selectors (and our NetworkPolicies) match."""
    return {LABEL_NAME: chart, LABEL_INSTANCE: release}


def mcp_server_selector(server: McpServer | str) -> dict[str, str]:
    return selector_labels(COMPONENT_MCP_SERVER, mcp_release(server))


def tunnel_selector() -> dict[str, str]:
    return selector_labels(COMPONENT_TUNNEL, TUNNEL_RELEASE)


def sandbox_release(pool: str | None = None) -> str:
    """Release of one sandbox pool; one pool per trust boundary, each its own pods and key."""
    return f"{SANDBOX_RELEASE}-{pool}" if pool else SANDBOX_RELEASE


def sandbox_selector(pool: str | None = None) -> dict[str, str]:
    return selector_labels(COMPONENT_SANDBOX, sandbox_release(pool))


def provisioner_selector(database: str) -> dict[str, str]:
    return selector_labels(COMPONENT_PROVISIONER, provisioner_name(database))


@dataclass(frozen=True)
class Placement:
    """Where a component's objects go: the environment's namespace and its label value.

    The slice of the config every component shares, so none needs the whole config."""

    namespace: str
    environment: str


def common_labels(component: str, instance: str, environment: str) -> dict[str, str]:
    """Labels of objects the program creates itself (not through a chart)."""
    return {
        LABEL_NAME: component,
        LABEL_INSTANCE: instance,
        LABEL_COMPONENT: component,
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: "pulumi",
        LABEL_ENVIRONMENT: environment,
    }


def tool_secret_name(server: McpServer, tool: Tool, epoch: int) -> str:
    return rule_names.tool_secret_name(server.name, tool.name, epoch)


def platform_token_secret_name(server: McpServer, epoch: int, retiring: int | None = None) -> str:
    return rule_names.platform_token_secret_name(server.name, epoch, retiring)


TUNNEL_TLS_SECRET = f"{TUNNEL_RELEASE}-tls"


def environment_key_secret_name(pool: str) -> str:
    """The pool's environment key: read by that pool's workers only."""
    return f"{sandbox_release(pool)}-environment-key"


def tunnel_token_secret_name(epoch: int) -> str:
    """Carries the tunnel's `token_epoch`: a rotated token is a new Secret, created first."""
    return f"{TUNNEL_RELEASE}-token-r{epoch}"


def backend_secret_name(server: McpServer | str, backend: str) -> str:
    return rule_names.backend_secret_name(
        server if isinstance(server, str) else server.name, backend
    )


def tool_role(server: McpServer, tool: Tool) -> str:
    return rule_names.role_name(server.name, tool.name)


def password_env(role: str) -> str:
    """Environment variable a provisioning Job reads one role's SCRAM verifier from."""
    return f"VERIFIER_{role.upper()}"


def vault_credential_name(server: McpServer | str) -> str:
    """Display name of the vault credential holding one server's platform token."""
    return mcp_release(server)


def vault_name(environment: str, configured: str | None = None) -> str:
    return configured or f"agent-perimeter-{environment}"


def database_ca_config_map(database: str) -> str:
    """ConfigMap holding the CA a database's server certificate is verified against."""
    return f"database-ca-{database.replace('_', '-')}"


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
            (rule_names.admin_secret_name(database), f"databases.{database}"),
            (verifiers_secret_name(database, digest=""), f"databases.{database}"),
        ]
    names += [
        (environment_key_secret_name(pool.name), f"sandboxes[{i}].name")
        for i, pool in enumerate(config.sandboxes)
    ]
    return names


# TLS from the tunnel's proxy to each MCP server.
LABEL_MCP_SERVER = "agent-perimeter.io/mcp-server"
COMPONENT_SERVING_CERTIFICATE = "serving-certificate"
COMPONENT_UPSTREAM_CA = "upstream-ca"
CREDENTIAL_SERVING_TLS = "serving-tls"  # LABEL_CREDENTIAL of a server's certificate and key
# Pod annotation carrying the sha256 of the certificate a pod serves or trusts: a renewal
# changes it, so the pods roll onto the new certificate.
ANNOTATION_SERVING_CERTIFICATE = "checksum/serving-certificate"
ANNOTATION_UPSTREAM_CA = "checksum/upstream-ca"


def server_tls_secret(server_name: str) -> str:
    """Base name of the kubernetes.io/tls Secret of one server's serving certificate (see
    `issued_name`)."""
    return f"{mcp_release(server_name)}-tls"


def issued_name(base: str, certificate_pem: str) -> str:
    """The name of an object holding a certificate, carrying a digest of that (public)
    certificate: a renewed one is a new object, created before the old one is deleted, and the
    pods that mount it roll onto it. Kubernetes would otherwise replace a fixed-name Secret or
    ConfigMap by deleting it first, leaving starting pods without it."""
    return f"{base}-{certificate_sha256(certificate_pem)[:10]}"


def certificate_sha256(certificate_pem: str) -> str:
    """The digest pods carry in an annotation and certificate objects in their names."""
    return hashlib.sha256(certificate_pem.encode()).hexdigest()


def keyed_name(base: str, key: bytes, value: str) -> str:
    """The name of a Secret holding a configured credential: a digest of the value keyed by
    a random key from the state, so a changed credential is a new Secret (created first, the
    pods roll onto it) and the name tells nothing about the value."""
    return f"{base}-{hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:10]}"


_ISSUED = re.compile(
    rf"^({UPSTREAM_CA_CONFIG_MAP}|{mcp_release('[a-z0-9-]+')}-(?:tls|backend-[a-z0-9-]+))"
    r"-[0-9a-f]{10}$"
)


def issued_base(name: str) -> str | None:
    """The base of a name `issued_name` or `keyed_name` made, else None: offline, the digest
    is of a placeholder; live, of what the engine generated or the stack's secret holds. The
    base names both."""
    found = _ISSUED.match(name)
    return found[1] if found else None
