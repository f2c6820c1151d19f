"""The export server against the suite's PostgreSQL, its roles made by the real role script."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra.pure.config import PerimeterConfig, load
from infra.pure.naming import tool_role
from tests.database.conftest import Passwords, Server, apply
from tests.servers.harness import Deployment, RunningServer, ServerFiles, free_port, start, stop

MODULE = "servers.exports"
SERVER = "exports"
STORE = "export-store"


@dataclass
class Exports:
    pg: Server
    config: PerimeterConfig
    passwords: Passwords
    deployment: Deployment
    signing_key: str

    def credentials(self) -> dict[str, tuple[str, str]]:
        server = self.config.server(SERVER)
        return {
            tool.name: (role, self.passwords.for_role(role))
            for tool in server.tools
            for role in [tool_role(server, tool)]
        }

    def files(self, root: Path) -> ServerFiles:
        files = ServerFiles(root, self.deployment)
        files.write(self.credentials(), {STORE: self.signing_key})
        return files

    def env(self, files: ServerFiles, port: int) -> dict[str, str]:
        return files.environment(self.pg.port, port)

    @contextmanager
    def serve(
        self, prepare: Callable[[ServerFiles], None] | None = None
    ) -> Iterator[RunningServer]:
        """The server on its own files (`prepare` may change them first), stopped by PID."""
        root = Path(tempfile.mkdtemp(prefix="agent-perimeter-exports-"))
        try:
            files = self.files(root)
            if prepare is not None:
                prepare(files)
            port = free_port()
            server = start(MODULE, self.env(files, port), files, port)
            try:
                yield server
            finally:
                stop(server)
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def exports(pg: Server) -> Exports:
    pg.reset("support")
    config = load("dev")
    passwords = Passwords()
    apply(pg, config, "support", passwords)
    return Exports(pg, config, passwords, Deployment.of(config, SERVER), secrets.token_hex(32))


@pytest.fixture(scope="module")
def running(exports: Exports) -> Iterator[RunningServer]:
    with exports.serve() as server:
        yield server
