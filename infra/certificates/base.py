"""What both certificate resources share: replacement on any input change or on renewal.

A certificate cannot be edited: every change is a new certificate, created before the
old one is dropped. A `pulumi up` that finds a certificate within `renew_within_hours`
of its `not_after` replaces it too, and because the CA's PEM is an input of every
serving certificate, a renewed CA renews all of them in the same update.
"""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from infra.platform_api.base import UNKNOWN, with_secret_outputs
from infra.platform_api.connection import plain

# Started a little in the past, so a node whose clock runs behind still accepts it.
CLOCK_SKEW = datetime.timedelta(minutes=5)
RENEWAL = "not_after"  # the property a renewal replacement is reported against


class CertificateError(Exception):
    """Inputs no certificate can be made from; the message never carries a key."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _unknown(value: Any) -> bool:
    if isinstance(value, list):
        return any(_unknown(v) for v in value)
    return value == UNKNOWN


def due_for_renewal(olds: dict[str, Any], news: dict[str, Any]) -> bool:
    """`now >= not_after - renew_within_hours`; a missing or unreadable expiry counts as due."""
    window = news.get("renew_within_hours")
    try:
        expires = datetime.datetime.fromisoformat(str(olds.get(RENEWAL)))
        hours = float(window)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True
    return now() >= expires - datetime.timedelta(hours=hours)


def positive_hours(props: dict[str, Any], *fields: str) -> None:
    for field in fields:
        value = props.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CertificateError(f"{field} must be a whole number of hours >= 1, not {value!r}")
    if props["renew_within_hours"] >= props["validity_hours"]:
        raise CertificateError(
            f"renew_within_hours ({props['renew_within_hours']}) must be less than "
            f"validity_hours ({props['validity_hours']}): every update would renew it"
        )


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """A CA signs certificates (and CRLs) only; a serving key only signs its TLS handshakes."""
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    not_after: datetime.datetime,
    *,
    signs_certificates: bool,
) -> x509.CertificateBuilder:
    """What every certificate here carries: validity from a little in the past, key usage, SKI."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .not_valid_before(now() - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(key_usage(signs_certificates=signs_certificates), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def issued(
    builder: x509.CertificateBuilder,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
) -> dict[str, str]:
    """The outputs of a certificate resource: PEMs, and `not_after` as ISO 8601 UTC."""
    cert = builder.serial_number(x509.random_serial_number()).sign(signer, hashes.SHA256())
    return {
        "cert_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "key_pem": key_pem(key),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


class CertificateProvider(ResourceProvider):
    """Stateless, so it pickles into the engine; outputs carry the inputs for the next diff."""

    compared: ClassVar[tuple[str, ...]] = ()

    def issue(self, props: dict[str, Any]) -> dict[str, str]:
        """A new key and certificate from the inputs (`cert_pem`, `key_pem`, `not_after`)."""
        raise NotImplementedError

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = plain(props)
        outs = self.issue(props)
        serial = x509.load_pem_x509_certificate(outs["cert_pem"].encode()).serial_number
        return CreateResult(format(serial, "x"), {**props, **outs})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        olds, news = plain(olds), plain(news)
        changed = [k for k in self.compared if _unknown(news.get(k)) or olds.get(k) != news.get(k)]
        if not changed and due_for_renewal(olds, news):
            changed = [RENEWAL]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Nothing outside the state to observe: the certificate is what was recorded."""
        return ReadResult(id_, props)


class IssuedCertificate(Resource):
    """A certificate resource: its inputs are the args' fields; every key output is secret."""

    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]
    not_after: pulumi.Output[str]

    def __init__(
        self,
        provider: CertificateProvider,
        name: str,
        args: object,
        opts: pulumi.ResourceOptions | None,
    ) -> None:
        props = {**vars(args), "cert_pem": None, "key_pem": None, "not_after": None}
        secret = with_secret_outputs(opts, "key_pem", "ca_key_pem")
        super().__init__(provider, name, props, secret)
