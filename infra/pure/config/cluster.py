"""The cluster-facing sections: its address ranges, the namespace quota, CIDR breadth
limits and the metrics scraper.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from infra.contract.addresses import DEFAULT_MIN_CIDR_PREFIX  # the pack judges folders by it
from infra.pure.config.resources import require_limits_cover_requests
from infra.pure.config.types import (
    Cidr,
    DnsLabel,
    LabelKey,
    LabelValue,
    Quantity,
    Section,
    UnprivilegedPort,
)


class ClusterNetwork(Section):
    service_cidrs: list[Cidr] = Field(default=["10.96.0.0/12"], min_length=1)
    dns_namespace: DnsLabel = "kube-system"
    dns_pod_labels: dict[LabelKey, LabelValue] = Field(
        default={"k8s-app": "kube-dns"}, min_length=1
    )


class NamespaceQuota(Section):
    pods: int = Field(default=50, ge=1)
    requests_cpu: Quantity = "8"
    requests_memory: Quantity = "16Gi"
    limits_cpu: Quantity = "16"
    limits_memory: Quantity = "32Gi"

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> NamespaceQuota:
        require_limits_cover_requests(
            [
                ("limits_cpu", self.limits_cpu, "requests_cpu", self.requests_cpu),
                ("limits_memory", self.limits_memory, "requests_memory", self.requests_memory),
            ]
        )
        return self


class CidrPrefixLimits(Section):
    """The broadest CIDR any field may name: a wider range is almost always a typo."""

    ipv4: int = Field(default=DEFAULT_MIN_CIDR_PREFIX[0], ge=1, le=32)
    ipv6: int = Field(default=DEFAULT_MIN_CIDR_PREFIX[1], ge=1, le=128)


class Metrics(Section):
    """A Prometheus scraper the stack names, let in to the tunnel's metrics ports and nowhere
    else: from pods with `scraper_pod_labels` in `scraper_namespace`, to cloudflared's
    metrics port (and the proxy's, when `proxy_port` says the proxy image serves one)."""

    scraper_namespace: DnsLabel
    scraper_pod_labels: dict[LabelKey, LabelValue] = Field(min_length=1)
    # The vendor documents no metrics setting for the proxy: give the port only when the
    # proxy image in use serves Prometheus metrics on one.
    proxy_port: UnprivilegedPort | None = None
