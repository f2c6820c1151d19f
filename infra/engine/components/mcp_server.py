"""One private MCP server, deployed from charts/mcp-server with values the program computes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.offline.tools import chart_path
from infra.pure.config import DatabaseEndpoint, McpServer as McpServerConfig
from infra.pure.naming import (
    ANNOTATION_SERVING_CERTIFICATE,
    ANNOTATION_TOOL_ACCESS,
    LABEL_ENVIRONMENT,
    Placement,
    database_ca_config_map,
    mcp_release,
    mcp_service_host,
    tool_role,
)

CHART = chart_path("mcp-server")


@dataclass(frozen=True)
class McpServerArgs:
    placement: Placement
    server: McpServerConfig
    tool_secrets: dict[str, str]
    # Renamed with each rotation phase of the platform token, so the pods roll and
    # `pulumi up` waits for them before the vault credential moves on.
    platform_token_secret: pulumi.Input[str]
    # backend name -> the Secret its credential is mounted from
    backend_secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    # The kubernetes.io/tls Secret the server serves from (None: plain HTTP), and its
    # certificate's digest, so a renewed certificate rolls the pods.
    tls_secret: pulumi.Input[str] | None = None
    tls_cert_sha256: pulumi.Input[str] | None = None
    # The endpoint of `server.database`, resolved from the environment's `databases`.
    database: DatabaseEndpoint | None = None


def _database_values(server: McpServerConfig, database: DatabaseEndpoint | None) -> dict[str, Any]:
    if server.database is None or database is None:
        return {}
    return {
        "host": database.host,
        "port": database.port,
        "name": server.database,
        "sslmode": database.sslmode,
        # created by the database's RoleProvisioner, which this server depends on
        "caConfigMap": database_ca_config_map(server.database)
        if database.ca_certificate is not None
        else "",
    }


def mcp_server_values(args: McpServerArgs) -> dict[str, Any]:
    """Only Secret names reach the chart, never a value."""
    server = args.server
    values: dict[str, Any] = {
        "commonLabels": {LABEL_ENVIRONMENT: args.placement.environment},
        "serverName": server.name,
        "replicaCount": server.replicas,
        "image": server.image.chart_values(),
        "containerPort": server.port,
        "mcpPath": server.path,
        "service": {"port": server.port},
        "tools": [tool.name for tool in server.tools],
        "toolCredentials": [
            {
                "tool": tool.name,
                "role": tool_role(server, tool),
                "secretName": args.tool_secrets[tool.name],
            }
            for tool in server.tools
            if tool.name in args.tool_secrets
        ],
        "platformToken": {"secretName": args.platform_token_secret},
        "resources": server.resources.chart_values(),
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
        "backends": [
            {
                "name": backend.name,
                "host": backend.host or "",
                "port": backend.ports[0],
                "tls": backend.tls,
            }
            for backend in server.backends
        ],
        "backendCredentials": [
            {"backend": backend, "secretName": secret}
            for backend, secret in args.backend_secrets.items()
        ],
        "extraEnv": [{"name": name, "value": value} for name, value in server.env.items()],
        "extraArgs": list(server.args),
        "configFiles": dict(server.config_files),
    }
    database = _database_values(server, args.database)
    if database:
        values["database"] = database
    access = json.dumps({tool.name: tool.access for tool in server.tools}, sort_keys=True)
    values["podAnnotations"] = {ANNOTATION_TOOL_ACCESS: access}
    if args.tls_secret is not None:
        values["tls"] = {"secretName": args.tls_secret}
        values["podAnnotations"][ANNOTATION_SERVING_CERTIFICATE] = args.tls_cert_sha256
    return values


class McpServer(pulumi.ComponentResource):
    """ClusterIP only: the platform reaches it through the tunnel, never directly."""

    release: str
    service_host: str

    def __init__(
        self, name: str, args: McpServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:McpServer", name, None, opts)
        self.release = mcp_release(args.server)
        self.service_host = mcp_service_host(args.placement.namespace, args.server)
        k8s.helm.v4.Chart(
            self.release,
            name=self.release,
            chart=CHART,
            namespace=args.placement.namespace,
            values=mcp_server_values(args),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"release": self.release, "service_host": self.service_host})
