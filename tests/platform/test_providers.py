"""Each provider's create, read, update, diff and delete, through the real SDK client."""

from __future__ import annotations

import base64
from typing import Any

import dill
import pytest
from pulumi.dynamic import dynamic

from infra.platform_api.agent import AgentProvider
from infra.platform_api.connection import PlatformError
from infra.platform_api.environment import EnvironmentProvider
from infra.platform_api.tunnel import TunnelProvider
from infra.platform_api.tunnel_certificate import TunnelCertificateProvider
from infra.platform_api.vault import VaultProvider
from infra.platform_api.vault_credential import VaultCredentialProvider
from tests.fakes import platform_api as fake_platform_api
from tests.fakes.platform_api import FakePlatform

CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


def toolset(server: str, *tools: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "mcp_toolset",
        "mcp_server_name": server,
        "default_config": {"enabled": False, "permission_policy": {"type": "always_ask"}},
        "configs": [
            {"name": name, "enabled": True, "permission_policy": {"type": policy}}
            for name, policy in tools
        ],
    }


def agent_props(connection: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    props = {
        "connection": connection,
        "name": "export-ticket-agent",
        "model": "claude-sonnet-4-5",
        "system": "You export tickets.",
        "description": None,
        "mcp_servers": [{"type": "url", "name": "tickets", "url": "https://tickets.t.test/mcp"}],
        "tools": [
            toolset("tickets", ("get_ticket", "always_allow"), ("export_ticket", "always_ask"))
        ],
        "metadata": {"environment": "dev"},
        "adopt_id": None,
    }
    return {**props, **overrides}


def test_every_provider_pickles_without_a_client() -> None:
    """The engine runs providers in another process from a pickled copy."""
    for provider in (
        TunnelProvider(),
        TunnelCertificateProvider(),
        EnvironmentProvider(),
        VaultProvider(),
        VaultCredentialProvider(),
        AgentProvider(),
    ):
        copy = dill.loads(base64.b64decode(dynamic.serialize_provider(provider)))
        assert type(copy) is type(provider)
        assert vars(copy) == {}


def test_tunnel_create_rotate_refresh_archive(platform: FakePlatform, connection: dict) -> None:
    provider = TunnelProvider()
    props = {"connection": connection, "display_name": "dev", "token_epoch": 0, "adopt_id": None}
    created = provider.create(props)
    tunnel_id, outs = created.id, created.outs
    assert tunnel_id.startswith("tnl_")
    assert outs["domain"] == platform.state.objects["tunnels"][tunnel_id]["domain"]
    assert outs["token"] == platform.state.secrets[tunnel_id]

    rotated = {**props, "token_epoch": 1}
    assert provider.diff(tunnel_id, outs, rotated).changes
    assert not provider.diff(tunnel_id, outs, {**props}).changes
    updated = provider.update(tunnel_id, outs, rotated).outs
    assert updated["token"] != outs["token"]
    assert updated["token"] == platform.state.secrets[tunnel_id]
    assert updated["domain"] == outs["domain"]  # same tunnel, same URLs

    refreshed = provider.read(tunnel_id, updated)
    assert refreshed.id == tunnel_id and refreshed.outs["token"] == updated["token"]

    provider.delete(tunnel_id, updated)
    assert platform.state.objects["tunnels"][tunnel_id]["archived_at"]
    assert provider.read(tunnel_id, updated).id is None  # gone: dropped from the state


def test_tunnel_adopts_an_existing_id(platform: FakePlatform, connection: dict) -> None:
    provider = TunnelProvider()
    first = provider.create(
        {"connection": connection, "display_name": "hand-made", "token_epoch": 0, "adopt_id": None}
    )
    adopted = provider.create(
        {"connection": connection, "display_name": "x", "token_epoch": 0, "adopt_id": first.id}
    )
    assert adopted.id == first.id and adopted.outs["domain"] == first.outs["domain"]
    assert len(platform.state.objects["tunnels"]) == 1


def test_adopting_an_unknown_id_names_the_object(connection: dict) -> None:
    with pytest.raises(
        PlatformError, match=r"tunnel 'x' \(tnl_missing1\): not found on the platform"
    ):
        TunnelProvider().create(
            {
                "connection": connection,
                "display_name": "x",
                "token_epoch": 0,
                "adopt_id": "tnl_missing1",
            }
        )


def test_tunnel_certificate_register_replace_archive(
    platform: FakePlatform, connection: dict
) -> None:
    tunnel = TunnelProvider().create(
        {"connection": connection, "display_name": "dev", "token_epoch": 0, "adopt_id": None}
    )
    provider = TunnelCertificateProvider()
    props = {
        "connection": connection,
        "tunnel_id": tunnel.id,
        "ca_certificate_pem": CA_PEM,
        "adopt_id": None,
    }
    cert = provider.create(props)
    assert cert.id.startswith("tcrt_") and len(cert.outs["fingerprint"]) == 64
    new_ca = {**props, "ca_certificate_pem": CA_PEM.replace("fake", "next")}
    diff = provider.diff(cert.id, cert.outs, new_ca)
    assert diff.changes and diff.replaces == ["ca_certificate_pem"]
    assert diff.delete_before_replace is False  # the new CA is trusted before the old goes
    assert provider.read(cert.id, cert.outs).outs["fingerprint"] == cert.outs["fingerprint"]
    provider.delete(cert.id, cert.outs)
    assert provider.read(cert.id, cert.outs).id is None


def test_environment_create_update_adopt_delete(platform: FakePlatform, connection: dict) -> None:
    provider = EnvironmentProvider()
    props = {
        "connection": connection,
        "name": "dev-support",
        "description": "support pool",
        "metadata": {"pool": "support", "old": "x"},
        "adopt_id": None,
    }
    env = provider.create(props)
    stored = platform.state.objects["environments"][env.id]
    assert stored["config"] == {"type": "self_hosted"}
    changed = {**props, "metadata": {"pool": "support"}, "description": "the support pool"}
    assert provider.diff(env.id, env.outs, changed).replaces == []
    provider.update(env.id, env.outs, changed)
    assert stored["metadata"] == {"pool": "support"}
    assert stored["description"] == "the support pool"

    # drift made on the platform shows up on refresh
    stored["name"] = "renamed-by-hand"
    refreshed = provider.read(env.id, changed)
    assert refreshed.outs["name"] == "renamed-by-hand"
    assert provider.diff(env.id, refreshed.outs, changed).changes

    adopted = provider.create({**changed, "adopt_id": env.id})
    assert adopted.id == env.id and stored["name"] == "dev-support"
    provider.delete(env.id, changed)
    assert env.id not in platform.state.objects["environments"]


def test_vault_and_credential_token_rotates_in_place(
    platform: FakePlatform, connection: dict
) -> None:
    vault = VaultProvider().create(
        {"connection": connection, "display_name": "dev", "metadata": {}, "adopt_id": None}
    )
    provider = VaultCredentialProvider()
    props = {
        "connection": connection,
        "vault_id": vault.id,
        "mcp_server_url": "https://tickets.t.test/mcp",
        "token": "first-token-value",
        "display_name": "tickets",
        "metadata": {"mcp_server": "tickets"},
        "adopt_id": None,
    }
    cred = provider.create(props)
    assert platform.state.secrets[cred.id] == "first-token-value"
    assert "first-token-value" not in str(platform.state.objects["credentials"][cred.id])

    rotated = {**props, "token": "second-token-value"}
    diff = provider.diff(cred.id, cred.outs, rotated)
    assert diff.changes and diff.replaces == []  # in place: the id sessions use stays
    provider.update(cred.id, cred.outs, rotated)
    assert platform.state.secrets[cred.id] == "second-token-value"

    moved = {**rotated, "mcp_server_url": "https://tickets.t.test/v2"}
    assert provider.diff(cred.id, rotated, moved).replaces == ["mcp_server_url"]

    refreshed = provider.read(cred.id, rotated)
    assert refreshed.outs["mcp_server_url"] == props["mcp_server_url"]
    assert refreshed.outs["token"] == "second-token-value"

    provider.delete(cred.id, rotated)
    assert cred.id not in platform.state.objects["credentials"]
    VaultProvider().delete(vault.id, {"connection": connection})
    assert vault.id not in platform.state.objects["vaults"]


def test_agent_create_update_with_version_and_archive(
    platform: FakePlatform, connection: dict
) -> None:
    provider = AgentProvider()
    props = agent_props(connection)
    agent = provider.create(props)
    assert agent.outs["version"] == 1
    refreshed = provider.read(agent.id, agent.outs)
    assert not provider.diff(agent.id, refreshed.outs, props).changes  # the platform's echo matches

    narrower = agent_props(connection, tools=[toolset("tickets", ("get_ticket", "always_allow"))])
    updated = provider.update(agent.id, agent.outs, narrower).outs
    assert updated["version"] == 2
    stored = platform.state.objects["agents"][agent.id]
    assert [c["name"] for c in stored["tools"][0]["configs"]] == ["get_ticket"]

    provider.delete(agent.id, updated)
    assert stored["archived_at"]


def test_agent_concurrent_edit_is_refused_not_overwritten(
    platform: FakePlatform, connection: dict
) -> None:
    provider = AgentProvider()
    agent = provider.create(agent_props(connection))
    platform.state.objects["agents"][agent.id].update(system="edited by hand", version=2)
    with pytest.raises(PlatformError, match=r"version conflict.*pulumi refresh"):
        provider.update(agent.id, agent.outs, agent_props(connection, system="from config"))
    assert platform.state.objects["agents"][agent.id]["system"] == "edited by hand"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tools": [toolset("billing", ("x", "always_ask"))]}, "not a declared MCP server"),
        ({"tools": []}, "exactly one mcp_toolset"),
        (
            {
                "mcp_servers": [
                    {"type": "url", "name": f"s{i}", "url": f"https://s{i}.t.test/mcp"}
                    for i in range(21)
                ],
                "tools": [toolset(f"s{i}", ("x", "always_ask")) for i in range(21)],
            },
            "at most 20",
        ),
        (
            {
                "mcp_servers": [
                    {"type": "url", "name": "tickets", "url": "https://tickets.t.test/mcp"}
                ]
                * 2
            },
            "duplicate name",
        ),
    ],
)
def test_agent_the_platform_refuses(connection: dict, change: dict[str, Any], message: str) -> None:
    with pytest.raises(
        PlatformError, match=f"agent 'export-ticket-agent': create failed.*{message}"
    ):
        AgentProvider().create(agent_props(connection, **change))


def test_authentication_failure_names_the_key_and_hides_it(connection: dict) -> None:
    wrong = {**connection, "api_key": "sk-wrong-key-123"}
    with pytest.raises(PlatformError) as caught:
        VaultProvider().create({"connection": wrong, "display_name": "dev", "metadata": {}})
    text = str(caught.value)
    assert "authentication failed" in text and "agent-perimeter:platformApiKey" in text
    assert "sk-wrong-key-123" not in text


def test_rate_limit_reported_after_the_sdk_retries(
    platform: FakePlatform, connection: dict
) -> None:
    platform.fail_next(429, "rate_limit_error", "slow down", count=3)
    with pytest.raises(
        PlatformError, match="vault 'dev': create rate limited after the SDK's retries"
    ):
        VaultProvider().create({"connection": connection, "display_name": "dev", "metadata": {}})
    assert platform.requests.count(("POST", "/v1/vaults")) == 3  # the first try and 2 retries
    assert platform.state.objects["vaults"] == {}


def test_missing_api_key_names_the_config_key() -> None:
    with pytest.raises(PlatformError, match="agent-perimeter:platformApiKey"):
        VaultProvider().create({"connection": {"api_key": None}, "display_name": "dev"})


def test_a_failed_token_reveal_leaves_no_unrecorded_tunnel(
    platform: FakePlatform, connection: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = platform.handle

    def refuse_reveal(method: str, path: str, raw: bytes, headers: dict) -> Any:
        if path.endswith("/reveal_token"):
            return 500, {"type": "error", "error": {"type": "api_error", "message": "boom"}}, {}
        return original(method, path, raw, headers)

    monkeypatch.setattr(platform, "handle", refuse_reveal)
    with pytest.raises(PlatformError, match="reveal token failed"):
        TunnelProvider().create(
            {"connection": connection, "display_name": "dev", "token_epoch": 0, "adopt_id": None}
        )
    assert all(t["archived_at"] for t in platform.state.objects["tunnels"].values())


@pytest.mark.parametrize("domain", ["not a domain", "10.0.0.1", "UPPER.example.com", "single"])
def test_a_tunnel_domain_the_platform_returns_unusable_is_refused_where_it_arrives(
    platform: FakePlatform, connection: dict, domain: str
) -> None:
    """Caught by the provider that receives it, naming the platform, before any URL, chart or
    vault credential is built on it (not by the tunnel chart's schema, 100 resources later)."""
    provider = TunnelProvider()
    props = {"connection": connection, "display_name": "dev", "token_epoch": 0, "adopt_id": None}
    created = provider.create(props)
    platform.state.objects["tunnels"][created.id]["domain"] = domain
    with pytest.raises(PlatformError, match="the platform returned tunnel domain"):
        provider.read(created.id, created.outs)
    with pytest.raises(PlatformError, match="the platform returned tunnel domain"):
        provider.create({**props, "adopt_id": created.id})
    assert platform.state.objects["tunnels"][created.id]["archived_at"] is None  # adopted: kept


def test_a_created_tunnel_with_an_unusable_domain_is_archived_and_refused(
    platform: FakePlatform, connection: dict
) -> None:
    platform.tunnel_domain = "not a domain"
    props = {"connection": connection, "display_name": "dev", "token_epoch": 0, "adopt_id": None}
    with pytest.raises(PlatformError, match=r"'not a domain'.* is not a domain name"):
        TunnelProvider().create(props)
    (tunnel,) = platform.state.objects["tunnels"].values()
    assert tunnel["archived_at"], "the refused tunnel was left behind on the platform"


@pytest.mark.parametrize(
    ("collection", "make"),
    [
        (
            "tunnels",
            lambda c: TunnelProvider().create(
                {"connection": c, "display_name": "dev", "token_epoch": 0, "adopt_id": None}
            ),
        ),
        (
            "environments",
            lambda c: EnvironmentProvider().create(
                {"connection": c, "name": "dev-pool", "description": "", "metadata": {}}
            ),
        ),
        (
            "vaults",
            lambda c: VaultProvider().create(
                {"connection": c, "display_name": "dev", "metadata": {}}
            ),
        ),
    ],
)
@pytest.mark.parametrize("bad_id", ["../../v1/agents", "tnl_x y", "", "x" * 200])
def test_an_id_the_platform_returns_unusable_is_refused_where_it_arrives(
    platform: FakePlatform,
    connection: dict,
    monkeypatch: pytest.MonkeyPatch,
    collection: str,
    make: Any,
    bad_id: str,
) -> None:
    """Issue 22 §12: an id that is no id never becomes the path of a later call, a chart value
    or an environment variable; the provider that receives it says the platform returned it."""
    monkeypatch.setattr(fake_platform_api, "_new_id", lambda kind: bad_id)
    with pytest.raises(PlatformError, match=r"the platform returned .* id"):
        make(connection)
