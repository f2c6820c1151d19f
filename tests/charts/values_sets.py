"""Realistic chart values, built the way the program builds them: from the config model
and the naming contract. The charts are exercised with these and with no values at all."""

from __future__ import annotations

from typing import Any

from infra import naming
from infra.config import McpServer, SandboxPool, Tunnel

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


def mcp_server_values(server: McpServer = TICKETS) -> dict[str, Any]:
    return {
        "commonLabels": COMMON_LABELS,
        "podLabels": {"agent-perimeter.io/mcp-server": server.name},
        "podAnnotations": {"checksum/credentials": "0" * 64},
        "serverName": server.name,
        "replicaCount": server.replicas,
        "image": server.image.chart_values(),
        "containerPort": server.port,
        "mcpPath": server.path,
        "service": {"port": server.port},
        "tools": [tool.name for tool in server.tools],
        "database": {"host": "10.20.0.15", "port": 5432, "name": "support", "sslmode": "require"},
        "toolCredentials": [
            {
                "tool": tool.name,
                "role": naming.tool_role(server, tool),
                "secretName": naming.tool_secret_name(server, tool, 0),
            }
            for tool in server.tools
        ],
        "platformToken": {"secretName": naming.platform_token_secret_name(server, 0)},
        "tls": {"secretName": naming.server_tls_secret(server.name)},
        "configFiles": {"server.yaml": "log_format: json\n"},
        "resources": server.resources.chart_values(),
    }


def mcp_tunnel_values() -> dict[str, Any]:
    return {
        "commonLabels": COMMON_LABELS,
        "podAnnotations": {"checksum/credentials": "1" * 64},
        "replicaCount": TUNNEL.replicas,
        "tunnel": {
            "id": TUNNEL.id,
            "domain": TUNNEL.domain,
            "tokenSecretName": "mcp-tunnel-token",
            "tlsSecretName": "mcp-tunnel-tls",
        },
        "proxy": {
            "image": TUNNEL.proxy_image.chart_values(),
            "listenPort": TUNNEL.proxy_port,
            "logLevel": TUNNEL.log_level,
            "shutdownTimeout": TUNNEL.shutdown_timeout,
            "resources": TUNNEL.proxy_resources.chart_values(),
        },
        "cloudflared": {
            "image": TUNNEL.cloudflared_image.chart_values(),
            "resources": TUNNEL.cloudflared_resources.chart_values(),
        },
        "routes": {s.route_name: service_url(s) for s in (TICKETS, INVENTORY)},
        "upstream": {
            "allowedIps": ["10.96.0.0/12"],
            "tls": {"caConfigMap": naming.UPSTREAM_CA_CONFIG_MAP},
        },
    }


def sandbox_runner_values() -> dict[str, Any]:
    return {
        "commonLabels": COMMON_LABELS,
        "podAnnotations": {"checksum/credentials": "2" * 64},
        "image": SANDBOX.image.chart_values(),
        "environment": {
            "id": SANDBOX.environment_id,
            "keySecretName": "sandbox-runner-environment-key",
        },
        "worker": {
            "maxIdle": SANDBOX.max_idle,
            "runTimeoutSeconds": SANDBOX.run_timeout_seconds,
            "maxToolCalls": SANDBOX.max_tool_calls,
            "drainSeconds": SANDBOX.drain_seconds,
        },
        "terminationGracePeriodSeconds": SANDBOX.grace_period_seconds,
        "autoscaling": {
            "minReplicas": SANDBOX.min_replicas,
            "maxReplicas": SANDBOX.max_replicas,
        },
        "workspace": {"sizeLimit": SANDBOX.workspace_size},
        "runtimeClassName": SANDBOX.runtime_class_name,
        "mcpServers": [
            {"name": TICKETS.name, "url": service_url(TICKETS) + TICKETS.path},
        ],
        "resources": SANDBOX.resources.chart_values(),
    }


# chart -> (release the program uses, realistic values)
REALISTIC: dict[str, tuple[str, dict[str, Any]]] = {
    "mcp-server": (naming.mcp_release(TICKETS), mcp_server_values()),
    "mcp-tunnel": (naming.TUNNEL_RELEASE, mcp_tunnel_values()),
    "sandbox-runner": (naming.SANDBOX_RELEASE, sandbox_runner_values()),
}
