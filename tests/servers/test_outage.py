"""The database stopped mid-run: a tool error naming what could not be checked, never a guess;
the server stays up, reports not-ready, and answers again once the database is back."""

from __future__ import annotations

import secrets
import time

import pytest

from infra.pure.config import load
from tests.database.conftest import Passwords, apply, running_pg
from tests.servers.conftest import SERVER, Exports
from tests.servers.harness import Deployment
from tests.servers.test_exports_server import (
    ACME_CUSTOMER,
    INJECTIONS,
    answer,
    call,
    error,
    refused_by_schema,
)

pytestmark = pytest.mark.postgres


def test_database_outage_gives_tool_errors_then_recovers() -> None:
    with running_pg() as own:  # this test stops its database: never the session's
        config = load("dev")
        passwords = Passwords()
        apply(own, config, "support", passwords)
        exports = Exports(
            own, config, passwords, Deployment.of(config, SERVER), secrets.token_hex(32)
        )
        with exports.serve() as running:
            files = running.files
            arguments = {"customer_id": ACME_CUSTOMER}
            assert answer(call(running, "get_latest_export_job", arguments))["found"] is True

            own.stop()
            for tool, args in [
                ("get_latest_export_job", arguments),
                ("retry_export_job", {**arguments, "job_id": "exp_A00000000002"}),
                ("get_export_download_url", {**arguments, "job_id": "exp_A00000000001"}),
            ]:
                message = error(call(running, tool, args))
                assert "could not check" in message and "database" in message, message
            # The schema's refusal needs no database: it came before any SQL.
            assert refused_by_schema(
                error(call(running, "get_latest_export_job", {"customer_id": INJECTIONS[0]}))
            )
            ready = running.get(files.deployment.readiness)
            assert ready.status_code == 503
            assert sorted(ready.json()["database_unreachable_for"]) == sorted(
                t.name for t in config.server(SERVER).tools
            )
            assert running.process.poll() is None

            own.start()
            deadline = time.monotonic() + 30
            while running.get(files.deployment.readiness).status_code != 200:
                assert time.monotonic() < deadline, (
                    "not ready again 30 s after the database came back"
                )
                time.sleep(0.5)
            assert answer(call(running, "get_latest_export_job", arguments))["found"] is True
            log = running.output()
            assert "tool get_latest_export_job: could not check" in log
            assert not any(p in log for p in passwords.values())
