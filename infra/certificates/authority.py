"""The upstream CA: signs each MCP server's serving certificate; the proxy trusts only it.

Its key stays in the Pulumi state (a secret) and never reaches the cluster.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pulumi
from cryptography import x509
from cryptography.x509.oid import NameOID

from infra.certificates.base import (
    CertificateError,
    CertificateProvider,
    IssuedCertificate,
    builder,
    issued,
    new_key,
    now,
    positive_hours,
)


class CertificateAuthorityProvider(CertificateProvider):
    compared = ("common_name", "validity_hours", "renew_within_hours")

    def issue(self, props: dict[str, Any]) -> dict[str, str]:
        name = props.get("common_name")
        if not isinstance(name, str) or not name.strip():
            raise CertificateError(f"common_name must be a non-empty string, not {name!r}")
        positive_hours(props, "validity_hours", "renew_within_hours")
        key = new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        expires = now() + datetime.timedelta(hours=props["validity_hours"])
        # Signs serving certificates only: no intermediate CA below it.
        ca = builder(subject, subject, key, expires, signs_certificates=True).add_extension(
            x509.BasicConstraints(ca=True, path_length=0), critical=True
        )
        return issued(ca, key, key)


@dataclass(frozen=True)
class CertificateAuthorityArgs:
    common_name: pulumi.Input[str]
    validity_hours: pulumi.Input[int]
    renew_within_hours: pulumi.Input[int]


class CertificateAuthority(
    IssuedCertificate, module="agent-perimeter", name="CertificateAuthority"
):
    def __init__(
        self, name: str, args: CertificateAuthorityArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(CertificateAuthorityProvider(), name, args, opts)
