"""UpstreamTls under Pulumi mocks: per server one TLS Secret it alone reads, the CA public only."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import pulumi
import pytest
from pulumi.runtime.settings import SETTINGS

from infra.engine.components.upstream_tls import UpstreamTls, UpstreamTlsArgs
from infra.offline.manifests import redact
from infra.offline.mocked import PLATFORM_TYPE_PREFIX, RecordingMocks
from infra.pure import naming
from infra.pure.config import PROJECT

NAMESPACE = "agent-perimeter-dev"
SECRET_SIG = pulumi.runtime.rpc._special_sig_key  # the wrapper a Pulumi secret input arrives in
SERVERS = {
    "tickets": (
        naming.server_tls_secret("tickets"),
        [
            f"mcp-server-tickets.{NAMESPACE}.svc.cluster.local",
            f"mcp-server-tickets.{NAMESPACE}.svc",
        ],
    ),
    "billing": (
        naming.server_tls_secret("billing"),
        [f"mcp-server-billing.{NAMESPACE}.svc.cluster.local"],
    ),
}


def _args(**overrides: Any) -> UpstreamTlsArgs:
    settings: dict[str, Any] = {
        "namespace": NAMESPACE,
        "environment": "dev",
        "servers": SERVERS,
        "validity_hours": 2160,
        "renew_within_hours": 720,
        "ca_config_map": naming.UPSTREAM_CA_CONFIG_MAP,
    }
    return UpstreamTlsArgs(**{**settings, **overrides})


def _register() -> tuple[RecordingMocks, dict[str, str], str]:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="dev", preview=False)
    seen: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        tls = UpstreamTls("upstream-tls", _args())
        return pulumi.Output.all(
            pulumi.Output.all(**tls.cert_sha256), tls.ca_sha256, tls.urn
        ).apply(lambda v: seen.update(hashes=v[0], ca=v[1]))

    run()
    return mocks, seen["hashes"], seen["ca"]


def _of(mocks: RecordingMocks, kind: str) -> list[Any]:
    return [r for r in mocks.resources if r.type == f"kubernetes:core/v1:{kind}"]


def test_registers_a_ca_a_certificate_and_a_secret_per_server_under_itself() -> None:
    mocks, _, _ = _register()
    custom = Counter(r.type for r in mocks.resources if not r.type.startswith("agent-perimeter:"))
    assert custom == {
        f"{PLATFORM_TYPE_PREFIX}CertificateAuthority": 1,
        f"{PLATFORM_TYPE_PREFIX}ServingCertificate": 2,
        "kubernetes:core/v1:Secret": 2,
        "kubernetes:core/v1:ConfigMap": 1,
    }
    children = [
        u for u in SETTINGS.monitor.resources if not u.split("::")[2].endswith("UpstreamTls")
    ]
    assert len(children) == sum(custom.values())
    assert all("agent-perimeter:index:UpstreamTls$" in u for u in children)


def test_each_server_gets_its_own_tls_secret_read_by_it_alone() -> None:
    mocks, _, _ = _register()
    secrets = {r.inputs["metadata"]["name"]: r for r in _of(mocks, "Secret")}
    # named after the certificate it holds: a renewal is a new Secret, created first
    expected = {
        naming.issued_name(base, f"<generated: serving certificate of {', '.join(dns)}>"): base
        for base, dns in SERVERS.values()
    }
    assert set(secrets) == set(expected)
    for server, (secret_base, dns_names) in SERVERS.items():
        (secret,) = [s for name, s in secrets.items() if expected[name] == secret_base]
        meta = secret.inputs["metadata"]
        assert secret.inputs["type"] == "kubernetes.io/tls"
        assert set(secret.inputs["stringData"]) == {"tls.crt", "tls.key"}
        assert meta["namespace"] == NAMESPACE
        assert meta["labels"][naming.LABEL_MCP_SERVER] == server
        assert meta["labels"][naming.LABEL_COMPONENT] == naming.COMPONENT_SERVING_CERTIFICATE
        assert meta["labels"][naming.LABEL_CREDENTIAL] == naming.CREDENTIAL_SERVING_TLS
        assert meta["labels"][naming.LABEL_ENVIRONMENT] == "dev"
        assert meta["annotations"][naming.ANNOTATION_READER] == naming.mcp_release(server)
        assert secret.inputs["stringData"]["tls.crt"] == (
            f"<generated: serving certificate of {', '.join(dns_names)}>"
        )


def test_keys_travel_only_as_pulumi_secrets() -> None:
    mocks, _, _ = _register()
    for secret in _of(mocks, "Secret"):
        assert secret.raw_inputs["stringData"].get(SECRET_SIG), "the whole data is secret"
    certificates = [r for r in mocks.resources if r.type.endswith(":ServingCertificate")]
    assert len(certificates) == len(SERVERS)
    for cert in certificates:
        assert cert.raw_inputs["ca_key_pem"].get(SECRET_SIG), "the CA key goes in as a secret"
        assert cert.inputs["ca_cert_pem"] == "<generated: upstream CA certificate>"
        assert (cert.inputs["validity_hours"], cert.inputs["renew_within_hours"]) == (2160, 720)


def test_the_config_map_holds_the_public_ca_certificate_only() -> None:
    mocks, _, ca_sha = _register()
    (config_map,) = _of(mocks, "ConfigMap")
    assert config_map.inputs["metadata"]["name"] == naming.issued_name(
        naming.UPSTREAM_CA_CONFIG_MAP, "<generated: upstream CA certificate>"
    )
    assert config_map.inputs["data"] == {"ca.crt": "<generated: upstream CA certificate>"}
    assert ca_sha == hashlib.sha256(b"<generated: upstream CA certificate>").hexdigest()
    texts = str([r.inputs for r in _of(mocks, "ConfigMap") + _of(mocks, "Secret")])
    assert "upstream CA key" not in texts, "the CA key never reaches the cluster"


def test_the_pod_annotation_hash_is_the_public_certificate_of_each_server() -> None:
    _, hashes, _ = _register()
    assert set(hashes) == set(SERVERS)
    for server, (_, dns_names) in SERVERS.items():
        text = f"<generated: serving certificate of {', '.join(dns_names)}>"
        assert hashes[server] == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("validity", "window"), [(100, 100), (100, 0), (10, 20)])
def test_a_window_that_renews_on_every_update_is_refused(validity: int, window: int) -> None:
    with pytest.raises(ValueError, match="renew_within_hours"):
        _args(validity_hours=validity, renew_within_hours=window)


def test_rendered_tls_secrets_show_placeholders_only() -> None:
    """What `render` writes for these Secrets: key names, never a certificate or a key."""
    mocks, _, _ = _register()
    for secret in _of(mocks, "Secret"):
        written = redact(secret.inputs)
        name = written["metadata"]["name"]
        assert written["stringData"] == {
            "tls.crt": f"<redacted:{name}/tls.crt>",
            "tls.key": f"<redacted:{name}/tls.key>",
        }
