"""One private MCP server, deployed from charts/mcp-server with values the program computes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import McpServer as McpServerConfig
from infra.config import PerimeterConfig
from infra.naming import LABEL_ENVIRONMENT, database_ca_config_map, mcp_release, tool_role
from infra.tools import chart_path

CHART = chart_path("mcp-server")


@dataclass(frozen=True)
class McpServerArgs:
    config: PerimeterConfig
    server: McpServerConfig
    tool_secrets: dict[str, str]
    # Renamed with each rotation phase of the platform token, so the pods roll and
    # `pulumi up` waits for them before the vault credential moves on.
    platform_token_secret: pulumi.Input[str]


def mcp_server_values(args: McpServerArgs) -> dict[str, Any]:
    """Only Secret names reach the chart, never a value."""
    config, server = args.config, args.server
    database = config.databases[server.database]
    return {
        "commonLabels": {LABEL_ENVIRONMENT: config.environment},
        "serverName": server.name,
        "replicaCount": server.replicas,
        "image": server.image.chart_values(),
        "containerPort": server.port,
        "mcpPath": server.path,
        "service": {"port": server.port},
        "database": {
            "host": database.host,
            "port": database.port,
            "name": server.database,
            "sslmode": database.sslmode,
            # created by the database's RoleProvisioner, which this server depends on
            "caConfigMap": database_ca_config_map(server.database)
            if database.ca_certificate is not None
            else "",
        },
        "toolCredentials": [
            {
                "tool": tool.name,
                "role": tool_role(server, tool),
                "secretName": args.tool_secrets[tool.name],
            }
            for tool in server.tools
        ],
        "platformToken": {"secretName": args.platform_token_secret},
        "resources": server.resources.chart_values(),
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
    }


class McpServer(pulumi.ComponentResource):
    """ClusterIP only: the platform reaches it through the tunnel, never directly."""

    release: str
    service_host: str

    def __init__(
        self, name: str, args: McpServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:McpServer", name, None, opts)
        self.release = mcp_release(args.server)
        self.service_host = f"{self.release}.{args.config.namespace}.svc.cluster.local"
        k8s.helm.v4.Chart(
            self.release,
            name=self.release,
            chart=CHART,
            namespace=args.config.namespace,
            values=mcp_server_values(args),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"release": self.release, "service_host": self.service_host})
