"""Under `pulumi up`: secrets must arrive as Pulumi secrets, never as plain stack values."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pulumi
import pulumi.runtime
import pytest

from infra.offline.mocked import RecordingMocks
from infra.pure.config import PROJECT, load_pulumi
from tests.conftest import raw_settings

SECRETS = {
    f"{PROJECT}:tunnelTlsCert": "cert",
    f"{PROJECT}:tunnelTlsKey": "key",
    f"{PROJECT}:tunnelCaCert": "ca",
    f"{PROJECT}:platformApiKey": "api-key-plain-value",
    f"{PROJECT}:environmentKeys": json.dumps({"support": "env-key", "export-tickets": "env-key-2"}),
    f"{PROJECT}:databaseAdminPasswords": json.dumps({"support": "pw"}),
    f"{PROJECT}:backendCredentials": json.dumps(
        {
            "exports": {"export-store": "store-key"},
            "billing": {"billing-api": "billing-token"},
            "inventory": {"warehouse-api": "wh-token"},
        }
    ),
}


@pytest.fixture
def stack_config() -> Iterator[None]:
    pulumi.runtime.set_mocks(RecordingMocks(), project=PROJECT, stack="dev", preview=False)
    yield
    pulumi.runtime.set_all_config({}, [])


def _configure(secret_keys: list[str]) -> None:
    values = {f"{PROJECT}:perimeter": json.dumps(raw_settings("dev")), **SECRETS}
    pulumi.runtime.set_all_config(values, secret_keys)


def test_secrets_set_with_secret_are_accepted(stack_config: None) -> None:
    _configure(list(SECRETS))
    config, secrets = load_pulumi()
    assert config.environment == "dev"
    assert set(secrets.database_admin_passwords) == {"support"}
    assert set(secrets.backend_credentials) == {
        ("exports", "export-store"),
        ("billing", "billing-api"),
        ("inventory", "warehouse-api"),
    }


def test_a_missing_backend_credential_is_named(stack_config: None) -> None:
    """Each backend with `credential: true` needs its own value; the error names which."""
    _configure(list(SECRETS))
    values = {
        f"{PROJECT}:perimeter": json.dumps(raw_settings("dev")),
        **SECRETS,
        f"{PROJECT}:backendCredentials": json.dumps({"billing": {"billing-api": "t"}}),
    }
    pulumi.runtime.set_all_config(values, list(SECRETS))
    with pytest.raises(pulumi.RunError) as caught:
        load_pulumi()
    assert (
        f"{PROJECT}:backendCredentials: no value for: exports.export-store, inventory.warehouse-api"
        in str(caught.value)
    )
    assert "billing-token" not in str(caught.value)


def test_a_secret_written_in_plain_text_is_refused_without_its_value(stack_config: None) -> None:
    _configure([k for k in SECRETS if not k.endswith(":platformApiKey")])
    with pytest.raises(pulumi.RunError) as caught:
        load_pulumi()
    assert f"{PROJECT}:platformApiKey: written in plain text" in str(caught.value)
    assert "api-key-plain-value" not in str(caught.value)
