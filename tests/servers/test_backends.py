"""HTTP backends through the runtime: the credential file as the bearer, TLS verified as
declared, and a failing backend a tool error rather than a made-up answer."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from servers.runtime import contract
from tests.certificates.issued import make_ca, make_serving
from tests.servers.harness import (
    Deployment,
    RunningServer,
    ServerFiles,
    free_port,
    start,
    stop,
    write_secret,
)
from tests.servers.test_exports_server import answer, call, error

MODULE = "tests.servers.ledger_server"
CREDENTIAL = "ledger-credential-7f3a"


class Ledger(ThreadingHTTPServer):
    status = 200
    seen: list[str | None]


class LedgerHandler(BaseHTTPRequestHandler):
    server: Ledger

    def do_GET(self) -> None:
        self.server.seen.append(self.headers.get("Authorization"))
        body = json.dumps({"account": self.path.rsplit("/", 1)[-1], "balance": "12.50"}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    server = Ledger(("127.0.0.1", 0), LedgerHandler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def serve(root: Path, backend_port: int, tls: bool) -> RunningServer:
    deployment = Deployment(
        env={},
        mounts={"tls": "/tls", "platform-token": "/token"},
        liveness="/livez",
        readiness="/readyz",
    )
    files = ServerFiles(root, deployment)
    files.write({}, {})
    write_secret(root / "ledger", {"credential": CREDENTIAL})
    port = free_port()
    env = {
        contract.SERVER_NAME: "ledger",
        contract.LISTEN_ADDR: f"127.0.0.1:{port}",
        contract.PATH: "/mcp",
        contract.TOOLS: "get_balance",
        contract.TLS_CERT_FILE: str(files.path("tls") / "tls.crt"),
        contract.TLS_KEY_FILE: str(files.path("tls") / "tls.key"),
        contract.BEARER_TOKEN_DIR: str(files.path("platform-token")),
        "BACKEND_LEDGER_API_HOST": "127.0.0.1",
        "BACKEND_LEDGER_API_PORT": str(backend_port),
        "BACKEND_LEDGER_API_TLS": "true" if tls else "false",
        "BACKEND_LEDGER_API_CREDENTIAL_FILE": str(root / "ledger" / "credential"),
    }
    return start(MODULE, env, files, port)


def test_the_backend_gets_the_credential_file_as_its_bearer(ledger: Ledger, tmp_path: Path) -> None:
    running = serve(tmp_path, ledger.server_address[1], tls=False)
    try:
        assert answer(call(running, "get_balance", {"account_id": "acc_000042"}, tenant=None)) == {
            "account": "acc_000042",
            "balance": "12.50",
        }
        assert ledger.seen == [f"Bearer {CREDENTIAL}"]
        ledger.status = 503
        message = error(call(running, "get_balance", {"account_id": "acc_000042"}, tenant=None))
        assert message.endswith("could not check: a backend answered 503")
        assert CREDENTIAL not in running.output()
    finally:
        stop(running)


def test_a_backend_whose_certificate_does_not_verify_is_never_called(
    ledger: Ledger, tmp_path: Path
) -> None:
    _, ca = make_ca("an authority the server does not trust")
    _, leaf = make_serving(ca, dns_names=["localhost"])
    (tmp_path / "leaf.pem").write_text(leaf["cert_pem"] + leaf["key_pem"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "leaf.pem")
    ledger.socket = context.wrap_socket(ledger.socket, server_side=True)
    running = serve(tmp_path / "server", ledger.server_address[1], tls=True)
    try:
        message = error(call(running, "get_balance", {"account_id": "acc_000042"}, tenant=None))
        assert "could not check: a backend could not be reached (ConnectError)" in message
        assert ledger.seen == []
    finally:
        stop(running)
