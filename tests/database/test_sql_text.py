"""The role script as text, the Job's command and environment, and what never reaches SQL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from infra.pure.config import ConfigError, PerimeterConfig, load, parse_perimeter
from infra.pure.database.job import (
    ROLE_SQL_KEY,
    SQL_MOUNT_PATH,
    connection_env,
    psql_command,
    sql_checksum,
)
from infra.pure.database.scram import scram_sha256_verifier
from infra.pure.database.sql import RoleSpec, UnsafeIdentifier, role_sql, roles_for
from tests.database.conftest import dev_raw

GRANT = re.compile(
    r"^GRANT (?P<what>.+) ON (?P<kind>TABLE|SCHEMA|DATABASE) (?P<on>\S+) TO (?P<to>\S+);$"
)


def _grants(sql: str) -> set[tuple[str, str, str, str]]:
    found = set()
    for line in sql.splitlines():
        if line.startswith("GRANT"):
            match = GRANT.match(line)
            assert match, f"unexpected GRANT form: {line}"
            found.add((match["to"], match["what"], match["kind"], match["on"]))
    return found


def test_dev_grants_exactly_what_the_config_declares() -> None:
    sql = role_sql(load("dev"), "support")
    db = ("CONNECT", "DATABASE", '"support"')
    jobs, queue = '"exports"."jobs"', '"exports"."retry_queue"'
    assert _grants(sql) == {
        ('"mcp_exports_get_latest_export_job"', *db),
        ('"mcp_exports_get_latest_export_job"', "USAGE", "SCHEMA", '"exports"'),
        ('"mcp_exports_get_latest_export_job"', 'SELECT ("id", "tenant_id", "customer_id", "status", "attempt", "created_at", "finished_at", "failure")', "TABLE", jobs),
        ('"mcp_exports_retry_export_job"', *db),
        ('"mcp_exports_retry_export_job"', "USAGE", "SCHEMA", '"exports"'),
        ('"mcp_exports_retry_export_job"', 'SELECT ("id", "tenant_id", "customer_id", "status", "attempt")', "TABLE", jobs),
        ('"mcp_exports_retry_export_job"', 'INSERT ("tenant_id", "job_id", "attempt")', "TABLE", queue),
        ('"mcp_exports_get_export_download_url"', *db),
        ('"mcp_exports_get_export_download_url"', "USAGE", "SCHEMA", '"exports"'),
        ('"mcp_exports_get_export_download_url"', 'SELECT ("id", "tenant_id", "customer_id", "status", "object_key")', "TABLE", jobs),
        ('"mcp_tickets_get_ticket"', *db),
        ('"mcp_tickets_get_ticket"', "USAGE", "SCHEMA", '"support"'),
        ('"mcp_tickets_get_ticket"', "SELECT", "TABLE", '"support"."tickets"'),
        ('"mcp_tickets_export_ticket"', *db),
        ('"mcp_tickets_export_ticket"', "USAGE", "SCHEMA", '"support"'),
        ('"mcp_tickets_export_ticket"', "INSERT", "TABLE", '"support"."export_queue"'),
        ('"mcp_inventory_lookup_stock"', *db),
        ('"mcp_inventory_lookup_stock"', "USAGE", "SCHEMA", '"inventory"'),
        ('"mcp_inventory_lookup_stock"', 'SELECT ("sku", "name", "quantity")', "TABLE", '"inventory"."items"'),
        ('"mcp_inventory_retry_shipment"', *db),
        ('"mcp_inventory_retry_shipment"', "USAGE", "SCHEMA", '"inventory"'),
        ('"mcp_inventory_retry_shipment"', "INSERT", "TABLE", '"inventory"."retry_queue"'),
    }  # fmt: skip
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    assert "ALL PRIVILEGES" not in code.upper()
    assert not re.search(r"\bPUBLIC\b", code, re.IGNORECASE)


def test_sql_never_contains_a_password_or_verifier() -> None:
    config = load("dev")
    sql = role_sql(config, "support")
    for spec in roles_for(config, "support"):
        password = f"pw-{spec.role}-Secret1"
        verifier = scram_sha256_verifier(password, b"0123456789abcdef")
        stored_key = verifier.split("$")[2].split(":")[0]
        for secret in (password, verifier, stored_key):
            assert secret not in sql
        # Each role's password is bound from its own environment variable, nothing else.
        assert f"\\getenv ap_verifier_{spec.role} {spec.env_var}\n" in sql
        assert f"PASSWORD :'ap_verifier_{spec.role}';" in sql
    assert "SCRAM-SHA-256$4096" not in sql
    assert not re.search(r"PASSWORD\s+'", sql), "a password literal in the SQL"


def test_roles_for_names_role_server_tool_and_env_var() -> None:
    specs = roles_for(load("dev"), "support")
    assert [(s.role, s.server, s.tool, s.env_var, s.tenant_column) for s in specs] == [
        ("mcp_exports_get_latest_export_job", "exports", "get_latest_export_job", "VERIFIER_MCP_EXPORTS_GET_LATEST_EXPORT_JOB", "tenant_id"),
        ("mcp_exports_retry_export_job", "exports", "retry_export_job", "VERIFIER_MCP_EXPORTS_RETRY_EXPORT_JOB", "tenant_id"),
        ("mcp_exports_get_export_download_url", "exports", "get_export_download_url", "VERIFIER_MCP_EXPORTS_GET_EXPORT_DOWNLOAD_URL", "tenant_id"),
        ("mcp_tickets_get_ticket", "tickets", "get_ticket", "VERIFIER_MCP_TICKETS_GET_TICKET", "tenant_id"),
        ("mcp_tickets_export_ticket", "tickets", "export_ticket", "VERIFIER_MCP_TICKETS_EXPORT_TICKET", None),
        ("mcp_inventory_lookup_stock", "inventory", "lookup_stock", "VERIFIER_MCP_INVENTORY_LOOKUP_STOCK", None),
        ("mcp_inventory_retry_shipment", "inventory", "retry_shipment", "VERIFIER_MCP_INVENTORY_RETRY_SHIPMENT", None),
    ]  # fmt: skip
    assert isinstance(specs[5], RoleSpec)
    assert [g.table for g in specs[5].grants] == ["inventory.items"]
    assert specs[5].grants[0].columns == ["sku", "name", "quantity"]


def test_unknown_database_is_refused() -> None:
    with pytest.raises(KeyError, match="billing"):
        role_sql(load("dev"), "billing")


def test_script_is_deterministic_and_checksum_follows_content() -> None:
    first = role_sql(load("dev"), "support")
    assert role_sql(load("dev"), "support") == first
    assert sql_checksum(first) == sql_checksum(first)
    raw = dev_raw()
    raw["mcp_servers"][2]["tools"][0]["grants"][0]["columns"] = ["sku", "name"]
    changed = role_sql(PerimeterConfig.model_validate(raw), "support")
    assert sql_checksum(changed) != sql_checksum(first)
    assert re.fullmatch(r"[0-9a-f]{64}", sql_checksum(first))


@pytest.mark.parametrize(
    ("timeout", "rendered"),
    [("15s", "'15s'"), ("500ms", "'500ms'"), ("5m", "'5min'"), ("1h", "'1h'")],
)
def test_statement_timeout_is_written_in_postgres_units(timeout: str, rendered: str) -> None:
    raw = dev_raw()
    raw["databases"]["support"]["statement_timeout"] = timeout
    sql = role_sql(PerimeterConfig.model_validate(raw), "support")
    assert f"SET statement_timeout = {rendered};" in sql


# --- hostile names -----------------------------------------------------------------------------

HOSTILE = [
    'tick"ets',  # a quote to break out of an identifier
    "tickets;drop_role",  # a statement separator
    "tick\u0435ts",  # U+0435 CYRILLIC SMALL LETTER IE, looks like a Latin e
    "tickets\u0430",  # U+0430 CYRILLIC SMALL LETTER A
    "get ticket",  # a space
    "Tickets",  # uppercase: would need quoting and differ from the unquoted name
    "tickets'--",  # a literal quote and a comment
]


def _set(raw: dict[str, Any], field: str, value: str) -> tuple[str | int, ...]:
    """Put `value` into one name field of the first tool; return that field's location."""
    server = raw["mcp_servers"][1]
    tool = server["tools"][0]
    here: tuple[str | int, ...] = ("mcp_servers", 1, "tools", 0)
    if field == "server":
        server["name"] = value
        return ("mcp_servers", 1, "name")
    if field == "tool":
        tool["name"] = value
        return (*here, "name")
    if field in ("table", "schema"):
        tool["grants"][0]["table"] = f"support.{value}" if field == "table" else f"{value}.tickets"
        return (*here, "grants", 0, "table")
    if field == "column":
        tool["grants"][0]["columns"] = ["id", value]
        return (*here, "grants", 0, "columns", 1)
    if field == "tenant_column":
        tool["tenant_column"] = value
        return (*here, "tenant_column")
    raise AssertionError(field)


def _dotted(loc: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


@pytest.mark.parametrize("field", ["server", "tool", "table", "schema", "column", "tenant_column"])
@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v) for v in HOSTILE])
def test_hostile_names_are_rejected_by_config_validation(field: str, value: str) -> None:
    raw = dev_raw()
    loc = _set(raw, field, value)
    with pytest.raises(ValidationError) as caught:
        PerimeterConfig.model_validate(raw)
    assert [e["loc"] for e in caught.value.errors()] == [loc]
    # Loading a stack file reports the same field, written the way users write it.
    with pytest.raises(ConfigError) as config_error:
        parse_perimeter(raw, "Pulumi.dev.yaml")
    assert [path for path, _ in config_error.value.problems] == [_dotted(loc)]


def _bypassing_validation(config: PerimeterConfig, field: str, value: str) -> PerimeterConfig:
    """The config with one name replaced without validation (`model_copy` does not
    validate): what the SQL layer must still refuse if a check upstream ever slips."""
    server = config.mcp_servers[0]
    tool = server.tools[0]
    grant = tool.grants[0]
    if field == "server":
        server = server.model_copy(update={"name": value})
    elif field == "tool":
        tool = tool.model_copy(update={"name": value})
    elif field == "table":
        grant = grant.model_copy(update={"table": f"support.{value}"})
    elif field == "column":
        grant = grant.model_copy(update={"columns": ["id", value]})
    elif field == "tenant_column":
        tool = tool.model_copy(update={"tenant_column": value})
    tool = tool.model_copy(update={"grants": [grant, *tool.grants[1:]]})
    server = server.model_copy(update={"tools": [tool, *server.tools[1:]]})
    return config.model_copy(update={"mcp_servers": [server, *config.mcp_servers[1:]]})


@pytest.mark.parametrize("field", ["server", "tool", "table", "column", "tenant_column"])
@pytest.mark.parametrize("value", [*HOSTILE, "tickets\n"], ids=repr)
def test_the_sql_layer_refuses_unsafe_names_on_its_own(field: str, value: str) -> None:
    """Defence in depth: `re.match` with `$` (as in the config) accepts a trailing newline;
    the SQL layer re-checks every name with `fullmatch` before writing any SQL."""
    config = _bypassing_validation(load("dev"), field, value)
    with pytest.raises(UnsafeIdentifier, match="not a safe SQL identifier"):
        role_sql(config, "support")


def test_role_names_postgres_would_truncate_are_refused() -> None:
    config = _bypassing_validation(load("dev"), "server", "a" * 30)
    config = _bypassing_validation(config, "tool", "b" * 30)
    with pytest.raises(UnsafeIdentifier, match="longer than 63 bytes"):
        role_sql(config, "support")


# --- the Job ---------------------------------------------------------------------------------


def test_psql_command_stops_on_error_in_one_transaction_without_psqlrc() -> None:
    command = psql_command()
    assert command[0] == "psql"
    assert "--no-psqlrc" in command
    assert command[command.index("-v") + 1] == "ON_ERROR_STOP=1"
    assert "--single-transaction" in command
    assert command[command.index("-f") + 1] == f"{SQL_MOUNT_PATH}/{ROLE_SQL_KEY}"
    assert psql_command("/tmp/x.sql")[-1] == "/tmp/x.sql"


def test_connection_env_targets_the_named_database_as_admin_without_a_password() -> None:
    endpoint = load("dev").databases["support"]
    env = connection_env(endpoint, "support")
    assert env["PGHOST"] == "10.20.0.15"
    assert env["PGPORT"] == "5432"
    assert env["PGDATABASE"] == "support"
    assert env["PGUSER"] == "perimeter_admin"
    assert env["PGSSLMODE"] == "require"
    assert env["PGAPPNAME"]
    assert "PGPASSWORD" not in env
    assert all(isinstance(v, str) for v in env.values())
