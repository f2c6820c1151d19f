"""The outbound-only MCP tunnel: proxy + cloudflared, its token and its inner TLS key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import PerimeterConfig, PerimeterSecrets
from infra.credentials import credential_secret
from infra.naming import (
    CREDENTIAL_TUNNEL_TLS,
    CREDENTIAL_TUNNEL_TOKEN,
    LABEL_ENVIRONMENT,
    TUNNEL_RELEASE,
    mcp_release,
)
from infra.tools import chart_path

CHART = chart_path("mcp-tunnel")
TOKEN_SECRET = f"{TUNNEL_RELEASE}-token"
TLS_SECRET = f"{TUNNEL_RELEASE}-tls"


@dataclass(frozen=True)
class McpTunnelArgs:
    config: PerimeterConfig
    secrets: PerimeterSecrets


def tunnel_routes(config: PerimeterConfig) -> dict[str, str]:
    """Route subdomain -> upstream written exactly scheme://host:port (the proxy rejects a path)."""
    return {
        server.route_name: f"http://{mcp_release(server)}.{config.namespace}.svc.cluster.local:{server.port}"
        for server in config.mcp_servers
    }


def tunnel_values(config: PerimeterConfig) -> dict[str, Any]:
    tunnel = config.tunnel
    return {
        "commonLabels": {LABEL_ENVIRONMENT: config.environment},
        "replicaCount": tunnel.replicas,
        "tunnel": {
            "id": tunnel.id,
            "domain": tunnel.domain,
            "tokenSecretName": TOKEN_SECRET,
            "tlsSecretName": TLS_SECRET,
        },
        "proxy": {
            "image": tunnel.proxy_image.chart_values(),
            "listenPort": tunnel.proxy_port,
            "logLevel": tunnel.log_level,
            "shutdownTimeout": tunnel.shutdown_timeout,
            "resources": tunnel.proxy_resources.chart_values(),
        },
        "cloudflared": {
            "image": tunnel.cloudflared_image.chart_values(),
            "resources": tunnel.cloudflared_resources.chart_values(),
        },
        "routes": tunnel_routes(config),
        # Upstreams are ClusterIP Services: the proxy may dial the service range and nothing else.
        "upstream": {"allowedIps": list(config.cluster.service_cidrs)},
    }


class McpTunnel(pulumi.ComponentResource):
    """No Service of any kind: the tunnel dials out, nothing dials in."""

    def __init__(
        self, name: str, args: McpTunnelArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:McpTunnel", name, None, opts)
        config, secrets = args.config, args.secrets
        child = pulumi.ResourceOptions(parent=self)
        token = credential_secret(
            f"{name}-token",
            config=config,
            name=TOKEN_SECRET,
            credential=CREDENTIAL_TUNNEL_TOKEN,
            reader=TUNNEL_RELEASE,
            data={"token": secrets.tunnel_token},
            opts=child,
        )
        tls = credential_secret(
            f"{name}-tls",
            config=config,
            name=TLS_SECRET,
            credential=CREDENTIAL_TUNNEL_TLS,
            reader=TUNNEL_RELEASE,
            data={"tls.crt": secrets.tunnel_tls_cert, "tls.key": secrets.tunnel_tls_key},
            secret_type="kubernetes.io/tls",
            opts=child,
        )
        k8s.helm.v4.Chart(
            TUNNEL_RELEASE,
            name=TUNNEL_RELEASE,
            chart=CHART,
            namespace=config.namespace,
            values=tunnel_values(config),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[token, tls]),
        )
        self.register_outputs({"routes": tunnel_routes(config)})
