"""What `pulumi up` decides for a certificate: keep it, or replace it (a change or a renewal)."""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
from typing import Any

import pytest
from cryptography import x509
from pulumi.dynamic import dynamic

from infra.certificates.authority import CertificateAuthorityProvider
from infra.certificates.base import CertificateError
from infra.certificates.serving import ServingCertificateProvider
from infra.platform_api.base import UNKNOWN

from .issued import make_ca, make_serving, serving_props

AUTHORITY_INPUTS = {"common_name": "agent-perimeter test CA", "validity_hours": 72}


def _expiring_in(outs: dict[str, Any], hours: float) -> dict[str, Any]:
    """The recorded state as a later `pulumi up` finds it: `hours` before expiry."""
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=hours)
    return {**outs, "not_after": at.isoformat()}


def _inputs(outs: dict[str, Any], provider: Any) -> dict[str, Any]:
    return {k: outs[k] for k in provider.compared}


@pytest.mark.parametrize(
    ("provider", "make"),
    [
        (CertificateAuthorityProvider(), lambda: make_ca()),
        (ServingCertificateProvider(), lambda: make_serving(make_ca()[1])),
    ],
    ids=["authority", "serving"],
)
def test_renewed_only_within_the_window(provider: Any, make: Any) -> None:
    cert_id, outs = make()
    news = _inputs(outs, provider)
    window = news["renew_within_hours"]
    kept = provider.diff(cert_id, outs, news)
    assert (kept.changes, kept.replaces) == (False, [])
    assert not provider.diff(cert_id, _expiring_in(outs, window + 1), news).changes
    renewed = provider.diff(cert_id, _expiring_in(outs, window - 1), news)
    assert (renewed.changes, renewed.replaces) == (True, ["not_after"])
    assert renewed.delete_before_replace is False, "the new certificate exists before the old goes"
    assert provider.diff(cert_id, _expiring_in(outs, -1), news).replaces == ["not_after"]


def test_a_wider_window_renews_a_certificate_it_now_covers() -> None:
    provider = CertificateAuthorityProvider()
    cert_id, outs = make_ca(validity_hours=72, renew_within_hours=24)
    found = _expiring_in(outs, 30)
    assert not provider.diff(cert_id, found, _inputs(outs, provider)).changes
    wider = {**_inputs(outs, provider), "renew_within_hours": 36}
    assert provider.diff(cert_id, found, wider).replaces == ["renew_within_hours"]


def test_a_renewed_ca_replaces_every_serving_certificate() -> None:
    provider = ServingCertificateProvider()
    _, ca = make_ca()
    cert_id, outs = make_serving(ca)
    _, renewed_ca = make_ca()
    diff = provider.diff(cert_id, outs, serving_props(renewed_ca))
    assert diff.changes and "ca_cert_pem" in diff.replaces


@pytest.mark.parametrize(
    "news",
    [
        {"ca_cert_pem": UNKNOWN},
        {"dns_names": ["mcp-server-tickets.agent-perimeter-dev.svc.cluster.local", UNKNOWN]},
        {"dns_names": ["mcp-server-tickets.agent-perimeter-dev.svc.cluster.local"]},
        {"validity_hours": 24},
    ],
    ids=["unknown-ca", "unknown-name", "fewer-names", "validity"],
)
def test_any_input_change_or_unknown_replaces(news: dict[str, Any]) -> None:
    provider = ServingCertificateProvider()
    _, ca = make_ca()
    cert_id, outs = make_serving(ca)
    diff = provider.diff(cert_id, outs, serving_props(ca, **news))
    assert diff.changes and diff.replaces == list(news)


def test_an_unknown_ca_name_during_preview_replaces_the_ca() -> None:
    provider = CertificateAuthorityProvider()
    cert_id, outs = make_ca()
    news = {**_inputs(outs, provider), "common_name": UNKNOWN}
    assert provider.diff(cert_id, outs, news).replaces == ["common_name"]


def test_refresh_keeps_the_recorded_certificate() -> None:
    cert_id, outs = make_ca()
    read = CertificateAuthorityProvider().read(cert_id, outs)
    assert (read.id, read.outs) == (cert_id, outs)


def test_a_serving_certificate_never_outlives_its_ca() -> None:
    _, ca = make_ca(validity_hours=10, renew_within_hours=2)
    _, outs = make_serving(ca, validity_hours=500, renew_within_hours=24)
    assert outs["not_after"] == ca["not_after"]
    leaf = x509.load_pem_x509_certificate(outs["cert_pem"].encode())
    assert leaf.not_valid_after_utc.isoformat() == outs["not_after"]


def test_each_create_makes_a_new_key() -> None:
    _, ca = make_ca()
    first, second = make_serving(ca)[1], make_serving(ca)[1]
    assert first["key_pem"] != second["key_pem"]
    assert first["key_pem"].startswith("-----BEGIN PRIVATE KEY-----")


def test_bad_inputs_are_named_and_no_key_is_echoed() -> None:
    _, ca = make_ca()
    _, stranger = make_ca()
    cases = {
        "ca_key_pem is not the key of ca_cert_pem": {"ca_key_pem": stranger["key_pem"]},
        "ca_key_pem is not an unencrypted PEM private key": {
            "ca_key_pem": ca["key_pem"].replace("M", "N")
        },
        "dns_names must be a non-empty list": {"dns_names": []},
        "renew_within_hours (48) must be less than validity_hours (48)": {"renew_within_hours": 48},
    }
    for message, overrides in cases.items():
        with pytest.raises(CertificateError) as raised:
            ServingCertificateProvider().create(serving_props(ca, **overrides))
        assert message in str(raised.value)
        for key in (ca["key_pem"], stranger["key_pem"]):
            assert key.splitlines()[1] not in str(raised.value)
        shown = raised.value.__context__ if not raised.value.__suppress_context__ else None
        assert raised.value.__cause__ is None and shown is None, "no parser error is chained in"


def test_the_pickled_providers_create_in_another_process() -> None:
    """The engine runs a provider from its pickled copy, in the provider host's process."""
    authority = dynamic.serialize_provider(CertificateAuthorityProvider())
    serving = dynamic.serialize_provider(ServingCertificateProvider())
    script = """
import base64, json, sys, dill
authority, serving = (dill.loads(base64.b64decode(p)) for p in sys.argv[1:3])
ca = authority.create({"common_name": "ca", "validity_hours": 5, "renew_within_hours": 1}).outs
leaf = serving.create({"ca_cert_pem": ca["cert_pem"], "ca_key_pem": ca["key_pem"],
    "dns_names": ["a.test"], "validity_hours": 5, "renew_within_hours": 1}).outs
print(json.dumps({"ca": ca["cert_pem"], "leaf": leaf["cert_pem"]}))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, authority, serving],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    made = json.loads(proc.stdout)
    ca = x509.load_pem_x509_certificate(made["ca"].encode())
    leaf = x509.load_pem_x509_certificate(made["leaf"].encode())
    leaf.verify_directly_issued_by(ca)
    assert base64.b64decode(authority)  # a real pickle, not an empty placeholder
