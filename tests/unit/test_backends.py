"""MCP servers of every shape: what a backend declaration allows, refuses and creates."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from typing import Any

import pytest

from infra.offline.mocked import synthesize
from infra.pure.config import ConfigError, PerimeterConfig, load, parse_perimeter
from infra.pure.naming import (
    ANNOTATION_BACKEND,
    ANNOTATION_READER,
    CREDENTIAL_BACKEND,
    LABEL_CREDENTIAL,
    backend_secret_name,
    issued_base,
    keyed_name,
    mcp_release,
)
from infra.pure.network import mcp_server_policy
from tests.conftest import assert_refused, raw_settings

# dev's servers: 0 exports (database + export-store), 1 tickets (database), 2 inventory
# (database + warehouse-api), 3 billing (HTTP)
BILLING = 3


def _billing(raw: dict[str, Any]) -> dict[str, Any]:
    server: dict[str, Any] = raw["mcp_servers"][BILLING]
    assert server["name"] == "billing"
    return server


def _add_backend(**backend: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        _billing(raw)["backends"].append({"name": "extra", "ports": [443], **backend})

    return apply


def _drop_cidrs(raw: dict[str, Any]) -> None:
    del _billing(raw)["backends"][0]["cidrs"]


def _grant_without_database(raw: dict[str, Any]) -> None:
    _billing(raw)["tools"][0]["grants"] = [{"table": "billing.invoices", "privileges": ["SELECT"]}]


def _database_tool_without_grants(raw: dict[str, Any]) -> None:
    tool = raw["mcp_servers"][1]["tools"][1]
    del tool["grants"]


def _credential_in_env(raw: dict[str, Any]) -> None:
    _billing(raw)["env"]["BILLING_API_TOKEN"] = "abc"


def _backend_named_like_database(raw: dict[str, Any]) -> None:
    raw["mcp_servers"][2]["backends"][0]["name"] = "support"


def _plain_http_in_prod(raw: dict[str, Any]) -> None:
    raw["upstream_tls"] = {"enabled": False}


BAD_BACKENDS = [
    ("dns name without cidrs", _drop_cidrs, "mcp_servers[3].backends[0].cidrs", "NetworkPolicies cannot match names"),
    ("metadata cidr", _add_backend(cidrs=["169.254.0.0/16"]), "mcp_servers[3].backends[1].cidrs[0]", "metadata address"),
    ("metadata host", _add_backend(host="169.254.169.254"), "mcp_servers[3].backends[1].host", "metadata"),
    ("overlapping another backend", _add_backend(cidrs=["10.30.4.128/25"]), "mcp_servers[3].backends[1].cidrs[0]", "overlaps backends[0].cidrs[0]"),
    ("overlapping the cluster's services", _add_backend(cidrs=["10.96.0.0/16"]), "mcp_servers[3].backends[1].cidrs[0]", "overlaps cluster.service_cidrs[0]"),
    ("overlapping the platform API", _add_backend(cidrs=["160.79.104.0/24"]), "mcp_servers[3].backends[1].cidrs[0]", "overlaps platform.api_cidrs[0]"),
    ("overlapping its own database", lambda raw: raw["mcp_servers"][2]["backends"].append({"name": "db2", "host": "10.20.0.15", "ports": [5433]}), "mcp_servers[2].backends[1].host", "overlaps databases.support.cidrs[0]"),
    ("host outside its cidrs", _add_backend(host="10.50.0.1", cidrs=["10.51.0.0/24"]), "mcp_servers[3].backends[1].host", "outside cidrs"),
    ("no address at all", _add_backend(), "mcp_servers[3].backends[1].cidrs", "give the backend's address"),
    ("duplicate backend name", _add_backend(name="billing-api", cidrs=["10.31.0.0/24"]), "mcp_servers[3].backends[1].name", "already used by backends[0]"),
    ("backend named like the database", _backend_named_like_database, "mcp_servers[2].backends[0].name", "already the name of the server's database"),
    ("duplicate port", _add_backend(cidrs=["10.31.0.0/24"], ports=[443, 443]), "mcp_servers[3].backends[1].ports", "declared twice"),
    ("grants on a server without a database", _grant_without_database, "mcp_servers[3].tools[0].grants", "has no database"),
    ("a database tool without grants", _database_tool_without_grants, "mcp_servers[1].tools[1].grants", "needs at least one grant"),
    ("a credential as an env value", _credential_in_env, "mcp_servers[3].env.BILLING_API_TOKEN", "backendCredentials"),
    ("an env name the chart sets", lambda raw: _billing(raw)["env"].update(MCP_PORT="1"), "mcp_servers[3].env.MCP_PORT", "the chart sets those itself"),
    ("a private key in a config file", lambda raw: _billing(raw)["config_files"].update({"key.pem": "-----BEGIN EC PRIVATE KEY-----\nx\n"}), "mcp_servers[3].config_files.key.pem", "holds a PEM private key"),
    ("a config file name with a path", lambda raw: _billing(raw)["config_files"].update({"../x": "a"}), "mcp_servers[3].config_files.../x", "plain file name"),
    ("plain HTTP upstreams in prod", lambda raw: (raw.update(tier="prod"), _plain_http_in_prod(raw)), "upstream_tls.enabled", "prod requires TLS"),
    ("a renewal window as long as the validity", lambda raw: raw.update(upstream_tls={"validity_hours": 720, "renew_within_hours": 720}), "upstream_tls.renew_within_hours", "shorter than the validity"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [case[1:] for case in BAD_BACKENDS],
    ids=[case[0] for case in BAD_BACKENDS],
)
def test_bad_backend_names_the_field(mutate: Callable, field: str, message: str) -> None:
    assert_refused(mutate, field, message)


def test_an_env_value_never_appears_in_the_error() -> None:
    raw = raw_settings("dev")
    _billing(raw)["env"]["BILLING_API_TOKEN"] = "s3cr3t-value-xyz"
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, "Pulumi.dev.yaml")
    assert "s3cr3t-value-xyz" not in str(caught.value)


@pytest.fixture(scope="module")
def dev() -> PerimeterConfig:
    return load(stack="dev")


def _networks(rules: list[dict[str, Any]]) -> set[tuple[str, str, int]]:
    return {
        (peer["ipBlock"]["cidr"], port["protocol"], port["port"])
        for rule in rules
        for peer in rule["to"]
        for port in rule["ports"]
    }


def test_each_server_reaches_exactly_its_backends(dev: PerimeterConfig) -> None:
    for server in dev.mcp_servers:
        expected = {
            (cidr, backend.protocol, port)
            for backend in server.backends
            for cidr in backend.effective_cidrs
            for port in backend.ports
        }
        if server.database is not None:
            database = dev.databases[server.database]
            expected |= {(cidr, "TCP", database.port) for cidr in database.cidrs}
        egress = mcp_server_policy(dev, server.name)["spec"]["egress"]
        assert _networks(egress) == expected, server.name
    billing = mcp_server_policy(dev, "billing")["spec"]["egress"]
    assert _networks(billing) == {("10.30.4.0/24", "TCP", 443)}  # no database, nothing else


def test_a_backend_by_ip_is_allowed_as_that_one_address(dev: PerimeterConfig) -> None:
    warehouse = dev.server("inventory").backend("warehouse-api")
    (cidr,) = warehouse.effective_cidrs
    assert ipaddress.ip_network(cidr).num_addresses == 1


def test_each_backend_credential_is_one_secret_with_one_reader(dev: PerimeterConfig) -> None:
    synthesis = synthesize(dev)
    secrets = [
        r.inputs
        for r in synthesis.resources
        if r.type == "kubernetes:core/v1:Secret"
        and r.inputs["metadata"]["labels"].get(LABEL_CREDENTIAL) == CREDENTIAL_BACKEND
    ]
    expected = {
        backend_secret_name(s, b.name): (mcp_release(s), b.name)
        for s in dev.mcp_servers
        for b in s.credential_backends
    }
    # named `<base>-<digest of the value, keyed by a random key>`: a new value is a new Secret
    bases = [issued_base(s["metadata"]["name"]) for s in secrets]
    assert sorted(b for b in bases if b) == sorted(expected)
    for secret, base in zip(secrets, bases, strict=True):
        reader, backend = expected[str(base)]
        annotations = secret["metadata"]["annotations"]
        assert annotations[ANNOTATION_READER] == reader
        assert annotations[ANNOTATION_BACKEND] == backend
        assert set(secret["stringData"]) == {"credential"}
        assert secret["stringData"]["credential"].startswith("<secret:backendCredentials.")


def test_a_server_without_database_gets_no_role_and_no_provisioner_wait(
    dev: PerimeterConfig,
) -> None:
    synthesis = synthesize(dev)
    names = [
        r.inputs["metadata"]["name"]
        for r in synthesis.resources
        if r.type == "kubernetes:core/v1:Secret"
    ]
    assert not [n for n in names if n.startswith("mcp-server-billing-db-")]
    assert [n for n in names if n.startswith("mcp-server-tickets-db-")]


def test_a_backend_secret_name_changes_with_the_value_and_hides_it() -> None:
    """A new credential is a Secret of a new name (created before the old one is deleted);
    without the key from the state, the name says nothing about the value."""
    key = bytes(range(32))
    first = keyed_name("mcp-server-billing-backend-billing-api", key, "token-1")
    assert issued_base(first) == "mcp-server-billing-backend-billing-api"
    assert keyed_name("mcp-server-billing-backend-billing-api", key, "token-2") != first
    other_key = keyed_name("mcp-server-billing-backend-billing-api", bytes(32), "token-1")
    assert other_key != first
    assert hashlib.sha256(b"token-1").hexdigest()[:10] not in first
