"""Per-server token rotation: at no moment does the vault hold a token the server refuses.

A real HTTP server checks bearer tokens against the files the chart mounts
(`/var/run/secrets/platform/`: `token`, and `previous-token` during a rotation).
The Secret contents and the vault token of each phase come from the program
itself under mocks; each `up` rolls the server out before the vault credential
changes (the credential depends on the server), and the test replays exactly that.
"""

from __future__ import annotations

import hashlib
import http.client
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.offline.mocked import RecordingMocks, synthesize
from infra.platform_api.token_rotation import NOT_RETIRING
from infra.pure.config import PerimeterConfig

SERVER = "tickets"


class EngineLikeMocks(RecordingMocks):
    """A generated password changes only when its keepers do (as the engine keeps state), and
    the rotation resource answers what its `check` would for this phase."""

    def __init__(self, retiring: int | None) -> None:
        super().__init__()
        self.retiring = retiring

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        resource_id, state = super().new_resource(args)
        if args.typ == "random:index/randomPassword:RandomPassword":
            keepers = str(sorted((args.inputs.get("keepers") or {}).items()))
            state["result"] = hashlib.sha256(f"{args.name}{keepers}".encode()).hexdigest()[:40]
        if args.typ.endswith(":TokenRotation"):
            state["retiring_epoch"] = NOT_RETIRING if self.retiring is None else self.retiring
        return resource_id, state


@dataclass(frozen=True)
class Phase:
    secret_name: str  # a content never changes under one name (no delete-before-create window)
    files: dict[str, str]  # the token Secret's data: what the chart mounts as files
    vault_token: str  # what the VaultCredential is given


def phase(config: PerimeterConfig, epoch: int, retiring: int | None) -> Phase:
    server = config.server(SERVER).model_copy(update={"token_epoch": epoch})
    servers = [server if s.name == SERVER else s for s in config.mcp_servers]
    changed = config.model_copy(update={"mcp_servers": servers})
    changed._prompts.update(config._prompts)
    synthesis = synthesize(changed, EngineLikeMocks(retiring))
    (secret,) = [
        r.inputs
        for r in synthesis.resources
        if r.inputs.get("kind") == "Secret"
        and r.inputs["metadata"]["name"].startswith(f"mcp-server-{SERVER}-platform-token-")
    ]
    (credential,) = [
        r.inputs
        for r in synthesis.resources
        if r.type.endswith(":VaultCredential")
        and r.inputs["display_name"] == f"mcp-server-{SERVER}"
    ]
    return Phase(secret["metadata"]["name"], dict(secret["stringData"]), credential["token"])


class TokenDirectory:
    """What kubelet does with a mounted Secret: the directory holds exactly its keys."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mount(self, files: dict[str, str]) -> None:
        for old in self.path.iterdir():
            old.unlink()
        for key, value in files.items():
            (self.path / key).write_text(value)


@pytest.fixture
def bearer_server(tmp_path: Path) -> Iterator[tuple[TokenDirectory, int]]:
    """An MCP-style endpoint accepting any token found in its token directory."""
    tokens = TokenDirectory(tmp_path)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            presented = self.headers.get("authorization", "").removeprefix("Bearer ")
            accepted = {p.read_text() for p in tokens.path.iterdir()} - {""}
            self.send_response(200 if presented in accepted else 401)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tokens, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def call(port: int, token: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", "/mcp", body=b"{}", headers={"authorization": f"Bearer {token}"})
        return connection.getresponse().status
    finally:
        connection.close()


def replay(tokens: TokenDirectory, port: int, phases: list[Phase]) -> list[int]:
    """Each `up`: the server rolls out with its new files, then the vault credential moves."""
    statuses = []
    tokens.mount(phases[0].files)
    vault = phases[0].vault_token
    statuses.append(call(port, vault))
    for step in phases[1:]:
        tokens.mount(step.files)
        statuses.append(call(port, vault))  # rolled out, vault not yet updated
        vault = step.vault_token
        statuses.append(call(port, vault))  # vault updated
    return statuses


def test_rotation_never_leaves_the_vault_token_refused(
    dev_config: PerimeterConfig, bearer_server: tuple[TokenDirectory, int]
) -> None:
    tokens, port = bearer_server
    steady = phase(dev_config, 0, None)
    rotating = phase(dev_config, 1, 0)  # the `up` that raised token_epoch
    settled = phase(dev_config, 1, None)  # the next `up`

    assert rotating.vault_token != steady.vault_token  # the credential really rotates
    assert rotating.files == {"token": rotating.vault_token, "previous-token": steady.vault_token}
    assert settled.files == {"token": rotating.vault_token}  # the previous token is dropped
    assert [steady.secret_name, rotating.secret_name, settled.secret_name] == [
        f"mcp-server-{SERVER}-platform-token-r0",
        f"mcp-server-{SERVER}-platform-token-r1-and-r0",
        f"mcp-server-{SERVER}-platform-token-r1",
    ]
    assert replay(tokens, port, [steady, rotating, settled]) == [200] * 5

    # the server refuses what it does not hold: the test can tell the difference
    assert call(port, steady.vault_token) == 401


def test_without_the_previous_token_a_rollout_would_refuse_the_vault(
    dev_config: PerimeterConfig, bearer_server: tuple[TokenDirectory, int]
) -> None:
    """The one-step rotation this design avoids: new token only, vault still old."""
    tokens, port = bearer_server
    steady, settled = phase(dev_config, 0, None), phase(dev_config, 1, None)
    assert 401 in replay(tokens, port, [steady, settled])


def test_rotation_state_follows_the_engine_check() -> None:
    from infra.platform_api.token_rotation import TokenRotationProvider

    provider = TokenRotationProvider()
    first = provider.check({}, {"server": SERVER, "epoch": 0})
    assert first.inputs["retiring_epoch"] == NOT_RETIRING and not first.failures
    raised = provider.check(first.inputs, {"server": SERVER, "epoch": 1})
    assert raised.inputs["retiring_epoch"] == 0
    assert provider.diff("id", raised.inputs, raised.inputs).changes is False
    settled = provider.check(raised.inputs, {"server": SERVER, "epoch": 1})
    assert settled.inputs["retiring_epoch"] == NOT_RETIRING
    assert provider.diff("id", raised.inputs, settled.inputs).changes  # the drop is an update
    (failure,) = provider.check(settled.inputs, {"server": SERVER, "epoch": 3}).failures
    assert "raise it by one per `pulumi up`" in failure.reason
