"""Applying the script again, after the config or the database changed, on a real server."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from infra.pure.config import PerimeterConfig, load
from tests.database.conftest import (
    ADMIN,
    EXPORTS_ROLES,
    Passwords,
    Server,
    admin,
    apply,
    clean_env,
    dev_raw,
    make_config,
    snapshot,
)

pytestmark = pytest.mark.postgres

GET = "mcp_tickets_get_ticket"
EXPORT = "mcp_tickets_export_ticket"
LOOKUP = "mcp_inventory_lookup_stock"
RETRY = "mcp_inventory_retry_shipment"
DENIED = "42501"
ACME = "SET agent_perimeter.tenant = 'acme'"


def roles(pg: Server) -> list[str]:
    return pg.superuser(
        "SELECT rolname || '|' || rolcanlogin FROM pg_roles WHERE rolname LIKE 'mcp\\_%' ORDER BY 1"
    ).rows


def held_in(pg: Server, db: str, *role_names: str) -> int:
    """How many privileges or ownerships the roles have in one database (pg_shdepend)."""
    names = ", ".join(f"'{r}'" for r in role_names)
    return int(
        pg.superuser(
            "SELECT count(*) FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid "
            f"JOIN pg_roles r ON r.oid = s.refobjid WHERE d.datname = '{db}' AND r.rolname IN ({names})"
        ).rows[0]
    )


def test_reapplying_changes_nothing(fresh: Server) -> None:
    passwords = Passwords()
    apply(fresh, load("dev"), "support", passwords)
    before = snapshot(fresh)
    second = apply(fresh, load("dev"), "support", passwords)
    assert snapshot(fresh) == before
    assert "dropped role" not in second.stderr


def test_drift_is_repaired_back_to_the_declaration(fresh: Server) -> None:
    passwords = Passwords()
    apply(fresh, load("dev"), "support", passwords)
    declared = snapshot(fresh)
    admin(
        fresh,
        f"GRANT USAGE, CREATE ON SCHEMA inventory TO {GET}",
        f"GRANT SELECT ON inventory.items TO {GET}",
        f"GRANT {ADMIN} TO {GET}",
        f"GRANT UPDATE, DELETE, SELECT ON support.export_queue TO {EXPORT}",
        f"GRANT SELECT (cost_price) ON inventory.items TO {LOOKUP}",
        f"GRANT INSERT ON inventory.retry_queue TO {RETRY} WITH GRANT OPTION",
        f"GRANT CREATE, TEMPORARY ON DATABASE support TO {RETRY}",
        f"ALTER ROLE {EXPORT} CREATEDB INHERIT CONNECTION LIMIT 99 VALID UNTIL '2001-01-01'",
        f"ALTER ROLE {EXPORT} SET statement_timeout = 0",
        f"ALTER ROLE {EXPORT} IN DATABASE support SET statement_timeout = 0",
        f"DROP POLICY {GET} ON support.tickets",
        f"CREATE POLICY {GET} ON support.tickets TO {GET} USING (true)",
        f"CREATE POLICY {LOOKUP} ON support.tickets TO {LOOKUP} USING (true)",
    )
    # The drift is real before the repair...
    assert fresh.connect(GET, passwords[GET], "SELECT count(*) FROM inventory.items").rows == ["3"]
    assert fresh.connect(GET, passwords[GET], "SELECT count(*) FROM support.tickets").rows == ["5"]
    assert fresh.connect(
        LOOKUP, passwords[LOOKUP], "SELECT sum(cost_price) FROM inventory.items"
    ).ok
    assert snapshot(fresh) != declared

    apply(fresh, load("dev"), "support", passwords)

    assert snapshot(fresh) == declared
    assert fresh.connect(GET, passwords[GET], "SELECT 1 FROM inventory.items").sqlstate == DENIED
    assert fresh.connect(GET, passwords[GET], "SELECT count(*) FROM support.tickets").rows == ["0"]
    assert fresh.connect(GET, passwords[GET], f"SET ROLE {ADMIN}").sqlstate == DENIED
    assert (
        fresh.connect(EXPORT, passwords[EXPORT], "DELETE FROM support.export_queue").sqlstate
        == DENIED
    )
    assert fresh.connect(EXPORT, passwords[EXPORT], "SHOW statement_timeout").rows == ["15s"]
    assert fresh.connect(LOOKUP, passwords[LOOKUP], "SELECT cost_price FROM inventory.items").sqlstate == DENIED  # fmt: skip


def test_a_superuser_attribute_stops_the_run_when_the_admin_cannot_repair_it(
    fresh: Server,
) -> None:
    passwords = Passwords()
    apply(fresh, load("dev"), "support", passwords)
    fresh.superuser(f"ALTER ROLE {GET} BYPASSRLS")
    before = snapshot(fresh)
    result = apply(fresh, load("dev"), "support", passwords, check=False)
    assert result.returncode == 3, result.stderr
    assert "must be superuser" in result.stderr
    assert snapshot(fresh) == before, "a failed run must leave nothing half-applied"


def test_undeclared_access_the_admin_cannot_revoke_stops_the_run(fresh: Server) -> None:
    passwords = Passwords()
    apply(fresh, load("dev"), "support", passwords)
    fresh.superuser(
        "CREATE FUNCTION public.leak() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "REVOKE EXECUTE ON FUNCTION public.leak() FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION public.leak() TO {LOOKUP}",
        db="support",
    )
    result = apply(fresh, load("dev"), "support", passwords, check=False)
    assert result.returncode == 3
    assert "undeclared access remains" in result.stderr
    assert f"{LOOKUP} holds privileges on function public.leak()" in result.stderr


def test_a_removed_grant_is_revoked(fresh: Server) -> None:
    passwords = Passwords()
    apply(fresh, load("dev"), "support", passwords)
    assert fresh.connect(LOOKUP, passwords[LOOKUP], "SELECT quantity FROM inventory.items").ok
    raw = dev_raw()
    raw["mcp_servers"][2]["tools"][0]["grants"][0]["columns"] = ["sku", "name"]
    raw["mcp_servers"][1]["tools"][1]["grants"] = [
        {
            "table": "support.export_queue",
            "privileges": ["INSERT"],
            "columns": ["tenant_id", "ticket_id"],
        }
    ]
    apply(fresh, make_config(raw), "support", passwords)
    quantity = fresh.connect(LOOKUP, passwords[LOOKUP], "SELECT quantity FROM inventory.items")
    assert quantity.sqlstate == DENIED
    assert fresh.connect(LOOKUP, passwords[LOOKUP], "SELECT sku, name FROM inventory.items").ok
    insert = "INSERT INTO support.export_queue (tenant_id, ticket_id, requested_at) VALUES ('acme', 1, now())"
    assert fresh.connect(EXPORT, passwords[EXPORT], insert).sqlstate == DENIED
    assert fresh.connect(
        EXPORT,
        passwords[EXPORT],
        "INSERT INTO support.export_queue (tenant_id, ticket_id) VALUES ('acme', 1)",
    ).ok


def test_a_removed_tool_loses_its_role(fresh: Server) -> None:
    passwords = Passwords()
    apply(fresh, load("dev"), "support", passwords)
    assert fresh.connect(RETRY, passwords[RETRY], "SELECT 1").ok
    raw = dev_raw()
    del raw["mcp_servers"][2]["tools"][1]  # retry_shipment
    result = apply(fresh, make_config(raw), "support", passwords)
    assert f"dropped role {RETRY}" in result.stderr
    assert RETRY not in "".join(roles(fresh))
    gone = fresh.connect(RETRY, passwords[RETRY], "SELECT 1")
    assert "password authentication failed" in gone.stderr
    assert fresh.connect(LOOKUP, passwords[LOOKUP], "SELECT sku FROM inventory.items").ok


def test_a_removed_tool_role_that_something_depends_on_is_kept_without_login(
    fresh: Server,
) -> None:
    passwords = Passwords()
    apply(fresh, load("dev"), "support", passwords)
    fresh.superuser(f"CREATE DATABASE elsewhere OWNER {ADMIN}")
    admin(fresh, f"GRANT CONNECT ON DATABASE elsewhere TO {RETRY}", db="elsewhere")
    raw = dev_raw()
    del raw["mcp_servers"][2]["tools"][1]
    result = apply(fresh, make_config(raw), "support", passwords)
    assert f"role {RETRY} of a removed tool is NOLOGIN" in result.stderr
    assert f"{RETRY}|false" in roles(fresh)
    assert fresh.superuser(
        f"SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = '{RETRY}'"
    ).rows == ["t"]
    assert held_in(fresh, "support", RETRY) == 0
    # Reapplying once the dependency is gone finishes the job.
    admin(fresh, f"REVOKE CONNECT ON DATABASE elsewhere FROM {RETRY}", db="elsewhere")
    again = apply(fresh, make_config(raw), "support", passwords)
    assert f"dropped role {RETRY}" in again.stderr


def test_rotating_one_password_leaves_the_other_tools_alone(fresh: Server) -> None:
    passwords = Passwords()
    apply(fresh, load("dev"), "support", passwords)
    # A session of another tool stays open across the rotation.
    session = subprocess.Popen(
        [str(fresh.bin / "psql"), "--no-psqlrc", "-q", "-At"],
        env=clean_env(
            {
                "PGHOST": "127.0.0.1",
                "PGPORT": str(fresh.port),
                "PGUSER": LOOKUP,
                "PGPASSWORD": passwords[LOOKUP],
                "PGDATABASE": "support",
            }
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert session.stdin is not None and session.stdout is not None
        session.stdin.write(
            "SELECT 'before ' || count(*) FROM inventory.items WHERE quantity > 0;\n"
        )
        session.stdin.flush()
        assert session.stdout.readline().strip() == "before 2"

        old = passwords[GET]
        new = passwords.rotate(GET)
        apply(fresh, load("dev"), "support", passwords)

        assert "password authentication failed" in fresh.connect(GET, old, "SELECT 1").stderr
        assert fresh.connect(GET, new, ACME, "SELECT count(*) FROM support.tickets").rows == ["3"]
        for role in (EXPORT, LOOKUP, RETRY):
            assert fresh.connect(role, passwords[role], "SELECT current_user").rows == [role]
        session.stdin.write(
            "SELECT 'after ' || count(*) FROM inventory.items WHERE quantity > 0;\n"
        )
        session.stdin.flush()
        assert session.stdout.readline().strip() == "after 2"
    finally:
        session.communicate(timeout=10)


def test_a_missing_verifier_stops_the_run_before_anything_changes(fresh: Server) -> None:
    before = snapshot(fresh)
    result = apply(
        fresh, load("dev"), "support", Passwords(), omit_env=("VERIFIER_MCP_INVENTORY_LOOKUP_STOCK",),
        check=False,
    )  # fmt: skip
    assert result.returncode == 3
    assert "VERIFIER_MCP_INVENTORY_LOOKUP_STOCK (SCRAM verifier of role mcp_inventory_lookup_stock) is not set" in result.stderr  # fmt: skip
    assert snapshot(fresh) == before


def test_a_plain_password_in_place_of_a_verifier_is_refused(fresh: Server) -> None:
    before = snapshot(fresh)
    result = apply(
        fresh, load("dev"), "support", Passwords(),
        env_override={"VERIFIER_MCP_TICKETS_GET_TICKET": "hunter2-plain-password"}, check=False,
    )  # fmt: skip
    assert result.returncode == 3
    assert "does not hold a SCRAM-SHA-256 verifier" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert snapshot(fresh) == before


def test_a_role_this_environment_did_not_create_is_never_taken_over(fresh: Server) -> None:
    admin(fresh, f"CREATE ROLE {EXPORT} LOGIN PASSWORD 'someone-elses'")
    result = apply(fresh, load("dev"), "support", Passwords(), check=False)
    assert result.returncode == 3
    assert f"role {EXPORT} already exists and is not managed by environment dev" in result.stderr
    assert fresh.connect(EXPORT, "someone-elses", "SELECT 1").ok
    assert roles(fresh) == [f"{EXPORT}|true"]


def test_another_environment_on_the_same_server_cannot_claim_the_roles(fresh: Server) -> None:
    apply(fresh, load("dev"), "support", Passwords())
    raw = dev_raw()
    raw["environment"] = "qa"
    raw["namespace"] = "agent-perimeter-qa"
    result = apply(fresh, make_config(raw), "support", Passwords(), check=False)
    assert result.returncode == 3
    assert "is not managed by environment qa" in result.stderr


def test_the_script_refuses_another_database(fresh: Server) -> None:
    result = apply(fresh, load("dev"), "support", Passwords(), connect_to="postgres", check=False)
    assert result.returncode == 3
    assert "this script is for database support, not postgres" in result.stderr


def test_the_script_refuses_to_run_outside_one_transaction(fresh: Server) -> None:
    before = snapshot(fresh)
    result = apply(
        fresh, load("dev"), "support", Passwords(), single_transaction=False, check=False
    )
    assert result.returncode != 0
    assert "run this script in one transaction" in result.stderr
    assert snapshot(fresh) == before


def test_a_statement_timeout_in_minutes_is_applied(fresh: Server) -> None:
    raw = dev_raw()
    raw["databases"]["support"]["statement_timeout"] = "2m"
    raw["databases"]["support"]["connection_limit"] = 3
    passwords = Passwords()
    apply(fresh, make_config(raw), "support", passwords)
    assert fresh.connect(GET, passwords[GET], "SHOW statement_timeout").rows == ["2min"]
    limit = fresh.superuser(f"SELECT rolconnlimit FROM pg_roles WHERE rolname = '{GET}'")
    assert limit.rows == ["3"]


# --- extra shapes of tools -----------------------------------------------------------------


def _tools_config(tools: list[dict[str, Any]]) -> PerimeterConfig:
    raw = dev_raw()
    raw["mcp_servers"] = [raw["mcp_servers"][1]]
    raw["mcp_servers"][0]["tools"] = tools
    return make_config(raw)


TENANT_TOOLS = [
    {
        "name": "close_ticket",
        "access": "write",
        "tenant_column": "tenant_id",
        "grants": [
            {
                "table": "support.tickets",
                "privileges": ["SELECT"],
                "columns": ["id", "tenant_id", "status"],
            },
            {"table": "support.tickets", "privileges": ["UPDATE"], "columns": ["status"]},
        ],
    },
    {
        "name": "export_ticket",
        "access": "write",
        "tenant_column": "tenant_id",
        "grants": [{"table": "support.export_queue", "privileges": ["INSERT"]}],
    },
    {
        "name": "purge_exports",
        "access": "write",
        "grants": [
            {"table": "support.export_queue", "privileges": ["SELECT", "DELETE"], "columns": None},
        ],
    },
    {
        "name": "count_tickets",
        "access": "read",
        "grants": [{"table": "support.tickets", "privileges": ["SELECT"], "columns": ["status"]}],
    },
]
CLOSE = "mcp_tickets_close_ticket"
EXPORT_T = "mcp_tickets_export_ticket"
PURGE = "mcp_tickets_purge_exports"
COUNT = "mcp_tickets_count_tickets"


def test_tenant_scoped_writes_and_whole_table_readers(fresh: Server) -> None:
    passwords = Passwords()
    config = _tools_config(TENANT_TOOLS)
    apply(fresh, config, "support", passwords)

    def run(role: str, *statements: str) -> Any:
        return fresh.connect(role, passwords[role], *statements)

    # UPDATE of one column, only on the caller's tenant.
    assert run(CLOSE, ACME, "UPDATE support.tickets SET status = 'closed' WHERE id = 1").ok
    foreign = run(
        CLOSE, ACME, "UPDATE support.tickets SET status = 'closed' WHERE id = 4 RETURNING id"
    )
    assert foreign.ok and foreign.rows == []
    assert (
        run(CLOSE, ACME, "UPDATE support.tickets SET subject = 'x' WHERE id = 1").sqlstate == DENIED
    )
    assert run(CLOSE, ACME, "SELECT subject FROM support.tickets").sqlstate == DENIED
    assert run(CLOSE, ACME, "DELETE FROM support.tickets WHERE id = 1").sqlstate == DENIED
    # INSERT with a tenant policy: only rows of the caller's tenant go in.
    assert run(EXPORT_T, ACME, "INSERT INTO support.export_queue (tenant_id, ticket_id) VALUES ('acme', 1)").ok  # fmt: skip
    wrong = run(EXPORT_T, ACME, "INSERT INTO support.export_queue (tenant_id, ticket_id) VALUES ('globex', 4)")  # fmt: skip
    assert wrong.sqlstate == DENIED and "row-level security" in wrong.stderr
    # A tool without tenant_column on a table that now has RLS keeps its whole-table scope.
    assert run(PURGE, "SELECT count(*) FROM support.export_queue").rows == ["2"]
    assert run(PURGE, "DELETE FROM support.export_queue WHERE tenant_id = 'globex' RETURNING tenant_id").rows == ["globex"]  # fmt: skip
    assert run(PURGE, "INSERT INTO support.export_queue (tenant_id, ticket_id) VALUES ('a', 1)").sqlstate == DENIED  # fmt: skip
    assert run(COUNT, "SELECT status, count(*) FROM support.tickets GROUP BY 1 ORDER BY 1").rows == ["closed|1", "open|4"]  # fmt: skip
    assert run(COUNT, "SELECT tenant_id FROM support.tickets").sqlstate == DENIED
    # Applying again converges to the same catalog.
    before = snapshot(fresh)
    apply(fresh, config, "support", passwords)
    assert snapshot(fresh) == before


def test_dropping_tenant_scope_replaces_the_policy(fresh: Server) -> None:
    passwords = Passwords()
    apply(fresh, _tools_config(TENANT_TOOLS), "support", passwords)
    unscoped = [dict(t) for t in TENANT_TOOLS[:1]]
    unscoped[0]["tenant_column"] = None
    apply(fresh, _tools_config(unscoped), "support", passwords)
    assert fresh.connect(CLOSE, passwords[CLOSE], "SELECT count(*) FROM support.tickets").rows == [
        "5"
    ]
    policies = fresh.superuser("SELECT tablename, policyname, qual FROM pg_policies", db="support")
    assert policies.rows == [f"tickets|{CLOSE}|true"]
    assert f"{PURGE}" not in "".join(roles(fresh))


def test_two_databases_on_one_server_keep_their_own_roles(fresh: Server) -> None:
    fresh.reset("support", "billing")
    raw: dict[str, Any] = dev_raw()
    raw["databases"]["billing"] = dict(raw["databases"]["support"])
    raw["mcp_servers"][2]["database"] = "billing"  # inventory tools now live in billing
    passwords = Passwords()
    config = make_config(raw)
    apply(fresh, config, "support", passwords)
    apply(fresh, config, "billing", passwords)
    assert fresh.connect(LOOKUP, passwords[LOOKUP], "SELECT count(*) FROM inventory.items", db="billing").rows == ["3"]  # fmt: skip
    assert fresh.connect(GET, passwords[GET], ACME, "SELECT count(*) FROM support.tickets").rows == ["3"]  # fmt: skip
    support_before = snapshot(fresh, "support")
    # Re-applying one database leaves the other's roles alone.
    apply(fresh, config, "support", passwords)
    assert fresh.connect(LOOKUP, passwords[LOOKUP], "SELECT count(*) FROM inventory.items", db="billing").ok  # fmt: skip
    assert snapshot(fresh, "support") == support_before
    # Removing billing's server retires only its roles, when billing is applied.
    del raw["mcp_servers"][2]
    apply(fresh, make_config(raw), "billing", passwords)
    assert roles(fresh) == sorted(
        [f"{EXPORT}|true", f"{GET}|true", *(f"{r}|true" for r in EXPORTS_ROLES)]
    )


def test_a_server_moving_to_another_database_on_the_same_server(fresh: Server) -> None:
    """The new database's run adopts the roles (same environment); the old database's
    run then revokes what they still hold there, without retiring them."""
    fresh.reset("support", "billing")
    raw: dict[str, Any] = dev_raw()
    raw["databases"]["billing"] = dict(raw["databases"]["support"])
    passwords = Passwords()
    apply(fresh, make_config(raw), "support", passwords)
    raw["mcp_servers"][2]["database"] = "billing"
    moved = make_config(raw)
    apply(fresh, moved, "billing", passwords)
    apply(fresh, moved, "support", passwords)
    items = "SELECT count(*) FROM inventory.items"
    assert fresh.connect(LOOKUP, passwords[LOOKUP], "SELECT sku FROM inventory.items", db="billing").ok  # fmt: skip
    assert fresh.connect(LOOKUP, passwords[LOOKUP], "SELECT sku FROM inventory.items").sqlstate == DENIED  # fmt: skip
    assert fresh.connect(RETRY, passwords[RETRY], items, db="billing").sqlstate == DENIED
    assert held_in(fresh, "support", LOOKUP, RETRY) == 0
    assert held_in(fresh, "billing", LOOKUP, RETRY) > 0
    connect = fresh.superuser(
        "SELECT d.datname || '|' || a.grantee::regrole FROM pg_database d, aclexplode(d.datacl) a "
        f"WHERE a.grantee::regrole::text IN ('{LOOKUP}', '{RETRY}') ORDER BY 1"
    )
    assert connect.rows == [f"billing|{LOOKUP}", f"billing|{RETRY}"]
    assert roles(fresh) == sorted(f"{r}|true" for r in (GET, EXPORT, LOOKUP, RETRY, *EXPORTS_ROLES))
    marker = fresh.superuser(f"SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = '{LOOKUP}'")  # fmt: skip
    assert marker.rows == ["agent-perimeter:environment=dev;database=billing"]
