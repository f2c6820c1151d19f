"""One `pulumi up` makes both halves: cluster objects and platform objects that agree.

The platform is the loopback fake (its state file is what the platform holds); the
cluster is the suite's control plane. Tests run in order against one deployment.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra.pure.naming import ANNOTATION_MCP_SERVER_URL, LABEL_CREDENTIAL
from tests.e2e.harness.perimeter import Perimeter
from tests.e2e.harness.tools import REPO


@pytest.fixture(scope="module")
def both(workspace, cluster, proxy_tls, platform_api) -> Iterator[tuple[Perimeter, Any]]:
    perimeter = Perimeter.prepare(
        workspace,
        cluster,
        "e2e-platform",
        proxy_tls,
        platform_api,
        stack_file=REPO / "Pulumi.dev.yaml",
    )
    try:
        perimeter.stack.up()
        yield perimeter, platform_api
    finally:
        perimeter.stack.destroy(check=False)
        perimeter.stack.remove()


def platform_state(platform_api: Any) -> dict[str, Any]:
    return json.loads(platform_api.state.read_text())


def live(state: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [o for o in state["objects"][kind].values() if not o.get("archived_at")]


def cluster_tokens(perimeter: Perimeter) -> dict[str, str]:
    """MCP server URL -> the token its server accepts, from the live platform-token Secrets."""
    found = {}
    for secret in perimeter.objects("secrets"):
        meta = secret["metadata"]
        if (meta.get("labels") or {}).get(LABEL_CREDENTIAL) != "platform-token":
            continue
        url = meta["annotations"][ANNOTATION_MCP_SERVER_URL]
        found[url] = base64.b64decode(secret["data"]["token"]).decode()
    return found


def vault_tokens(state: dict[str, Any], vault_id: str) -> dict[str, tuple[str, str]]:
    """MCP server URL -> (credential id, token) held in the vault."""
    return {
        c["auth"]["mcp_server_url"]: (c["id"], state["secrets"][c["id"]])
        for c in live(state, "credentials")
        if c["vault_id"] == vault_id
    }


def outputs_agent_ids(outputs: dict[str, Any]) -> set[str]:
    return {a["id"] for a in outputs["agents"].values()}


def test_up_creates_both_halves_and_they_agree(both: tuple[Perimeter, Any]) -> None:
    perimeter, platform_api = both
    state = platform_state(platform_api)
    outputs = perimeter.stack.outputs()
    (tunnel,) = [t for t in live(state, "tunnels") if t["domain"] == outputs["tunnel_domain"]]
    assert live(state, "certificates"), "the proxy's CA is not registered with the tunnel"
    environments = {e["id"] for e in live(state, "environments")}
    assert set(outputs["environment_ids"]) == {p.name for p in perimeter.config.sandboxes}
    assert set(outputs["environment_ids"].values()) <= environments
    (vault,) = [v for v in live(state, "vaults") if v["id"] == outputs["vault_id"]]
    held = vault_tokens(state, vault["id"])
    accepted = cluster_tokens(perimeter)
    # One credential per server, bound to exactly the URL the server's Secret names, holding
    # exactly the token the server accepts: nothing was copied by hand.
    assert set(held) == set(accepted)
    assert {url: token for url, (_, token) in held.items()} == accepted
    for url in held:
        assert url.startswith("https://") and url.split("/")[2].endswith("." + tunnel["domain"])
    agents = [a for a in live(state, "agents") if a["id"] in outputs_agent_ids(outputs)]
    assert {a["name"] for a in agents} == {a.name for a in perimeter.config.agents}
    for agent in agents:
        assert {s["url"] for s in agent["mcp_servers"]} <= set(held)


def test_a_second_up_changes_nothing(both: tuple[Perimeter, Any]) -> None:
    perimeter, platform_api = both
    before = platform_state(platform_api)
    perimeter.stack.preview("--expect-no-changes")
    perimeter.stack.up()
    after = platform_state(platform_api)
    assert after == before


def test_a_token_rotation_updates_the_credential_in_place(both: tuple[Perimeter, Any]) -> None:
    perimeter, platform_api = both
    vault_id = perimeter.stack.outputs()["vault_id"]
    before = vault_tokens(platform_state(platform_api), vault_id)
    servers = perimeter.config.model_dump(mode="json", exclude_none=True)["mcp_servers"]
    servers[0]["token_epoch"] = servers[0].get("token_epoch", 0) + 1
    perimeter.edit_settings(mcp_servers=servers)
    rotated = perimeter.config.mcp_url(perimeter.config.mcp_servers[0], None)

    for _ in range(2):  # the rollout, then the `up` that drops the previous token
        perimeter.stack.up()
        after = vault_tokens(platform_state(platform_api), vault_id)
        assert cluster_tokens(perimeter) == {u: t for u, (_, t) in after.items()}
    changed = [url for url in before if before[url][1] != after[url][1]]
    assert len(changed) == 1 and changed[0].startswith(rotated.split(".")[0])
    assert {url: cid for url, (cid, _) in after.items()} == {
        url: cid for url, (cid, _) in before.items()
    }, "the credential was replaced, not updated in place"
    perimeter.stack.preview("--expect-no-changes")


def test_destroy_archives_or_deletes_the_platform_objects(both: tuple[Perimeter, Any]) -> None:
    perimeter, platform_api = both
    perimeter.stack.destroy()
    state = platform_state(platform_api)
    for kind in ("tunnels", "agents", "environments", "vaults", "credentials"):
        assert live(state, kind) == [], kind
