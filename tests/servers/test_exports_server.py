"""The walkthrough's export server, run as its pod runs it, through the real MCP client over TLS.

Its roles are the dev stack's, made by the real role script; every call below goes through
the bearer check, the schema, the tool's own pool and PostgreSQL's row-level security.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from mcp_types import CallToolResult

from servers.runtime.app import TENANT_META_KEY
from tests.servers.conftest import SERVER, Exports
from tests.servers.harness import RunningServer, run

pytestmark = pytest.mark.postgres

ACME, GLOBEX = "acme", "globex"
ACME_CUSTOMER, ACME_OTHER, GLOBEX_CUSTOMER = (
    "cus_AAAAAAAAAAA1",
    "cus_AAAAAAAAAAA2",
    "cus_GGGGGGGGGGG1",
)
ACME_FAILED, ACME_DONE, GLOBEX_FAILED = "exp_A00000000002", "exp_A00000000001", "exp_G00000000001"


def call(
    running: RunningServer, tool: str, arguments: dict[str, Any], tenant: str | None = ACME
) -> CallToolResult:
    async def go() -> CallToolResult:
        async with running.client() as client:
            meta = {TENANT_META_KEY: tenant} if tenant else None
            return await client.call_tool(tool, arguments, meta=meta)  # type: ignore[arg-type]

    return run(go())


def answer(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)  # type: ignore[union-attr]


def error(result: CallToolResult) -> str:
    assert result.is_error, result.content
    return result.content[0].text  # type: ignore[union-attr]


def test_advertised_tools_are_the_granted_and_allowlisted_tools(
    exports: Exports, running: RunningServer
) -> None:
    async def go() -> list[Any]:
        async with running.client() as client:
            return list((await client.list_tools()).tools)

    advertised = {t.name: t for t in run(go())}
    granted = [t.name for t in exports.config.server(SERVER).tools]
    allowlisted = {
        tool
        for agent in exports.config.agents
        for use in agent.mcp_servers
        if use.server == SERVER
        for tool in (use.tools or granted)
    }
    assert sorted(advertised) == sorted(granted) == sorted(allowlisted)
    for tool in advertised.values():
        patterns = {p["pattern"] for p in tool.input_schema["properties"].values()}
        assert patterns <= {"^cus_[A-Za-z0-9]{12}$", "^exp_[A-Za-z0-9]{12}$"}
        assert "customer_id" in tool.input_schema["required"]
    assert advertised["get_latest_export_job"].annotations.read_only_hint is True
    assert advertised["retry_export_job"].annotations.read_only_hint is False


def test_latest_job_of_the_callers_tenant(running: RunningServer) -> None:
    job = answer(call(running, "get_latest_export_job", {"customer_id": ACME_CUSTOMER}))["job"]
    assert (job["id"], job["status"], job["failure"]) == (
        ACME_FAILED,
        "failed",
        "warehouse timeout",
    )
    queued = answer(call(running, "get_latest_export_job", {"customer_id": ACME_OTHER}))
    assert queued["job"]["status"] == "queued"


def test_tenant_a_never_sees_tenant_b(running: RunningServer) -> None:
    assert answer(
        call(running, "get_latest_export_job", {"customer_id": GLOBEX_CUSTOMER}, tenant=ACME)
    ) == {"found": False, "customer_id": GLOBEX_CUSTOMER}
    seen = answer(call(running, "get_latest_export_job", {"customer_id": GLOBEX_CUSTOMER}, GLOBEX))
    assert seen["job"]["id"] == GLOBEX_FAILED
    link = answer(
        call(
            running,
            "get_export_download_url",
            {"customer_id": ACME_CUSTOMER, "job_id": ACME_DONE},
            GLOBEX,
        )
    )
    assert link["url"] is None
    retry = answer(
        call(
            running,
            "retry_export_job",
            {"customer_id": GLOBEX_CUSTOMER, "job_id": GLOBEX_FAILED},
            ACME,
        )
    )
    assert retry["queued"] is False


def test_a_call_without_a_tenant_is_refused(running: RunningServer) -> None:
    for tool, arguments in [
        ("get_latest_export_job", {"customer_id": ACME_CUSTOMER}),
        ("retry_export_job", {"customer_id": ACME_CUSTOMER, "job_id": ACME_FAILED}),
    ]:
        assert TENANT_META_KEY in error(call(running, tool, arguments, tenant=None))


def test_a_retry_twice_queues_one_job(exports: Exports, running: RunningServer) -> None:
    arguments = {"customer_id": GLOBEX_CUSTOMER, "job_id": GLOBEX_FAILED}
    first = answer(call(running, "retry_export_job", arguments, GLOBEX))
    second = answer(call(running, "retry_export_job", arguments, GLOBEX))
    assert first == {"queued": True, "job_id": GLOBEX_FAILED, "attempt": 2}
    assert second["queued"] is False and "already queued" in second["reason"]
    rows = exports.pg.superuser(
        "SELECT tenant_id, job_id, attempt FROM exports.retry_queue", db="support"
    ).rows
    assert rows == [f"globex|{GLOBEX_FAILED}|2"]
    done = answer(
        call(running, "retry_export_job", {"customer_id": ACME_CUSTOMER, "job_id": ACME_DONE})
    )
    assert done == {"queued": False, "reason": f"job {ACME_DONE} is completed, not failed"}


def test_download_link_is_signed_with_the_store_key(
    exports: Exports, running: RunningServer
) -> None:
    link = answer(
        call(
            running, "get_export_download_url", {"customer_id": ACME_CUSTOMER, "job_id": ACME_DONE}
        )
    )
    url = urlparse(link["url"])
    store = exports.config.server(SERVER).backend("export-store")
    assert (url.scheme, url.hostname, url.port) == ("https", store.host, 443)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    expected = hmac.new(
        exports.signing_key.encode(),
        f"GET\n{url.path}\n{query['expires']}".encode(),
        hashlib.sha256,
    ).hexdigest()
    assert hmac.compare_digest(query["signature"], expected)
    failed = answer(
        call(
            running,
            "get_export_download_url",
            {"customer_id": ACME_CUSTOMER, "job_id": ACME_FAILED},
        )
    )
    assert failed["url"] is None and "not completed" in failed["reason"]


INJECTIONS = [
    "cus_AAAAAAAAAAA1' OR '1'='1",
    "cus_AAAAAAAAAAA1;DROP TABLE x",
    "cus_AAAAAAAAAA'",
    "CUS_AAAAAAAAAAA1",
]


@pytest.mark.parametrize("customer_id", INJECTIONS)
def test_inputs_outside_the_pattern_are_refused(running: RunningServer, customer_id: str) -> None:
    """Before any SQL: the same refusal comes while the database is down
    (test_outage.py), so no query was needed to give it."""
    assert refused_by_schema(
        error(call(running, "get_latest_export_job", {"customer_id": customer_id}))
    )


def refused_by_schema(message: str) -> bool:
    return "customer_id" in message and ("pattern" in message or "characters" in message)


def test_no_secret_reaches_the_log(exports: Exports, running: RunningServer) -> None:
    call(running, "get_latest_export_job", {"customer_id": ACME_CUSTOMER})
    log = running.output()
    assert "bearer tokens loaded" in log
    for secret in [running.files.token, exports.signing_key, *exports.passwords.values()]:
        assert secret not in log
