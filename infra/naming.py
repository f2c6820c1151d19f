"""Names and labels shared by the program, the charts, the policies and the audit.

NetworkPolicies select pods by the labels the charts put on them, and the
policies and audit recognise credentials by the labels and annotations the
program puts on Secrets. Keeping every such name here is what lets a test hold
the two sides together.
"""

from __future__ import annotations

from infra.config import McpServer, Tool, role_name

PART_OF = "agent-perimeter"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

# The perimeter's own vocabulary.
LABEL_ENVIRONMENT = "agent-perimeter.io/environment"
LABEL_CREDENTIAL = "agent-perimeter.io/credential"
LABEL_ROLE_SQL = "agent-perimeter.io/role-sql"
LABEL_AGENT_DEFINITION = "agent-perimeter.io/agent-definition"
ANNOTATION_DATABASE_ROLE = "agent-perimeter.io/database-role"
ANNOTATION_GRANTS = "agent-perimeter.io/grants"
ANNOTATION_MCP_SERVER_URL = "agent-perimeter.io/mcp-server-url"
ANNOTATION_READER = "agent-perimeter.io/reader"

# Values of LABEL_CREDENTIAL: what a Secret grants.
CREDENTIAL_DATABASE_ROLE = "database-role"
CREDENTIAL_PLATFORM_TOKEN = "platform-token"
CREDENTIAL_TUNNEL_TOKEN = "tunnel-token"
CREDENTIAL_TUNNEL_TLS = "tunnel-tls"
CREDENTIAL_ENVIRONMENT_KEY = "environment-key"
CREDENTIAL_DATABASE_ADMIN = "database-admin"
CREDENTIAL_ROLE_VERIFIERS = "role-verifiers"

# Workload kinds (LABEL_COMPONENT) and chart names.
COMPONENT_MCP_SERVER = "mcp-server"
COMPONENT_TUNNEL = "mcp-tunnel"
COMPONENT_SANDBOX = "sandbox-runner"
COMPONENT_PROVISIONER = "role-provisioner"

TUNNEL_RELEASE = "mcp-tunnel"
SANDBOX_RELEASE = "sandbox-runner"


def mcp_release(server: McpServer | str) -> str:
    """Release (and Deployment, Service) name of one MCP server; contains the chart name
    so the chart's fullname helper keeps it unchanged."""
    name = server if isinstance(server, str) else server.name
    return f"mcp-server-{name}"


def provisioner_name(database: str) -> str:
    return f"role-provisioner-{database.replace('_', '-')}"


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


def tool_secret_name(server: McpServer, tool: Tool) -> str:
    return f"{mcp_release(server)}-db-{tool.name.replace('_', '-')}"


def platform_token_secret_name(server: McpServer) -> str:
    return f"{mcp_release(server)}-platform-token"


def tool_role(server: McpServer, tool: Tool) -> str:
    return role_name(server.name, tool.name)


def password_env(role: str) -> str:
    """Environment variable a provisioning Job reads one role's SCRAM verifier from."""
    return f"VERIFIER_{role.upper()}"


def vault_credential_name(server: McpServer | str) -> str:
    """Display name of the vault credential holding one server's platform token."""
    return mcp_release(server)


def vault_name(environment: str, configured: str | None = None) -> str:
    return configured or f"agent-perimeter-{environment}"
