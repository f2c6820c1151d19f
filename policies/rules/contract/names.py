"""Every name, label, annotation and data key the layers recognise one another's objects by,
and the forms of the names the program builds, as functions of plain strings.

The program writes them (infra/pure/naming.py adapts them to the config's models), the charts
receive them as values, and the rules, the audit and the admission policies read them.
"""

from __future__ import annotations

import hashlib
import hmac
import re

LABEL_NAME = "app.kubernetes.io/name"
# Set by the API server on every namespace: what a namespaceSelector names one by.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "agent-perimeter"

LABEL_CREDENTIAL = "agent-perimeter.io/credential"
LABEL_ROLE_SQL = "agent-perimeter.io/role-sql"
LABEL_AGENT_DEFINITION = "agent-perimeter.io/agent-definition"
ANNOTATION_DATABASE_ROLE = "agent-perimeter.io/database-role"
ANNOTATION_MCP_SERVER_URL = "agent-perimeter.io/mcp-server-url"
ANNOTATION_READER = "agent-perimeter.io/reader"
ANNOTATION_BACKEND = "agent-perimeter.io/backend"
# On an MCP server's pods: each tool's access ({"tool": "read"|"write"}), HTTP-backed tools'
# included, so a write tool is known as one without a database grant to show it.
ANNOTATION_TOOL_ACCESS = "agent-perimeter.io/tool-access"
LABEL_ENVIRONMENT = "agent-perimeter.io/environment"
ANNOTATION_GRANTS = "agent-perimeter.io/grants"
# Changed when a NetworkPolicy's live rules drifted, so the provider re-applies it (boundary_repair).
ANNOTATION_BOUNDARY_RESTORED = "agent-perimeter.io/boundary-restored"
# Server-side apply takes the fields back from whichever manager edited them by hand.
ANNOTATION_PATCH_FORCE = "pulumi.com/patchForce"

CREDENTIAL_DATABASE_ROLE = "database-role"
CREDENTIAL_PLATFORM_TOKEN = "platform-token"
CREDENTIAL_DATABASE_ADMIN = "database-admin"
CREDENTIAL_BACKEND = "backend"
CREDENTIAL_TUNNEL_TOKEN = "tunnel-token"
CREDENTIAL_TUNNEL_TLS = "tunnel-tls"
CREDENTIAL_ENVIRONMENT_KEY = "environment-key"
CREDENTIAL_ROLE_VERIFIERS = "role-verifiers"
CREDENTIAL_SERVING_TLS = "serving-tls"  # a server's certificate and key

COMPONENT_MCP_SERVER = "mcp-server"
COMPONENT_TUNNEL = "mcp-tunnel"
COMPONENT_SANDBOX = "sandbox-runner"
COMPONENT_PROVISIONER = "role-provisioner"
COMPONENT_SERVING_CERTIFICATE = "serving-certificate"
COMPONENT_UPSTREAM_CA = "upstream-ca"

TUNNEL_RELEASE = "mcp-tunnel"
SANDBOX_RELEASE = "sandbox-runner"
TUNNEL_TLS_SECRET = f"{TUNNEL_RELEASE}-tls"
# TLS from the tunnel's proxy to each MCP server.
LABEL_MCP_SERVER = "agent-perimeter.io/mcp-server"
# Pod annotation carrying the sha256 of the certificate a pod serves or trusts: a renewal
# changes it, so the pods roll onto the new certificate.
ANNOTATION_SERVING_CERTIFICATE = "checksum/serving-certificate"
ANNOTATION_UPSTREAM_CA = "checksum/upstream-ca"

ROLE_SQL_KEY = "roles.sql"
# The base name of the ConfigMap holding the CA the tunnel's proxy trusts for its upstreams.
UPSTREAM_CA_CONFIG_MAP = "mcp-upstream-ca"
AGENT_DEFINITION_KEY = "agent-definition.json"
TUNNEL_CONFIG_KEY = "config.yaml"

# Pods nothing may dial: they only ever connect outwards.
OUTBOUND_ONLY = frozenset({COMPONENT_TUNNEL, COMPONENT_SANDBOX})


def mcp_release(server: str) -> str:
    """Release (and Deployment, Service) name of one MCP server; contains the chart name
    so the chart's fullname helper keeps it unchanged."""
    return f"mcp-server-{server}"


def service_hosts(service: str, namespace: str) -> tuple[str, ...]:
    """Every name a Service answers to inside the cluster, the fully qualified one last."""
    return (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    )


def mcp_service_host(namespace: str, server: str) -> str:
    """The server's Service in the cluster: what the proxy and a direct pool dial, and the
    name its certificate is issued for."""
    return service_hosts(mcp_release(server), namespace)[-1]


def in_cluster_origin(namespace: str, server: str, port: int, tls: bool) -> str:
    """scheme://host:port of a server inside the cluster: https when it serves the managed
    certificate, http otherwise."""
    return f"{'https' if tls else 'http'}://{mcp_service_host(namespace, server)}:{port}"


def mcp_url(route_name: str, domain: str, path: str) -> str:
    """The exact URL the platform dials and the vault credential is bound to: the server's
    route under the tunnel's domain, as the platform assigned it."""
    return f"https://{route_name}.{domain}{path}"


def provisioner_name(database: str) -> str:
    return f"role-provisioner-{database.replace('_', '-')}"


def admin_secret_name(database: str) -> str:
    return f"{provisioner_name(database)}-admin"


def tool_secret_name(server: str, tool: str, epoch: int) -> str:
    """Carries the rotation epoch: a rotated credential is a new Secret, created before the old
    one is deleted, so a pod never starts while the Secret it reads is absent."""
    return f"{mcp_release(server)}-db-{tool.replace('_', '-')}-r{epoch}"


def platform_token_secret_name(server: str, epoch: int, retiring: int | None = None) -> str:
    """Carries the server's `token_epoch`, and while a rotation rolls out the epoch whose token
    is still accepted too: each content is a new Secret, created before the old one goes."""
    base = f"{mcp_release(server)}-platform-token-r{epoch}"
    return base if retiring is None else f"{base}-and-r{retiring}"


def backend_secret_name(server: str, backend: str) -> str:
    """One Secret per server per backend (its name then ends in a keyed digest of the value)."""
    return f"{mcp_release(server)}-backend-{backend}"


# The forms the builders above write, so a Secret is known for what it is by its name too
# (a removed label does not make a credential anything else).
_NAME = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
CREDENTIAL_NAME_FORMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (CREDENTIAL_DATABASE_ADMIN, re.compile(f"^{admin_secret_name('(' + _NAME + ')')}$")),
    (CREDENTIAL_DATABASE_ROLE, re.compile(f"^{tool_secret_name(_NAME, _NAME, 0)[:-1]}[0-9]+$")),
    (
        CREDENTIAL_PLATFORM_TOKEN,
        re.compile(f"^{platform_token_secret_name(_NAME, 0)[:-1]}[0-9]+(-and-r[0-9]+)?$"),
    ),
    (CREDENTIAL_BACKEND, re.compile(f"^{backend_secret_name(_NAME, _NAME)}$")),
)


def credential_by_name(name: str) -> str | None:
    """What a Secret named by one of the program's credential forms grants, else None."""
    return next((kind for kind, form in CREDENTIAL_NAME_FORMS if form.match(name)), None)


def role_name(server: str, tool: str) -> str:
    """The database role of one tool: derived, never configured, so it cannot be shared."""
    return f"mcp_{server.replace('-', '_')}_{tool}"


def provisioning_digest(rotation_epoch: int, sql: str) -> str:
    """Suffix of one provisioning run's Job, SQL ConfigMap and verifiers Secret: new SQL or a
    new epoch is a new set, created before the old one goes."""
    return hashlib.sha256(f"{rotation_epoch}\n{sql}".encode()).hexdigest()[:10]


def verifiers_secret_name(database: str, digest: str) -> str:
    """Named like the Job that reads it: a rotation creates both before deleting either.
    With no digest, the base the collision check compares."""
    base = f"{provisioner_name(database)}-verifiers"
    return f"{base}-{digest}" if digest else base


def password_env(role: str) -> str:
    """Environment variable a provisioning Job reads one role's SCRAM verifier from."""
    return f"VERIFIER_{role.upper()}"


def database_ca_config_map(database: str) -> str:
    """ConfigMap holding the CA a database's server certificate is verified against."""
    return f"database-ca-{database.replace('_', '-')}"


def selector_labels(chart: str, release: str) -> dict[str, str]:
    """The labels a chart's pods carry and its selectors (and our NetworkPolicies) match."""
    return {LABEL_NAME: chart, LABEL_INSTANCE: release}


def tunnel_selector() -> dict[str, str]:
    return selector_labels(COMPONENT_TUNNEL, TUNNEL_RELEASE)


def sandbox_release(pool: str | None = None) -> str:
    """Release of one sandbox pool; one pool per trust boundary, each its own pods and key."""
    return f"{SANDBOX_RELEASE}-{pool}" if pool else SANDBOX_RELEASE


def sandbox_selector(pool: str | None = None) -> dict[str, str]:
    return selector_labels(COMPONENT_SANDBOX, sandbox_release(pool))


def provisioner_selector(database: str) -> dict[str, str]:
    return selector_labels(COMPONENT_PROVISIONER, provisioner_name(database))


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


def environment_key_secret_name(pool: str) -> str:
    """The pool's environment key: read by that pool's workers only."""
    return f"{sandbox_release(pool)}-environment-key"


def tunnel_token_secret_name(epoch: int) -> str:
    """Carries the tunnel's `token_epoch`: a rotated token is a new Secret, created first."""
    return f"{TUNNEL_RELEASE}-token-r{epoch}"


def vault_name(environment: str, configured: str | None = None) -> str:
    return configured or f"agent-perimeter-{environment}"


def server_tls_secret(server_name: str) -> str:
    """Base name of the kubernetes.io/tls Secret of one server's serving certificate (see
    `issued_name`)."""
    return f"{mcp_release(server_name)}-tls"


def certificate_sha256(certificate_pem: str) -> str:
    """The digest pods carry in an annotation and certificate objects in their names."""
    return hashlib.sha256(certificate_pem.encode()).hexdigest()


def issued_name(base: str, certificate_pem: str) -> str:
    """The name of an object holding a certificate, carrying a digest of that (public)
    certificate: a renewed one is a new object, created before the old one is deleted, and the
    pods that mount it roll onto it. Kubernetes would otherwise replace a fixed-name Secret or
    ConfigMap by deleting it first, leaving starting pods without it."""
    return f"{base}-{certificate_sha256(certificate_pem)[:10]}"


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
