"""A loopback HTTPS server serving a given certificate, and a client trusting only a given CA:
the proxy's side of the handshake, without the proxy."""

from __future__ import annotations

import http.server
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BODY = b"served over the generated certificate\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@contextmanager
def https_server(cert_pem: str, key_pem: str) -> Iterator[int]:
    """The port of an HTTPS server on 127.0.0.1; stopped (and joined) on exit, even on failure."""
    with tempfile.TemporaryDirectory(prefix="agent-perimeter-serving-") as tmp:
        folder = Path(tmp)
        (folder / "tls.crt").write_text(cert_pem)
        (folder / "tls.key").write_text(key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(folder / "tls.crt", folder / "tls.key")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


def fetch(port: int, ca_pem: str, hostname: str) -> bytes:
    """GET / over TLS trusting only `ca_pem`, checking the certificate against `hostname`."""
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        tls.sendall(f"GET / HTTP/1.0\r\nHost: {hostname}\r\n\r\n".encode())
        chunks = []
        while chunk := tls.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)
