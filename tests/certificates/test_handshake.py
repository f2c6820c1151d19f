"""A real TLS handshake against the generated certificate: what the tunnel's proxy will do.

A small HTTPS server on 127.0.0.1 serves the serving certificate; a client that trusts
only the generated CA (as the proxy's `upstream.tls.ca_file` with `include_system_cas:
false`) gets its response, and any other CA or a name outside the SANs is refused.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from .issued import DNS_NAMES, make_ca, make_serving
from .probe import BODY, fetch, https_server


@pytest.fixture(scope="module")
def issued() -> tuple[dict[str, Any], dict[str, Any]]:
    _, ca = make_ca()
    _, serving = make_serving(ca)
    return ca, serving


@pytest.fixture(scope="module")
def https_port(issued: tuple[dict[str, Any], dict[str, Any]]) -> Iterator[int]:
    _, serving = issued
    with https_server(serving["cert_pem"], serving["key_pem"]) as port:
        yield port


@pytest.mark.parametrize("hostname", DNS_NAMES)
def test_the_generated_ca_verifies_each_dns_name(
    https_port: int, issued: tuple[dict[str, Any], dict[str, Any]], hostname: str
) -> None:
    ca, _ = issued
    response = fetch(https_port, ca["cert_pem"], hostname)
    assert response.startswith(b"HTTP/1.0 200")
    assert response.endswith(BODY)


def test_any_other_ca_is_refused(https_port: int) -> None:
    _, other = make_ca("another agent-perimeter CA")
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        fetch(https_port, other["cert_pem"], DNS_NAMES[0])


def test_a_name_outside_the_certificate_is_refused(
    https_port: int, issued: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    ca, _ = issued
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        fetch(https_port, ca["cert_pem"], "mcp-server-billing.agent-perimeter-dev.svc")


def test_the_serving_certificate_is_a_leaf_for_servers_only(
    issued: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """A stolen serving key cannot sign other certificates nor act as a client."""
    ca_out, serving = issued
    leaf = x509.load_pem_x509_certificate(serving["cert_pem"].encode())
    ca = x509.load_pem_x509_certificate(ca_out["cert_pem"].encode())
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == DNS_NAMES
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert (constraints.ca, constraints.path_length) == (True, 0)
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert leaf.not_valid_after_utc <= ca.not_valid_after_utc
    assert leaf.issuer == ca.subject
