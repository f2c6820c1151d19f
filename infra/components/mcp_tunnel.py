"""The outbound-only MCP tunnel: proxy + cloudflared, its token and its inner TLS key.

With the platform enabled the tunnel itself is created here too (or adopted by id):
its domain is the one source every MCP server URL derives from, and its token goes
from `reveal_token` straight into the cloudflared Secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import PerimeterConfig, PerimeterSecrets
from infra.credentials import credential_secret
from infra.naming import (
    ANNOTATION_UPSTREAM_CA,
    CREDENTIAL_TUNNEL_TLS,
    CREDENTIAL_TUNNEL_TOKEN,
    LABEL_ENVIRONMENT,
    TUNNEL_RELEASE,
    TUNNEL_TLS_SECRET,
    mcp_in_cluster_origin,
    tunnel_token_secret_name,
)
from infra.platform_api.tunnel import Tunnel, TunnelArgs
from infra.platform_api.tunnel_certificate import TunnelCertificate, TunnelCertificateArgs
from infra.tools import chart_path

CHART = chart_path("mcp-tunnel")


@dataclass(frozen=True)
class McpTunnelArgs:
    config: PerimeterConfig
    secrets: PerimeterSecrets
    # The platform API connection; None when the tunnel was made by hand (platform disabled).
    connection: pulumi.Input[dict[str, Any]] | None = None
    # The ConfigMap holding the CA the proxy trusts for its upstreams (None: plain HTTP), and
    # that CA's sha256, so a new CA rolls the proxy.
    upstream_ca_config_map: pulumi.Input[str] | None = None
    upstream_ca_sha256: pulumi.Input[str] | None = None


def tunnel_routes(config: PerimeterConfig) -> dict[str, str]:
    """Route subdomain -> upstream written exactly scheme://host:port (the proxy rejects a path);
    https under the managed CA unless `upstream_tls.enabled` is false."""
    return {
        server.route_name: mcp_in_cluster_origin(
            config.namespace, server, config.upstream_tls.enabled
        )
        for server in config.mcp_servers
    }


def tunnel_values(
    config: PerimeterConfig,
    tunnel_id: pulumi.Input[str] | None = None,
    domain: pulumi.Input[str] | None = None,
    upstream_ca_sha256: pulumi.Input[str] | None = None,
    upstream_ca_config_map: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    tunnel = config.tunnel
    annotations = (
        {"podAnnotations": {ANNOTATION_UPSTREAM_CA: upstream_ca_sha256}}
        if upstream_ca_sha256 is not None
        else {}
    )
    return {
        **annotations,
        "commonLabels": {LABEL_ENVIRONMENT: config.environment},
        "replicaCount": tunnel.replicas,
        "tunnel": {
            "id": tunnel_id if tunnel_id is not None else tunnel.id,
            "domain": domain if domain is not None else config.tunnel_domain,
            "tokenSecretName": tunnel_token_secret_name(tunnel.token_epoch),
            "tlsSecretName": TUNNEL_TLS_SECRET,
        },
        "proxy": {
            "image": tunnel.proxy_image.chart_values(),
            "listenPort": tunnel.proxy_port,
            "logLevel": tunnel.log_level,
            "shutdownTimeout": tunnel.shutdown_timeout,
            "resources": tunnel.proxy_resources.chart_values(),
            "metricsPort": config.metrics.proxy_port if config.metrics else None,
        },
        "cloudflared": {
            "image": tunnel.cloudflared_image.chart_values(),
            "resources": tunnel.cloudflared_resources.chart_values(),
        },
        "routes": tunnel_routes(config),
        # Upstreams are ClusterIP Services: the proxy may dial the service range and nothing else,
        # and trusts only the CA the program issued the servers' certificates from.
        "upstream": {
            "allowedIps": list(config.cluster.service_cidrs),
            "tls": {"caConfigMap": upstream_ca_config_map or ""},
        },
    }


class McpTunnel(pulumi.ComponentResource):
    """No Service of any kind: the tunnel dials out, nothing dials in."""

    domain: pulumi.Output[str]
    tunnel_id: pulumi.Output[str]
    platform_tunnel: Tunnel | None

    def __init__(
        self, name: str, args: McpTunnelArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:McpTunnel", name, None, opts)
        config, secrets = args.config, args.secrets
        child = pulumi.ResourceOptions(parent=self)
        self.platform_tunnel = None
        if args.connection is not None:
            self.platform_tunnel = Tunnel(
                f"{name}-platform",
                TunnelArgs(
                    connection=args.connection,
                    display_name=config.tunnel.display_name
                    or f"agent-perimeter-{config.environment}",
                    token_epoch=config.tunnel.token_epoch,
                    adopt_id=config.tunnel.id,
                    expected_domain=config.tunnel.domain,
                ),
                child,
            )
            assert secrets.tunnel_ca_cert is not None, "load_pulumi requires tunnelCaCert"
            TunnelCertificate(
                f"{name}-ca",
                TunnelCertificateArgs(
                    connection=args.connection,
                    tunnel_id=self.platform_tunnel.id,
                    ca_certificate_pem=secrets.tunnel_ca_cert,
                ),
                child,
            )
            self.domain = self.platform_tunnel.domain
            self.tunnel_id = self.platform_tunnel.id
            tunnel_token: pulumi.Input[str] = self.platform_tunnel.token
        else:
            assert secrets.tunnel_token is not None, "load_pulumi requires tunnelToken"
            self.domain = pulumi.Output.from_input(config.tunnel_domain)
            self.tunnel_id = pulumi.Output.from_input(str(config.tunnel.id))
            tunnel_token = secrets.tunnel_token
        token = credential_secret(
            f"{name}-token",
            config=config,
            name=tunnel_token_secret_name(config.tunnel.token_epoch),
            credential=CREDENTIAL_TUNNEL_TOKEN,
            reader=TUNNEL_RELEASE,
            data={"token": tunnel_token},
            opts=child,
        )
        tls = credential_secret(
            f"{name}-tls",
            config=config,
            name=TUNNEL_TLS_SECRET,
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
            values=tunnel_values(
                config,
                self.tunnel_id,
                self.domain,
                args.upstream_ca_sha256,
                args.upstream_ca_config_map,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[token, tls]),
        )
        self.register_outputs({"routes": tunnel_routes(config), "domain": self.domain})
