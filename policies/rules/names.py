"""The labels and names the rules recognise objects by: the pack's half of the naming
contract, defined here because the pack runs in its own virtualenv without the program.
infra/naming.py (and so the program, the charts' values and the audit) imports them.
"""

from __future__ import annotations

import re

LABEL_NAME = "app.kubernetes.io/name"
# Set by the API server on every namespace: what a namespaceSelector names one by.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"

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

CREDENTIAL_DATABASE_ROLE = "database-role"
CREDENTIAL_PLATFORM_TOKEN = "platform-token"
CREDENTIAL_DATABASE_ADMIN = "database-admin"
CREDENTIAL_BACKEND = "backend"

COMPONENT_MCP_SERVER = "mcp-server"
COMPONENT_TUNNEL = "mcp-tunnel"
COMPONENT_SANDBOX = "sandbox-runner"
COMPONENT_PROVISIONER = "role-provisioner"

ROLE_SQL_KEY = "roles.sql"
# The base name of the ConfigMap holding the CA the tunnel's proxy trusts for its upstreams.
UPSTREAM_CA_CONFIG_MAP = "mcp-upstream-ca"
AGENT_DEFINITION_KEY = "agent-definition.json"
TUNNEL_CONFIG_KEY = "config.yaml"

# Pods nothing may dial: they only ever connect outwards.
OUTBOUND_ONLY = frozenset({COMPONENT_TUNNEL, COMPONENT_SANDBOX})


def mcp_release(server: str) -> str:
    return f"mcp-server-{server}"


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
