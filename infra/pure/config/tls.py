"""The `upstream_tls` section: TLS from the tunnel proxy to every MCP server."""

from __future__ import annotations

from pydantic import Field, model_validator

from infra.pure.config.types import Section, raise_cross_reference


class UpstreamTls(Section):
    """TLS from the tunnel's proxy to each MCP server, under a CA the program manages: the
    platform bearer token never crosses the cluster network in clear."""

    enabled: bool = True
    validity_hours: int = Field(default=2160, ge=24, le=87600)
    ca_validity_hours: int = Field(default=43800, ge=24, le=175200)
    # A `pulumi up` that finds a certificate this close to its end issues a new one.
    renew_within_hours: int = Field(default=720, ge=1)

    @model_validator(mode="after")
    def _window_inside_validity(self) -> UpstreamTls:
        shortest = min(self.validity_hours, self.ca_validity_hours)
        if self.renew_within_hours >= shortest:
            raise_cross_reference(
                [
                    f"renew_within_hours: {self.renew_within_hours} must be shorter than the "
                    f"validity ({shortest}h): every `pulumi up` would issue new certificates"
                ]
            )
        return self
