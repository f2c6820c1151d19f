"""The dev environment's roles on a real server: each tool can do what it declares, nothing else.

Every probe logs in over TCP (scram-sha-256) as the tool's role with its own password.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from infra.pure.config import PerimeterConfig, load
from infra.pure.database.sql import roles_for
from tests.database.conftest import ANALYST, EXPORTS_ROLES, Passwords, Result, Server, apply

pytestmark = pytest.mark.postgres

GET = "mcp_tickets_get_ticket"
EXPORT = "mcp_tickets_export_ticket"
LOOKUP = "mcp_inventory_lookup_stock"
RETRY = "mcp_inventory_retry_shipment"
DENIED = "42501"  # insufficient_privilege
ACME = "SET agent_perimeter.tenant = 'acme'"


@dataclass
class Applied:
    pg: Server
    config: PerimeterConfig
    passwords: Passwords
    result: Result

    def run(self, role: str, *statements: str) -> Result:
        return self.pg.connect(role, self.passwords[role], *statements)


@pytest.fixture(scope="module")
def dev(pg: Server) -> Iterator[Applied]:
    pg.reset("support")
    config = load("dev")
    passwords = Passwords()
    yield Applied(pg, config, passwords, apply(pg, config, "support", passwords))


# (role, statements, rows expected) -- the declared operations.
ALLOWED = [
    (GET, [ACME, "SELECT subject FROM support.tickets ORDER BY id"],
     ["printer on fire", "invoice missing", "password reset"]),
    (GET, ["SET agent_perimeter.tenant = 'globex'", "SELECT count(*) FROM support.tickets"], ["2"]),
    (EXPORT, ["INSERT INTO support.export_queue (tenant_id, ticket_id) VALUES ('acme', 1)"], []),
    (LOOKUP, ["SELECT sku, name, quantity FROM inventory.items ORDER BY sku"],
     ["SKU-1|widget|12", "SKU-2|gadget|0", "SKU-3|gizmo|5"]),
    (RETRY, ["INSERT INTO inventory.retry_queue (shipment_id, reason) VALUES ('shp_9', 'x')"], []),
]  # fmt: skip


@pytest.mark.parametrize(("role", "statements", "rows"), ALLOWED, ids=lambda v: str(v)[:40])
def test_declared_operations_succeed(
    dev: Applied, role: str, statements: list[str], rows: list[str]
) -> None:
    result = dev.run(role, *statements)
    assert result.ok, result.stderr
    assert result.rows == rows


EVERYONE_DENIED = [
    "CREATE TABLE support.scratch (id int)",
    "CREATE TABLE inventory.scratch (id int)",
    "CREATE TABLE public.scratch (id int)",
    "CREATE SCHEMA scratch",
    "CREATE ROLE intruder",
    "SET ROLE perimeter_admin",
    f"SET ROLE {ANALYST}",
    "ALTER TABLE support.tickets DISABLE ROW LEVEL SECURITY",
]

# Operations outside each tool's declaration, each refused with SQLSTATE 42501.
DENIED_BY_ROLE = {
    GET: [
        "INSERT INTO support.tickets (tenant_id, subject) VALUES ('acme', 'x')",
        "UPDATE support.tickets SET status = 'closed'",
        "DELETE FROM support.tickets",
        "SELECT * FROM support.export_queue",
        "SELECT sku FROM inventory.items",
    ],
    EXPORT: [
        "SELECT * FROM support.export_queue",
        "UPDATE support.export_queue SET ticket_id = 2",
        "DELETE FROM support.export_queue",
        "TRUNCATE support.export_queue",
        "INSERT INTO support.export_queue (tenant_id, ticket_id) VALUES ('acme', 1) RETURNING id",
        "SELECT * FROM support.tickets",
        "INSERT INTO inventory.retry_queue (shipment_id) VALUES ('shp_1')",
    ],
    LOOKUP: [
        "SELECT cost_price FROM inventory.items",
        "SELECT * FROM inventory.items",
        "UPDATE inventory.items SET quantity = 0",
        "INSERT INTO inventory.items VALUES ('SKU-9', 'x', 1, 1)",
        "SELECT * FROM inventory.retry_queue",
        "SELECT * FROM support.tickets",
    ],
    RETRY: [
        "SELECT * FROM inventory.retry_queue",
        "UPDATE inventory.retry_queue SET reason = 'x'",
        "DELETE FROM inventory.retry_queue",
        "SELECT sku FROM inventory.items",
        "INSERT INTO support.export_queue (tenant_id, ticket_id) VALUES ('acme', 1)",
    ],
}
DENIED_CASES = [(r, s) for r, own in DENIED_BY_ROLE.items() for s in [*own, *EVERYONE_DENIED]]


@pytest.mark.parametrize(("role", "statement"), DENIED_CASES, ids=lambda v: str(v)[:48])
def test_everything_else_is_a_permission_error(dev: Applied, role: str, statement: str) -> None:
    result = dev.run(role, statement)
    assert not result.ok, f"{role} was allowed: {statement}"
    assert result.sqlstate == DENIED, result.stderr


def test_tenant_rows_are_invisible_across_tenants(dev: Applied) -> None:
    other = dev.run(GET, ACME, "SELECT id, subject FROM support.tickets WHERE tenant_id = 'globex'")
    assert other.ok, other.stderr
    assert other.rows == []
    unset = dev.run(GET, "SELECT count(*) FROM support.tickets")
    assert unset.rows == ["0"], "without a tenant the tool must see no rows"
    by_id = dev.run(GET, ACME, "SELECT count(*) FROM support.tickets WHERE id IN (4, 5)")
    assert by_id.rows == ["0"]


def test_each_password_opens_only_its_own_role(dev: Applied) -> None:
    roles = [spec.role for spec in roles_for(dev.config, "support")]
    for role in roles:
        own = dev.run(role, "SELECT current_user")
        assert own.rows == [role], own.stderr
        for other in roles:
            if other == role:
                continue
            borrowed = dev.pg.connect(role, dev.passwords[other], "SELECT 1")
            assert not borrowed.ok
            assert f'password authentication failed for user "{role}"' in borrowed.stderr
    admin = dev.pg.connect("perimeter_admin", dev.passwords[GET], "SELECT 1")
    assert "password authentication failed" in admin.stderr


def test_roles_carry_the_declared_limits_and_marker(dev: Applied) -> None:
    rows = dev.pg.superuser(
        "SELECT rolname, rolcanlogin, rolsuper, rolinherit, rolcreaterole, rolcreatedb, "
        "rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil, "
        "shobj_description(oid, 'pg_authid') FROM pg_authid WHERE rolname LIKE 'mcp\\_%' ORDER BY 1"
    ).rows
    marker = "agent-perimeter:environment=dev;database=support"
    assert rows == [
        f"{role}|t|f|f|f|f|f|f|10|infinity|{marker}"
        for role in sorted([GET, EXPORT, LOOKUP, RETRY, *EXPORTS_ROLES])
    ]
    assert dev.run(LOOKUP, "SHOW statement_timeout").rows == ["15s"]


def test_a_reader_outside_the_perimeter_is_warned_about_not_changed(dev: Applied) -> None:
    """Enabling RLS hides support.tickets from the analyst; the run says so, and the
    analyst's own privilege is left as it was."""
    assert "WARNING:  agent-perimeter: row-level security is on for" in dev.result.stderr
    assert "analyst" in dev.result.stderr
    analyst = dev.pg.connect(ANALYST, "analyst-pass", "SELECT count(*) FROM support.tickets")
    assert analyst.rows == ["0"]
    grants = dev.pg.superuser(
        "SELECT privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee = 'analyst' AND table_name = 'tickets'",
        db="support",
    )
    assert grants.rows == ["SELECT"]
