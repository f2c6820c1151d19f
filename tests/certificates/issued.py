"""A CA and serving certificates made by the providers' own `create`, the code the engine runs."""

from __future__ import annotations

from typing import Any

from infra.certificates.authority import CertificateAuthorityProvider
from infra.certificates.serving import ServingCertificateProvider

DNS_NAMES = [
    "mcp-server-tickets.agent-perimeter-dev.svc.cluster.local",
    "mcp-server-tickets.agent-perimeter-dev.svc",
]
Made = tuple[str, dict[str, Any]]  # (id, outputs)


def make_ca(common_name: str = "agent-perimeter test CA", **overrides: Any) -> Made:
    props = {"common_name": common_name, "validity_hours": 72, "renew_within_hours": 24}
    created = CertificateAuthorityProvider().create({**props, **overrides})
    return created.id, dict(created.outs or {})


def serving_props(ca: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    props = {
        "ca_cert_pem": ca["cert_pem"],
        "ca_key_pem": ca["key_pem"],
        "dns_names": DNS_NAMES,
        "validity_hours": 48,
        "renew_within_hours": 12,
    }
    return {**props, **overrides}


def make_serving(ca: dict[str, Any], **overrides: Any) -> Made:
    created = ServingCertificateProvider().create(serving_props(ca, **overrides))
    return created.id, dict(created.outs or {})
