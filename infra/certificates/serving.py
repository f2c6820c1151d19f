"""One MCP server's serving certificate, signed by the upstream CA, for exactly its DNS names.

It never outlives its CA: a CA renewal (a new `ca_cert_pem`) replaces it anyway.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

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


def _ca(props: dict[str, Any]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA pair; parse errors name the input, never echo it."""
    try:
        cert = x509.load_pem_x509_certificate(str(props.get("ca_cert_pem")).encode())
    except ValueError:
        raise CertificateError("ca_cert_pem is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(str(props.get("ca_key_pem")).encode(), None)
    except (ValueError, TypeError):
        raise CertificateError("ca_key_pem is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise CertificateError("ca_key_pem is not the key of ca_cert_pem")
    return cert, key


def _dns_names(props: dict[str, Any]) -> list[str]:
    names = props.get("dns_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise CertificateError(f"dns_names must be a non-empty list of names, not {names!r}")
    return names


class ServingCertificateProvider(CertificateProvider):
    compared = ("ca_cert_pem", "ca_key_pem", "dns_names", "validity_hours", "renew_within_hours")

    def issue(self, props: dict[str, Any]) -> dict[str, str]:
        names = _dns_names(props)
        positive_hours(props, "validity_hours", "renew_within_hours")
        ca_cert, ca_key = _ca(props)
        key = new_key()
        expires = min(
            now() + datetime.timedelta(hours=props["validity_hours"]), ca_cert.not_valid_after_utc
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        leaf = (
            builder(subject, ca_cert.subject, key, expires, signs_certificates=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
        )
        return issued(leaf, key, ca_key)


@dataclass(frozen=True)
class ServingCertificateArgs:
    ca_cert_pem: pulumi.Input[str]
    ca_key_pem: pulumi.Input[str]
    dns_names: pulumi.Input[list[str]]
    validity_hours: pulumi.Input[int]
    renew_within_hours: pulumi.Input[int]


class ServingCertificate(IssuedCertificate, module="agent-perimeter", name="ServingCertificate"):
    def __init__(
        self, name: str, args: ServingCertificateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(ServingCertificateProvider(), name, args, opts)
