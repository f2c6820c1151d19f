"""The labels and names the rules recognise objects by: the pack's half of the naming
contract, defined here because the pack runs in its own virtualenv without the program.
infra/naming.py (and so the program, the charts' values and the audit) imports them.
"""

from __future__ import annotations

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

CREDENTIAL_DATABASE_ROLE = "database-role"
CREDENTIAL_PLATFORM_TOKEN = "platform-token"
CREDENTIAL_DATABASE_ADMIN = "database-admin"
CREDENTIAL_BACKEND = "backend"

COMPONENT_MCP_SERVER = "mcp-server"
COMPONENT_TUNNEL = "mcp-tunnel"
COMPONENT_SANDBOX = "sandbox-runner"
COMPONENT_PROVISIONER = "role-provisioner"

ROLE_SQL_KEY = "roles.sql"
AGENT_DEFINITION_KEY = "agent-definition.json"
TUNNEL_CONFIG_KEY = "config.yaml"

# Pods nothing may dial: they only ever connect outwards.
OUTBOUND_ONLY = frozenset({COMPONENT_TUNNEL, COMPONENT_SANDBOX})


def mcp_release(server: str) -> str:
    return f"mcp-server-{server}"


def role_name(server: str, tool: str) -> str:
    """The database role of one tool: derived, never configured, so it cannot be shared."""
    return f"mcp_{server.replace('-', '_')}_{tool}"
