"""The platform's bearer, as the runtime checks it: through a rotation, with no restart."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx2
import pytest

from tests.servers.conftest import Exports
from tests.servers.harness import RunningServer, run, write_secret

pytestmark = pytest.mark.postgres

LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


@pytest.fixture
def server(exports: Exports) -> Iterator[RunningServer]:
    with exports.serve() as running:
        yield running


def tools_with(running: RunningServer, token: str) -> list[str]:
    async def go() -> list[str]:
        async with running.client(token) as client:
            return [t.name for t in (await client.list_tools()).tools]

    return run(go())


def status_with(running: RunningServer, authorization: str | None) -> httpx2.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return running.post(LIST, **headers)


def test_missing_wrong_or_malformed_bearer_get_the_same_401(server: RunningServer) -> None:
    responses = [
        status_with(server, None),
        status_with(server, f"Bearer {secrets.token_urlsafe(32)}"),
        status_with(server, f"Bearer {server.files.token}x"),
        status_with(server, f"Basic {server.files.token}"),
        status_with(server, "Bearer"),
    ]
    assert {r.status_code for r in responses} == {401}
    assert len({(r.text, r.headers.get("www-authenticate")) for r in responses}) == 1
    assert server.files.token not in responses[2].text
    assert status_with(server, f"Bearer {server.files.token}").status_code == 200


def test_rotation_accepts_both_then_refuses_the_previous(server: RunningServer) -> None:
    old, new = server.files.token, secrets.token_urlsafe(32)
    token_dir = server.files.path("platform-token")
    assert tools_with(server, old)
    # First `up` of the rotation: the Secret holds the new token and the previous one.
    write_secret(token_dir, {"token": new, "previous-token": old})
    assert tools_with(server, new) == tools_with(server, old)
    # Second `up`: only the new token; the old one is refused from the next request on.
    write_secret(token_dir, {"token": new})
    assert status_with(server, f"Bearer {old}").status_code == 401
    assert tools_with(server, new)
    assert server.process.poll() is None  # no restart was needed


def test_health_endpoints_need_no_bearer_and_say_nothing_secret(server: RunningServer) -> None:
    live = server.get(server.files.deployment.liveness)
    ready = server.get(server.files.deployment.readiness)
    assert (live.status_code, ready.status_code) == (200, 200)
    assert ready.json() == {"ready": True}
