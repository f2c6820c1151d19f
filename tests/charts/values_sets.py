"""Realistic chart values, emitted by the program's own values builders from config models
(prometheus-community's `ci/*-values.yaml` idea, without a copy that can drift). The charts
are exercised with these and with no values at all."""

from __future__ import annotations

from typing import Any

from infra.engine.components.mcp_server import (
    McpServerArgs,
    mcp_server_values as program_server_values,
)
from infra.engine.components.mcp_tunnel import (
    McpTunnelArgs,
    TunnelSecrets,
    tunnel_routes,
    tunnel_values as program_tunnel_values,
)
from infra.engine.components.sandbox_pool import (
    SandboxPoolArgs,
    sandbox_values as program_sandbox_values,
)
from infra.pure import naming
from infra.pure.config import DatabaseEndpoint, McpServer, SandboxPool, Tunnel

NAMESPACE = "agent-perimeter-dev"
ENVIRONMENT = "dev"
COMMON_LABELS = {naming.LABEL_ENVIRONMENT: ENVIRONMENT}
DIGEST = "sha256:" + "4f" * 32

TICKETS = McpServer.model_validate(
    {
        "name": "tickets",
        "image": f"ghcr.io/example/mcp-tickets:1.4.2@{DIGEST}",
        "database": "support",
        "replicas": 2,
        "config_files": {"server.yaml": "log_format: json\n"},
        "tools": [
            {
                "name": "get_ticket",
                "access": "read",
                "grants": [{"table": "support.tickets", "privileges": ["SELECT"]}],
            },
            {
                "name": "export_ticket",
                "access": "write",
                "grants": [{"table": "support.export_queue", "privileges": ["INSERT"]}],
            },
        ],
    }
)
INVENTORY = McpServer.model_validate(
    {
        "name": "inventory",
        "image": "ghcr.io/example/mcp-inventory:2.1.0",
        "database": "support",
        "tools": [
            {
                "name": "lookup_stock",
                "access": "read",
                "grants": [{"table": "inventory.items", "privileges": ["SELECT"]}],
            }
        ],
    }
)
TUNNEL = Tunnel.model_validate(
    {
        "id": "tnl_01JDEVexample7Q",
        "domain": "mcp-dev.example.com",
        "replicas": 2,
        "proxy_image": "ghcr.io/example/mcp-proxy:0.9.2",
        "cloudflared_image": "docker.io/cloudflare/cloudflared:2026.10.0",
    }
)
SANDBOX = SandboxPool.model_validate(
    {
        "name": "support",
        "environment_id": "env_01JDEVsandbox9X",
        "image": "ghcr.io/example/sandbox-worker:0.7.1",
        "min_replicas": 2,
        "max_replicas": 6,
        "runtime_class_name": "gvisor",
        "direct_mcp_access": ["tickets"],
        "workspace_size": "1Gi",
    }
)


def service_url(server: McpServer) -> str:
    """Where in-cluster clients reach a server's Service (port = container port), over TLS."""
    return f"https://{naming.mcp_release(server)}.{NAMESPACE}.svc.cluster.local:{server.port}"


PLACEMENT = naming.Placement(NAMESPACE, ENVIRONMENT)
SUPPORT = DatabaseEndpoint.model_validate(
    {"host": "10.20.0.15", "cidrs": ["10.20.0.15/32"], "sslmode": "require"}
)
# Pod labels no program value sets, so the charts' podLabels path is exercised too.
POD_LABELS = {"agent-perimeter.io/test-case": "realistic"}


def _with_user_pod_metadata(values: dict[str, Any], digit: str) -> dict[str, Any]:
    """A user's pod labels and a credentials checksum annotation, beside the program's own."""
    annotations = {**values.get("podAnnotations", {}), "checksum/credentials": digit * 64}
    return {**values, "podLabels": POD_LABELS, "podAnnotations": annotations}


def mcp_server_values(server: McpServer = TICKETS) -> dict[str, Any]:
    """What the program's own builder gives the chart for `server` (tool Secrets at epoch 0,
    TLS on), plus pod labels of a user's."""
    args = McpServerArgs(
        PLACEMENT,
        server,
        tool_secrets={t.name: naming.tool_secret_name(server, t, 0) for t in server.tools},
        platform_token_secret=naming.platform_token_secret_name(server, 0),
        tls_secret=naming.server_tls_secret(server.name),
        tls_cert_sha256="3" * 64,
        database=SUPPORT if server.database else None,
    )
    return _with_user_pod_metadata(program_server_values(args), "0")


def mcp_tunnel_values() -> dict[str, Any]:
    """The program's tunnel values for TICKETS and INVENTORY under the managed CA."""
    args = McpTunnelArgs(
        PLACEMENT,
        TUNNEL,
        TunnelSecrets(tls_cert="<cert>", tls_key="<key>"),
        routes=tunnel_routes(NAMESPACE, [TICKETS, INVENTORY], tls=True),
        service_cidrs=["10.96.0.0/12"],
        upstream_ca_config_map=naming.UPSTREAM_CA_CONFIG_MAP,
        upstream_ca_sha256="1" * 64,
    )
    return _with_user_pod_metadata(program_tunnel_values(args), "1")


def sandbox_runner_values() -> dict[str, Any]:
    """The program's values for SANDBOX, which dials TICKETS directly over TLS."""
    url = naming.mcp_in_cluster_origin(NAMESPACE, TICKETS, tls=True) + TICKETS.path
    args = SandboxPoolArgs(PLACEMENT, SANDBOX, "<key>", direct_mcp_urls={TICKETS.name: url})
    return _with_user_pod_metadata(program_sandbox_values(args), "2")


# chart -> (release the program uses, realistic values)
REALISTIC: dict[str, tuple[str, dict[str, Any]]] = {
    "mcp-server": (naming.mcp_release(TICKETS), mcp_server_values()),
    "mcp-tunnel": (naming.TUNNEL_RELEASE, mcp_tunnel_values()),
    "sandbox-runner": (naming.SANDBOX_RELEASE, sandbox_runner_values()),
}
