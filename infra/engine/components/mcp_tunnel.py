"""The outbound-only MCP tunnel: proxy + cloudflared, its token and its inner TLS key.

With the platform enabled the tunnel itself is created here too (or adopted by id):
its domain is the one source every MCP server URL derives from, and its token goes
from `reveal_token` straight into the cloudflared Secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.engine.credentials import credential_secret
from infra.offline.tools import chart_path
from infra.platform_api.tunnel import Tunnel, TunnelArgs
from infra.platform_api.tunnel_certificate import TunnelCertificate, TunnelCertificateArgs
from infra.pure.config import PENDING_TUNNEL_DOMAIN, McpServer, Tunnel as TunnelConfig
from infra.pure.naming import (
    ANNOTATION_UPSTREAM_CA,
    CREDENTIAL_TUNNEL_TLS,
    CREDENTIAL_TUNNEL_TOKEN,
    LABEL_ENVIRONMENT,
    TUNNEL_RELEASE,
    TUNNEL_TLS_SECRET,
    Placement,
    mcp_in_cluster_origin,
    tunnel_token_secret_name,
)

CHART = chart_path("mcp-tunnel")


@dataclass(frozen=True)
class TunnelSecrets:
    """The tunnel's own secret inputs: `token` only with the platform disabled (otherwise the
    platform reveals it), `ca_cert` only with it enabled."""

    tls_cert: pulumi.Input[str]
    tls_key: pulumi.Input[str]
    token: pulumi.Input[str] | None = None
    ca_cert: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class McpTunnelArgs:
    placement: Placement
    tunnel: TunnelConfig
    secrets: TunnelSecrets
    # Route subdomain -> upstream origin (`tunnel_routes`), one per MCP server.
    routes: dict[str, str]
    # The cluster's Service range: the only addresses the proxy may dial.
    service_cidrs: Sequence[str]
    # The proxy's metrics port, when a scraper is declared (None: no metrics port at all).
    metrics_port: int | None = None
    # The platform API connection; None when the tunnel was made by hand (platform disabled).
    connection: pulumi.Input[dict[str, Any]] | None = None
    # The ConfigMap holding the CA the proxy trusts for its upstreams (None: plain HTTP), and
    # that CA's sha256, so a new CA rolls the proxy.
    upstream_ca_config_map: pulumi.Input[str] | None = None
    upstream_ca_sha256: pulumi.Input[str] | None = None


def tunnel_routes(namespace: str, servers: Sequence[McpServer], tls: bool) -> dict[str, str]:
    """Route subdomain -> upstream written exactly scheme://host:port (the proxy rejects a path);
    https under the managed CA unless `upstream_tls.enabled` is false."""
    return {server.route_name: mcp_in_cluster_origin(namespace, server, tls) for server in servers}


def tunnel_values(
    args: McpTunnelArgs,
    tunnel_id: pulumi.Input[str] | None = None,
    domain: pulumi.Input[str] | None = None,
) -> dict[str, Any]:
    tunnel = args.tunnel
    annotations = (
        {"podAnnotations": {ANNOTATION_UPSTREAM_CA: args.upstream_ca_sha256}}
        if args.upstream_ca_sha256 is not None
        else {}
    )
    return {
        **annotations,
        "commonLabels": {LABEL_ENVIRONMENT: args.placement.environment},
        "replicaCount": tunnel.replicas,
        "tunnel": {
            "id": tunnel_id if tunnel_id is not None else tunnel.id,
            "domain": domain if domain is not None else tunnel.domain or PENDING_TUNNEL_DOMAIN,
            "tokenSecretName": tunnel_token_secret_name(tunnel.token_epoch),
            "tlsSecretName": TUNNEL_TLS_SECRET,
        },
        "proxy": {
            "image": tunnel.proxy_image.chart_values(),
            "listenPort": tunnel.proxy_port,
            "logLevel": tunnel.log_level,
            "shutdownTimeout": tunnel.shutdown_timeout,
            "resources": tunnel.proxy_resources.chart_values(),
            "metricsPort": args.metrics_port,
        },
        "cloudflared": {
            "image": tunnel.cloudflared_image.chart_values(),
            "resources": tunnel.cloudflared_resources.chart_values(),
        },
        "routes": args.routes,
        # Upstreams are ClusterIP Services: the proxy may dial the service range and nothing else,
        # and trusts only the CA the program issued the servers' certificates from.
        "upstream": {
            "allowedIps": list(args.service_cidrs),
            "tls": {"caConfigMap": args.upstream_ca_config_map or ""},
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
        tunnel, secrets = args.tunnel, args.secrets
        child = pulumi.ResourceOptions(parent=self)
        self.platform_tunnel = None
        if args.connection is not None:
            self.platform_tunnel = Tunnel(
                f"{name}-platform",
                TunnelArgs(
                    connection=args.connection,
                    display_name=tunnel.display_name
                    or f"agent-perimeter-{args.placement.environment}",
                    token_epoch=tunnel.token_epoch,
                    adopt_id=tunnel.id,
                    expected_domain=tunnel.domain,
                ),
                child,
            )
            assert secrets.ca_cert is not None, "load_pulumi requires tunnelCaCert"
            TunnelCertificate(
                f"{name}-ca",
                TunnelCertificateArgs(
                    connection=args.connection,
                    tunnel_id=self.platform_tunnel.id,
                    ca_certificate_pem=secrets.ca_cert,
                ),
                child,
            )
            self.domain = self.platform_tunnel.domain
            self.tunnel_id = self.platform_tunnel.id
            tunnel_token: pulumi.Input[str] = self.platform_tunnel.token
        else:
            assert secrets.token is not None, "load_pulumi requires tunnelToken"
            self.domain = pulumi.Output.from_input(tunnel.domain or PENDING_TUNNEL_DOMAIN)
            self.tunnel_id = pulumi.Output.from_input(str(tunnel.id))
            tunnel_token = secrets.token
        token = credential_secret(
            f"{name}-token",
            placement=args.placement,
            name=tunnel_token_secret_name(tunnel.token_epoch),
            credential=CREDENTIAL_TUNNEL_TOKEN,
            reader=TUNNEL_RELEASE,
            data={"token": tunnel_token},
            opts=child,
        )
        tls = credential_secret(
            f"{name}-tls",
            placement=args.placement,
            name=TUNNEL_TLS_SECRET,
            credential=CREDENTIAL_TUNNEL_TLS,
            reader=TUNNEL_RELEASE,
            data={"tls.crt": secrets.tls_cert, "tls.key": secrets.tls_key},
            secret_type="kubernetes.io/tls",
            opts=child,
        )
        k8s.helm.v4.Chart(
            TUNNEL_RELEASE,
            name=TUNNEL_RELEASE,
            chart=CHART,
            namespace=args.placement.namespace,
            values=tunnel_values(args, self.tunnel_id, self.domain),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[token, tls]),
        )
        self.register_outputs({"routes": args.routes, "domain": self.domain})
