"""The `tunnel` section: the outbound-only tunnel and its proxy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from infra.pure.config.resources import Resources, default_resources
from infra.pure.config.types import Domain, Duration, Epoch, Image, Section, UnprivilegedPort
from infra.pure.platform_ids import TUNNEL_ID


class Tunnel(Section):
    # With the platform enabled: `id` adopts an existing tunnel (else one is created) and
    # `domain`, when given, is checked against the one the platform assigned.
    # With it disabled both are required: the operator created the tunnel by hand.
    id: str | None = Field(default=None, pattern=TUNNEL_ID)
    domain: Domain | None = None
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    # Raise by one to rotate the tunnel token; the token Secret is renamed with it.
    token_epoch: Epoch = 0
    replicas: int = Field(default=2, ge=1, le=10)
    proxy_image: Image
    cloudflared_image: Image
    proxy_port: UnprivilegedPort = 8443
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    shutdown_timeout: Duration = "30s"
    proxy_resources: Resources = default_resources("50m", "64Mi", "500m", "256Mi")
    cloudflared_resources: Resources = default_resources("50m", "64Mi", "500m", "256Mi")
