"""The per-tool role script one environment applies to one database.

Each tool of an MCP server gets its own login role holding exactly the table
(or column) privileges its config declares, so a read tool can only read and
an enqueue tool can only enqueue. The script is applied by the provisioning
Job as the database admin, in one transaction, and converges whatever it finds:

- roles are created when missing and their attributes, connection limit,
  statement timeout and password (a SCRAM verifier read from the Job's
  environment with psql's `\\getenv`; never in this text) are re-set;
- every privilege a managed role holds here that the config does not declare
  is revoked before the declared ones are granted (one transaction, so no
  tool ever sees a gap), and the result is checked against the catalog;
- roles this environment created for this database that are no longer
  declared lose LOGIN and their privileges, and are dropped once nothing
  depends on them;
- a role that exists but was not created by this environment is never taken
  over: the script stops instead.

Managed roles carry a `COMMENT ON ROLE` marker naming environment and
database (`role_marker`), which is how later runs find removed tools.

Row-level security (tools with `tenant_column`): the tool's role gets, on each
table it is granted, a policy admitting only rows whose tenant column (compared
as text) equals the session setting `agent_perimeter.tenant`; with the setting
unset, no rows. The MCP server sets it per request from the authenticated
caller, never from tool input; the role could set it itself, so this guards
against a query that forgets its tenant filter, not against a compromised
server. Enabling RLS is table-wide: every role that is not the owner, a
superuser or BYPASSRLS then sees only rows some policy admits, none without a
policy. Other managed roles granted on such a table therefore get a policy
`USING (true)` (their declared scope is the whole table); roles outside the
perimeter (an application, a report user) lose the table's rows until someone
gives them a policy, and the script names them in a WARNING. RLS is never
switched off again: that would silently widen whoever relies on it.

Requirements on the admin (`databases.<name>.admin_user`): CREATEROLE, owner
of the tables named in grants (RLS and policies need ownership; GRANT needs
ownership or grant option) and of the database or holding CONNECT with grant
option. It need not be a superuser; a managed role someone made SUPERUSER,
REPLICATION or BYPASSRLS can only be repaired by a superuser, and the script
stops with PostgreSQL's error in that case.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from typing import Any

from infra.pure.config import PerimeterConfig, TableGrant, role_name
from infra.pure.naming import password_env
from servers.runtime.contract import TENANT_SETTING

PLAN_SETTING = "agent_perimeter.plan"
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL silently truncates longer names (NAMEDATALEN - 1)

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_ENVIRONMENT = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DURATION = re.compile(r"([0-9]+)(ms|s|m|h)")
_PG_UNITS = {"ms": "ms", "s": "s", "m": "min", "h": "h"}  # PostgreSQL reads "m" as invalid
_VERIFIER_PATTERN = (
    "^SCRAM-SHA-256[$][1-9][0-9]*:[A-Za-z0-9+/]+={0,2}[$][A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$"
)
_ROLE_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS"


class UnsafeIdentifier(ValueError):
    """A name that must not reach SQL text (config validation should have caught it)."""


@dataclass(frozen=True)
class RoleSpec:
    """One tool's database role, as the Pulumi component wires it into the Job."""

    role: str
    server: str
    tool: str
    env_var: str  # the Job's environment variable holding this role's SCRAM verifier
    grants: tuple[TableGrant, ...]
    tenant_column: str | None = None


def role_marker(environment: str, database: str) -> str:
    """`COMMENT ON ROLE` text of roles one environment manages in one database."""
    return f"{_marker_prefix(environment)}database={database}"


def _marker_prefix(environment: str) -> str:
    return f"agent-perimeter:environment={environment};"


def roles_for(config: PerimeterConfig, database: str) -> list[RoleSpec]:
    """Roles of the tools whose server uses `database`, in config order."""
    if database not in config.databases:
        raise KeyError(
            f"database {database!r} is not declared (declared: {', '.join(sorted(config.databases))})"
        )
    specs = []
    for server in config.mcp_servers:
        if server.database != database:
            continue
        for tool in server.tools:
            role = _identifier(role_name(server.name, tool.name), "database role")
            specs.append(
                RoleSpec(
                    role=role,
                    server=server.name,
                    tool=tool.name,
                    env_var=password_env(role),
                    grants=tuple(tool.grants),
                    tenant_column=tool.tenant_column,
                )
            )
    return specs


# --- quoting ----------------------------------------------------------------------------------


def _identifier(name: str, what: str) -> str:
    """Re-check a name the config already restricted: lowercase ASCII, digits, '_'.

    `re.fullmatch` (unlike `^...$`) also refuses a trailing newline.
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise UnsafeIdentifier(
            f"{what} {name!r} is not a safe SQL identifier (lowercase ASCII letters, digits, '_')"
        )
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise UnsafeIdentifier(
            f"{what} {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes; PostgreSQL would "
            "truncate it, and two tools could end up sharing one role"
        )
    return name


def quote_ident(name: str) -> str:
    """Always-quoted identifier, like PostgreSQL's quote_ident for names that need it."""
    if "\x00" in name:
        raise UnsafeIdentifier(f"identifier {name!r} contains NUL")
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A standard-conforming string literal. Backslashes are refused outright: psql
    would read one outside a literal as a meta-command, and with
    standard_conforming_strings off the server would read one inside as an escape."""
    if "\\" in value or "\x00" in value:
        raise UnsafeIdentifier(f"literal {value!r} contains a backslash or NUL")
    return "'" + value.replace("'", "''") + "'"


def _table(qualified: str) -> tuple[str, str]:
    schema, _, table = qualified.partition(".")
    return _identifier(schema, "schema"), _identifier(table, "table")


def _qualified(schema: str, table: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def _timeout(value: str) -> str:
    match = _DURATION.fullmatch(value)
    if not match:
        raise ValueError(f"statement_timeout {value!r} is not a duration such as 500ms, 30s, 5m")
    return f"{match[1]}{_PG_UNITS[match[2]]}"


def _verifier_var(role: str) -> str:
    return f"ap_verifier_{role}"


# --- the script -------------------------------------------------------------------------------


def role_sql(config: PerimeterConfig, database: str) -> str:
    """The idempotent psql script for one database; run it with `job.psql_command()`."""
    environment = config.environment
    if not _ENVIRONMENT.fullmatch(environment):
        raise UnsafeIdentifier(f"environment {environment!r} is not a DNS label")
    _identifier(database, "database")
    specs = roles_for(config, database)
    endpoint = config.databases[database]
    connection_limit = int(endpoint.connection_limit)
    timeout = _timeout(endpoint.statement_timeout)
    marker = role_marker(environment, database)
    plan = _plan(specs, environment, database)

    out: list[str] = []
    emit = out.append
    emit(_header(environment, database, specs))
    emit("\\set ON_ERROR_STOP on")
    emit("SET LOCAL lock_timeout = '10s';")
    emit("SET LOCAL search_path = pg_catalog, pg_temp;")
    emit(f"SET LOCAL {PLAN_SETTING} = {quote_literal(json.dumps(plan, sort_keys=True))};")
    emit("")
    emit("-- 1. Preconditions: psql 15 or newer, every verifier present and well formed.")
    emit("SELECT :VERSION_NUM >= 150000 AS ap_ok \\gset")
    emit(
        _unless(
            "ap_ok",
            "psql 15 or newer is required (the script reads verifiers from the environment)",
        )
    )
    for spec in specs:
        var = _verifier_var(spec.role)
        emit(f"\\getenv {var} {spec.env_var}")
        emit(
            _unless(
                f"{{?{var}}}",
                f"environment variable {spec.env_var} (SCRAM verifier of role {spec.role}) is not set",
            )
        )
        emit(f"SELECT :'{var}' ~ {quote_literal(_VERIFIER_PATTERN)} AS ap_ok \\gset")
        emit(
            _unless(
                "ap_ok",
                f"environment variable {spec.env_var} does not hold a SCRAM-SHA-256 verifier "
                "(a plain password would be stored as one; refusing)",
            )
        )
    emit("")
    emit("-- 2. Right database, one transaction, no role taken over from someone else.")
    emit(_do(_PREFLIGHT))
    emit("")
    emit("-- 3. Roles: created when missing, attributes and password re-set, marked as managed.")
    for spec in specs:
        emit(_role_statements(spec, database, connection_limit, timeout, marker))
    emit("-- 4. Revoke what is no longer declared; retire roles of removed tools.")
    emit(_do(_RECONCILE))
    emit("")
    emit("-- 5. Grant exactly what is declared (nothing to PUBLIC, never ALL PRIVILEGES).")
    for spec in specs:
        emit(_grant_statements(spec, database))
    emit("-- 5b. Sequences behind serial/identity columns of the tables a tool inserts into.")
    emit(_SEQUENCE_GRANTS)
    emit("")
    emit("-- 6. Row-level security for tenant-scoped tools.")
    emit(_rls_statements(specs))
    emit("-- 7. Check the result against the catalog: nothing undeclared is held.")
    emit(_do(_VERIFY))
    emit("")
    emit("-- 8. Check each role can do every declared operation and nothing else, whoever granted")
    emit("--    it (PUBLIC, memberships): a GRANT that only warned fails the run here.")
    emit(_do(_VERIFY_EFFECTIVE))
    return "\n".join(out) + "\n"


def _header(environment: str, database: str, specs: list[RoleSpec]) -> str:
    lines = [
        "-- agent-perimeter: per-tool database roles",
        f"--   environment {environment}, database {database}",
        "-- Generated by infra/pure/database/sql.py: edit the stack config, not this file.",
        "-- Apply exactly as the provisioning Job does:",
        "--   psql --no-psqlrc -v ON_ERROR_STOP=1 --single-transaction -f roles.sql",
        "-- with PGPASSWORD (the admin's) and one SCRAM-SHA-256 verifier per role in the",
        "-- environment. No password and no verifier is written in this file.",
        "--",
        "-- Row-level security: enabling it on a table hides that table's rows from every",
        "-- role that is not its owner, a superuser or BYPASSRLS and has no policy. Managed",
        "-- roles get one; others are listed in a WARNING. RLS is never switched off here.",
        "--",
        "-- roles:",
    ]
    lines += [f"--   {s.role:<40} {s.server}/{s.tool}  verifier from ${s.env_var}" for s in specs]
    if not specs:
        lines.append("--   (none: the script only retires roles of removed tools)")
    return "\n".join(lines) + "\n"


def _plan(specs: list[RoleSpec], environment: str, database: str) -> dict[str, Any]:
    """What the catalog should hold, for the generic reconcile and verify blocks."""
    tables: set[tuple[str, str, str, str]] = set()
    columns: set[tuple[str, str, str, str, str]] = set()
    schemas: set[tuple[str, str]] = set()
    policy_tables: set[tuple[str, str, str]] = set()
    inserts: set[tuple[str, str, str]] = set()
    tenants: set[tuple[str, str, str, str]] = set()
    for spec in specs:
        for grant in spec.grants:
            schema, table = _table(grant.table)
            schemas.add((spec.role, schema))
            policy_tables.add((spec.role, schema, table))
            if "INSERT" in grant.privileges:
                inserts.add((spec.role, schema, table))
            if spec.tenant_column is not None:
                column = _identifier(spec.tenant_column, "tenant_column")
                tenants.add((spec.role, schema, table, column))
            for privilege in grant.privileges:
                if grant.columns is None:
                    tables.add((spec.role, schema, table, privilege))
                else:
                    for column in grant.columns:
                        columns.add(
                            (spec.role, schema, table, _identifier(column, "column"), privilege)
                        )
    return {
        "database": database,
        "environment": environment,
        "marker": role_marker(environment, database),
        "marker_prefix": _marker_prefix(environment),
        "roles": [s.role for s in specs],
        "tables": [
            dict(zip(("role", "schema", "table", "privilege"), t, strict=True))
            for t in sorted(tables)
        ],
        "columns": [
            dict(zip(("role", "schema", "table", "column", "privilege"), c, strict=True))
            for c in sorted(columns)
        ],
        "schemas": [dict(zip(("role", "schema"), s, strict=True)) for s in sorted(schemas)],
        "policy_tables": [
            dict(zip(("role", "schema", "table"), p, strict=True)) for p in sorted(policy_tables)
        ],
        # Tables a role inserts into: it also needs USAGE on their serial/identity sequences.
        "insert_tables": [
            dict(zip(("role", "schema", "table"), t, strict=True)) for t in sorted(inserts)
        ],
        "tenant_tables": [
            dict(zip(("role", "schema", "table", "column"), t, strict=True))
            for t in sorted(tenants)
        ],
    }


def _do(body: str) -> str:
    if "$ap$" in body:
        raise ValueError("a DO body must not contain its own dollar-quote tag")
    return f"DO $ap$\n{body.strip()}\n$ap$;"


def _fail(message: str) -> str:
    text = quote_literal(f"agent-perimeter: {message}")
    return f"DO $ap$ BEGIN RAISE EXCEPTION USING MESSAGE = {text}; END $ap$;"


def _unless(condition: str, message: str) -> str:
    """psql: stop with `message` unless `:condition` is true (psql has no \\if not)."""
    return f"\\if :{condition}\n\\else\n{_fail(message)}\n\\endif"


def _role_statements(
    spec: RoleSpec, database: str, connection_limit: int, timeout: str, marker: str
) -> str:
    role = quote_ident(spec.role)
    name = quote_literal(spec.role)
    return "\n".join(
        [
            f"-- {spec.role}: tool {spec.tool} of MCP server {spec.server}",
            f"SELECT {quote_literal(f'CREATE ROLE {role} NOLOGIN {_ROLE_ATTRIBUTES}')}",
            f"WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {name}) \\gexec",
            # Only a superuser may even name these three in ALTER ROLE, so they are
            # repaired when found set (and the run stops if the admin cannot).
            f"SELECT {quote_literal(f'ALTER ROLE {role} NOSUPERUSER NOREPLICATION NOBYPASSRLS')}",
            f"FROM pg_catalog.pg_roles WHERE rolname = {name}",
            "AND (rolsuper OR rolreplication OR rolbypassrls) \\gexec",
            f"ALTER ROLE {role} WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT",
            f"  CONNECTION LIMIT {connection_limit} VALID UNTIL 'infinity'",
            f"  PASSWORD :'{_verifier_var(spec.role)}';",
            f"ALTER ROLE {role} RESET ALL;",
            f"ALTER ROLE {role} IN DATABASE {quote_ident(database)} RESET ALL;",
            f"ALTER ROLE {role} SET statement_timeout = {quote_literal(timeout)};",
            f"COMMENT ON ROLE {role} IS {quote_literal(marker)};",
            "",
        ]
    )


def _grant_statements(spec: RoleSpec, database: str) -> str:
    role = quote_ident(spec.role)
    lines = [f"-- {spec.role}", f"GRANT CONNECT ON DATABASE {quote_ident(database)} TO {role};"]
    schemas: list[str] = []
    for grant in spec.grants:
        schema, _ = _table(grant.table)
        if schema not in schemas:
            schemas.append(schema)
    lines += [f"GRANT USAGE ON SCHEMA {quote_ident(s)} TO {role};" for s in schemas]
    for grant in spec.grants:
        target = _qualified(*_table(grant.table))
        privileges = list(dict.fromkeys(_privilege(p) for p in grant.privileges))
        if grant.columns is None:
            lines.append(f"GRANT {', '.join(privileges)} ON TABLE {target} TO {role};")
        else:
            columns = ", ".join(quote_ident(_identifier(c, "column")) for c in grant.columns)
            each = ", ".join(f"{p} ({columns})" for p in privileges)
            lines.append(f"GRANT {each} ON TABLE {target} TO {role};")
    lines.append("")
    return "\n".join(lines)


def pg_format_literal(text: str) -> str:
    """A literal for pg_catalog.format(): '%' doubled except the one `%s` placeholder."""
    return quote_literal(text.replace("%", "%%").replace("%%s", "%s"))


def _privilege(privilege: str) -> str:
    if privilege not in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        raise ValueError(f"privilege {privilege!r} is not one of SELECT, INSERT, UPDATE, DELETE")
    return privilege


def _tables_of(spec: RoleSpec) -> list[tuple[str, str]]:
    """(schema, table) of each table a tool is granted, once each, in config order."""
    return list(dict.fromkeys(_table(grant.table) for grant in spec.grants))


def _rls_statements(specs: list[RoleSpec]) -> str:
    tenant_tables = list(
        dict.fromkeys(t for spec in specs if spec.tenant_column for t in _tables_of(spec))
    )
    lines: list[str] = []
    for schema, name in tenant_tables:
        target = _qualified(schema, name)
        lines.append(
            f"SELECT {quote_literal(f'ALTER TABLE {target} ENABLE ROW LEVEL SECURITY')}\n"
            f"FROM pg_catalog.pg_class WHERE oid = {quote_literal(target)}::pg_catalog.regclass"
            " AND NOT relrowsecurity \\gexec"
        )
    for spec in specs:
        lines += [_policy(spec, schema, name) for schema, name in _tables_of(spec)]
    lines += [
        _do(_UNCOVERED.replace("__TABLE__", quote_literal(_qualified(schema, name))))
        for schema, name in tenant_tables
    ]
    lines.append("")
    return "\n".join(lines)


def _policy(spec: RoleSpec, schema: str, name: str) -> str:
    """The role's own policy on one of its tables: its tenant's rows, or (no tenant_column)
    every row, the latter only where RLS is on so it is not a policy for nothing."""
    role = quote_ident(spec.role)
    target = _qualified(schema, name)
    if spec.tenant_column is not None:
        column = _identifier(spec.tenant_column, "tenant_column")
        # The setting is cast to the column's own type, never the column to text, so an
        # index on the tenant column serves the predicate; unset or empty matches no row.
        create = pg_format_literal(
            f"CREATE POLICY {role} ON {target} AS PERMISSIVE FOR ALL TO {role}\n"
            f"  USING ({quote_ident(column)} = CAST(NULLIF(pg_catalog.current_setting("
            f"{quote_literal(TENANT_SETTING)}, true), '') AS %s))"
        )
        missing = quote_literal(
            "DO $m$ BEGIN RAISE EXCEPTION USING MESSAGE = "
            + quote_literal(
                f"agent-perimeter: table {schema}.{name} has no column {column}, "
                f"the tenant column of role {spec.role}"
            )
            + "; END $m$"
        )
        return (
            f"DROP POLICY IF EXISTS {role} ON {target};\n"
            f"SELECT CASE WHEN a.attname IS NULL THEN {missing}\n"
            f"  ELSE pg_catalog.format({create}, pg_catalog.format_type(a.atttypid, NULL)) END\n"
            f"FROM (SELECT 1) AS one LEFT JOIN pg_catalog.pg_attribute a\n"
            f"  ON a.attrelid = {quote_literal(target)}::pg_catalog.regclass\n"
            f"  AND a.attname = {quote_literal(column)} AND a.attnum > 0 AND NOT a.attisdropped"
            " \\gexec"
        )
    return _do(
        "BEGIN\n"
        "  IF (SELECT relrowsecurity FROM pg_catalog.pg_class\n"
        f"      WHERE oid = {quote_literal(target)}::pg_catalog.regclass) THEN\n"
        f"    DROP POLICY IF EXISTS {role} ON {target};\n"
        f"    CREATE POLICY {role} ON {target} AS PERMISSIVE FOR ALL TO {role} USING (true);\n"
        "  END IF;\n"
        "END"
    )


# --- generic blocks: the same text for every environment, driven by the plan -------------------

_PLAN = f"""\
  plan constant jsonb := NULLIF(pg_catalog.current_setting('{PLAN_SETTING}', true), '')::jsonb;"""

_PREFLIGHT = f"""
DECLARE
{_PLAN}
  r record;
BEGIN
  IF plan IS NULL THEN
    RAISE EXCEPTION 'agent-perimeter: run this script in one transaction (psql --single-transaction)';
  END IF;
  IF pg_catalog.current_database() <> plan->>'database' THEN
    RAISE EXCEPTION 'agent-perimeter: this script is for database %, not %',
      plan->>'database', pg_catalog.current_database();
  END IF;
  FOR r IN
    SELECT ro.rolname, pg_catalog.shobj_description(ro.oid, 'pg_authid') AS marker
      FROM pg_catalog.pg_roles ro
     WHERE ro.rolname IN (SELECT pg_catalog.jsonb_array_elements_text(plan->'roles'))
  LOOP
    IF r.marker IS NULL OR NOT pg_catalog.starts_with(r.marker, plan->>'marker_prefix') THEN
      RAISE EXCEPTION 'agent-perimeter: role % already exists and is not managed by environment %',
        r.rolname, plan->>'environment'
        USING DETAIL = pg_catalog.format('its comment is %L', r.marker),
              HINT = 'rename the tool, or drop or rename that role after checking who uses it';
    END IF;
  END LOOP;
END
"""


def _raise_if_problems(message: str, hint: str) -> str:
    """PL/pgSQL ending a check: fail with every collected problem as the DETAIL."""
    return f"""\
  IF pg_catalog.cardinality(problems) > 0 THEN
    RAISE EXCEPTION {quote_literal(f"agent-perimeter: {message} (% problem(s))")},
      pg_catalog.cardinality(problems)
      USING DETAIL = pg_catalog.array_to_string(problems, pg_catalog.chr(10)),
            HINT = {quote_literal(hint)};
  END IF;"""


# (role, sequence) for every sequence owned by a column (serial or identity) of a table the
# role may INSERT into: nextval() needs USAGE on it, granted and revoked with the INSERT.
_OWNED_SEQUENCES = """
SELECT d.role, s.oid AS seq
  FROM pg_catalog.jsonb_to_recordset(pg_catalog.current_setting('agent_perimeter.plan')::jsonb->'insert_tables')
       AS d(role text, schema text, "table" text)
  JOIN pg_catalog.pg_namespace n ON n.nspname = d.schema
  JOIN pg_catalog.pg_class t ON t.relnamespace = n.oid AND t.relname = d."table"
  JOIN pg_catalog.pg_depend dep ON dep.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND dep.refobjid = t.oid AND dep.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND dep.deptype IN ('a', 'i')
  JOIN pg_catalog.pg_class s ON s.oid = dep.objid AND s.relkind = 'S'
""".strip()

_SEQUENCE_GRANTS = (
    "SELECT pg_catalog.format('GRANT USAGE ON SEQUENCE %s TO %I', o.seq::pg_catalog.regclass, o.role)\n"
    f"  FROM ({_OWNED_SEQUENCES}) o ORDER BY 1 \\gexec"
)

_MANAGED = """\
  -- every role of this environment (any database), and those created for this database
  managed constant oid[] := ARRAY(
    SELECT oid FROM pg_catalog.pg_roles
     WHERE pg_catalog.starts_with(pg_catalog.shobj_description(oid, 'pg_authid'), plan->>'marker_prefix'));
  ours constant oid[] := ARRAY(
    SELECT oid FROM pg_catalog.pg_roles
     WHERE pg_catalog.shobj_description(oid, 'pg_authid') = plan->>'marker');
  declared constant text[] := ARRAY(SELECT pg_catalog.jsonb_array_elements_text(plan->'roles'));"""

# Privileges managed roles hold on this database's objects, each flagged as declared or not.
_HELD_TEMPLATE = """\
  SELECT 'table' AS kind, m.rolname, n.nspname AS schema, c.relname AS object, NULL::name AS column_name,
         c.relkind, a.privilege_type, a.is_grantable,
         EXISTS (SELECT 1 FROM pg_catalog.jsonb_to_recordset(plan->'tables')
                          AS d(role text, schema text, "table" text, privilege text)
                  WHERE d.role = m.rolname AND d.schema = n.nspname AND d."table" = c.relname
                    AND d.privilege = a.privilege_type)
         OR (c.relkind = 'S' AND a.privilege_type = 'USAGE' AND EXISTS (
               SELECT 1 FROM ({_OWNED_SEQUENCES}) o WHERE o.role = m.rolname AND o.seq = c.oid)) AS declared
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
    JOIN pg_catalog.pg_roles m ON m.oid = a.grantee
   WHERE m.oid = ANY (managed)
  UNION ALL
  SELECT 'column', m.rolname, n.nspname, c.relname, t.attname, c.relkind, a.privilege_type, a.is_grantable,
         EXISTS (SELECT 1 FROM pg_catalog.jsonb_to_recordset(plan->'columns')
                          AS d(role text, schema text, "table" text, "column" text, privilege text)
                  WHERE d.role = m.rolname AND d.schema = n.nspname AND d."table" = c.relname
                    AND d."column" = t.attname AND d.privilege = a.privilege_type)
    FROM pg_catalog.pg_attribute t
    JOIN pg_catalog.pg_class c ON c.oid = t.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    CROSS JOIN LATERAL pg_catalog.aclexplode(t.attacl) a
    JOIN pg_catalog.pg_roles m ON m.oid = a.grantee
   WHERE m.oid = ANY (managed) AND t.attnum > 0 AND NOT t.attisdropped
  UNION ALL
  SELECT 'schema', m.rolname, n.nspname, n.nspname, NULL, NULL, a.privilege_type, a.is_grantable,
         a.privilege_type = 'USAGE' AND EXISTS (
           SELECT 1 FROM pg_catalog.jsonb_to_recordset(plan->'schemas') AS d(role text, schema text)
            WHERE d.role = m.rolname AND d.schema = n.nspname)
    FROM pg_catalog.pg_namespace n
    CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) a
    JOIN pg_catalog.pg_roles m ON m.oid = a.grantee
   WHERE m.oid = ANY (managed)
  UNION ALL
  SELECT 'database', m.rolname, NULL, db.datname, NULL, NULL, a.privilege_type, a.is_grantable,
         a.privilege_type = 'CONNECT' AND m.rolname = ANY (declared)
    FROM pg_catalog.pg_database db
    CROSS JOIN LATERAL pg_catalog.aclexplode(db.datacl) a
    JOIN pg_catalog.pg_roles m ON m.oid = a.grantee
   WHERE m.oid = ANY (managed) AND db.datname = pg_catalog.current_database()
"""

_HELD = _HELD_TEMPLATE.replace("{_OWNED_SEQUENCES}", _OWNED_SEQUENCES)

_RECONCILE = f"""
DECLARE
{_PLAN}
{_MANAGED}
  r record;
  target text;
BEGIN
  -- Policies named after a managed role, for that role alone, on a table it is no longer granted.
  FOR r IN
    SELECT p.polname, n.nspname, c.relname
      FROM pg_catalog.pg_policy p
      JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_roles m ON p.polroles = ARRAY[m.oid] AND p.polname = m.rolname
     WHERE m.oid = ANY (managed)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_to_recordset(plan->'policy_tables')
                                AS d(role text, schema text, "table" text)
                        WHERE d.role = m.rolname AND d.schema = n.nspname AND d."table" = c.relname)
  LOOP
    EXECUTE pg_catalog.format('DROP POLICY %I ON %I.%I', r.polname, r.nspname, r.relname);
  END LOOP;

  -- Undeclared privileges; grant options on declared ones.
  FOR r IN
{textwrap.indent(_HELD, "  ")}
  LOOP
    target := CASE r.kind
      WHEN 'database' THEN pg_catalog.format('DATABASE %I', r.object)
      WHEN 'schema' THEN pg_catalog.format('SCHEMA %I', r.object)
      WHEN 'column' THEN pg_catalog.format('TABLE %I.%I', r.schema, r.object)
      ELSE pg_catalog.format('%s %I.%I', CASE WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                             r.schema, r.object)
    END;
    IF NOT r.declared THEN
      EXECUTE pg_catalog.format('REVOKE %s%s ON %s FROM %I CASCADE', r.privilege_type,
        CASE WHEN r.kind = 'column' THEN pg_catalog.format(' (%I)', r.column_name) ELSE '' END,
        target, r.rolname);
    ELSIF r.is_grantable THEN
      EXECUTE pg_catalog.format('REVOKE GRANT OPTION FOR %s%s ON %s FROM %I CASCADE', r.privilege_type,
        CASE WHEN r.kind = 'column' THEN pg_catalog.format(' (%I)', r.column_name) ELSE '' END,
        target, r.rolname);
    END IF;
  END LOOP;

  -- Memberships: a NOINHERIT role could still SET ROLE to anything it is a member of.
  FOR r IN
    SELECT g.rolname AS granted, m.rolname AS member
      FROM pg_catalog.pg_auth_members am
      JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
      JOIN pg_catalog.pg_roles m ON m.oid = am.member
     WHERE m.oid = ANY (ours)
  LOOP
    EXECUTE pg_catalog.format('REVOKE %I FROM %I CASCADE', r.granted, r.member);
  END LOOP;

  -- Roles of removed tools: no login, no password; dropped once nothing depends on them.
  FOR r IN
    SELECT m.oid, m.rolname FROM pg_catalog.pg_roles m
     WHERE m.oid = ANY (ours) AND NOT m.rolname = ANY (declared)
  LOOP
    EXECUTE pg_catalog.format('ALTER ROLE %I WITH NOLOGIN PASSWORD NULL', r.rolname);
    EXECUTE pg_catalog.format('ALTER ROLE %I RESET ALL', r.rolname);
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend
                    WHERE refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
                      AND refobjid = r.oid) THEN
      EXECUTE pg_catalog.format('DROP ROLE %I', r.rolname);
      RAISE NOTICE 'agent-perimeter: dropped role % (its tool was removed)', r.rolname;
    ELSE
      RAISE NOTICE 'agent-perimeter: role % of a removed tool is NOLOGIN; objects or privileges elsewhere still depend on it, so it is kept', r.rolname;
    END IF;
  END LOOP;
END
"""

_VERIFY = f"""
DECLARE
{_PLAN}
{_MANAGED}
  problems text[];
  elsewhere text;
BEGIN
  problems := ARRAY(
    SELECT pg_catalog.format('%s holds %s%s on %s %s', h.rolname, h.privilege_type,
             CASE WHEN h.declared THEN ' WITH GRANT OPTION' ELSE '' END, h.kind,
             pg_catalog.concat_ws('.', h.schema, h.object, h.column_name))
      FROM ({_HELD}) h
     WHERE NOT h.declared OR h.is_grantable
     ORDER BY 1);
  problems := problems || ARRAY(
    SELECT pg_catalog.format('%s is still a member of %s', m.rolname, g.rolname)
      FROM pg_catalog.pg_auth_members am
      JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
      JOIN pg_catalog.pg_roles m ON m.oid = am.member
     WHERE m.oid = ANY (ours)
     ORDER BY 1);
  -- Owning an object means holding every privilege on it; other privileges here
  -- (functions, types, default privileges, ...) are undeclared too.
  problems := problems || ARRAY(
    SELECT pg_catalog.format('%s %s %s', m.rolname,
             CASE s.deptype WHEN 'o' THEN 'owns' ELSE 'holds privileges on' END,
             pg_catalog.pg_describe_object(s.classid, s.objid, s.objsubid))
      FROM pg_catalog.pg_shdepend s
      JOIN pg_catalog.pg_roles m ON m.oid = s.refobjid
     WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
       AND m.rolname = ANY (declared)
       AND s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
       AND (s.deptype = 'o'
            OR (s.deptype = 'a' AND s.classid NOT IN ('pg_catalog.pg_class'::pg_catalog.regclass,
                                                      'pg_catalog.pg_namespace'::pg_catalog.regclass)))
     ORDER BY 1);
  problems := problems || ARRAY(
    SELECT pg_catalog.format('%s is %s', m.rolname, pg_catalog.concat_ws(', ',
             CASE WHEN m.rolsuper THEN 'SUPERUSER' END, CASE WHEN m.rolreplication THEN 'REPLICATION' END,
             CASE WHEN m.rolbypassrls THEN 'BYPASSRLS' END, CASE WHEN m.rolinherit THEN 'INHERIT' END,
             CASE WHEN m.rolcreaterole THEN 'CREATEROLE' END, CASE WHEN m.rolcreatedb THEN 'CREATEDB' END,
             CASE WHEN NOT m.rolcanlogin THEN 'NOLOGIN' END))
      FROM pg_catalog.pg_roles m
     WHERE m.rolname = ANY (declared)
       AND (m.rolsuper OR m.rolreplication OR m.rolbypassrls OR m.rolinherit OR m.rolcreaterole
            OR m.rolcreatedb OR NOT m.rolcanlogin)
     ORDER BY 1);
{
    _raise_if_problems(
        "undeclared access remains after reconciling",
        "these were granted by someone the admin cannot revoke for; revoke them as their grantor or a superuser",
    )
}
  SELECT pg_catalog.string_agg(DISTINCT pg_catalog.format('%s in database %s', m.rolname, d.datname), ', ')
    INTO elsewhere
    FROM pg_catalog.pg_shdepend s
    JOIN pg_catalog.pg_roles m ON m.oid = s.refobjid
    JOIN pg_catalog.pg_database d ON d.oid = s.dbid
   WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
     AND m.oid = ANY (ours) AND d.datname <> pg_catalog.current_database();
  IF elsewhere IS NOT NULL THEN
    RAISE WARNING 'agent-perimeter: roles of this database also own objects or hold privileges in other databases of the server: %', elsewhere;
  END IF;
END
"""

_VERIFY_EFFECTIVE = f"""
DECLARE
{_PLAN}
  declared constant text[] := ARRAY(SELECT pg_catalog.jsonb_array_elements_text(plan->'roles'));
  problems text[];
BEGIN
  problems := ARRAY(
    -- what each role must be able to do
    SELECT pg_catalog.format('%s cannot connect to database %s', r, plan->>'database')
      FROM pg_catalog.unnest(declared) AS r
     WHERE NOT pg_catalog.has_database_privilege(r, plan->>'database', 'CONNECT')
    UNION ALL
    SELECT pg_catalog.format('%s cannot log in', r) FROM pg_catalog.unnest(declared) AS r
     WHERE NOT (SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = r)
    UNION ALL
    SELECT pg_catalog.format('%s cannot use schema %s', d.role, d.schema)
      FROM pg_catalog.jsonb_to_recordset(plan->'schemas') AS d(role text, schema text)
     WHERE NOT pg_catalog.has_schema_privilege(d.role, d.schema, 'USAGE')
    UNION ALL
    SELECT pg_catalog.format('%s cannot %s on %I.%I', d.role, d.privilege, d.schema, d."table")
      FROM pg_catalog.jsonb_to_recordset(plan->'tables')
           AS d(role text, schema text, "table" text, privilege text)
     WHERE NOT pg_catalog.has_table_privilege(d.role, pg_catalog.format('%I.%I', d.schema, d."table"), d.privilege)
    UNION ALL
    SELECT pg_catalog.format('%s cannot %s column %s of %I.%I', d.role, d.privilege, d."column", d.schema, d."table")
      FROM pg_catalog.jsonb_to_recordset(plan->'columns')
           AS d(role text, schema text, "table" text, "column" text, privilege text)
     WHERE NOT pg_catalog.has_column_privilege(d.role, pg_catalog.format('%I.%I', d.schema, d."table"), d."column", d.privilege)
    UNION ALL
    SELECT pg_catalog.format('%s cannot use sequence %s', o.role, o.seq::pg_catalog.regclass)
      FROM ({_OWNED_SEQUENCES}) o
     WHERE NOT pg_catalog.has_sequence_privilege(o.role, o.seq, 'USAGE')
    UNION ALL
    SELECT pg_catalog.format('%s has no row-level security policy on %I.%I', d.role, d.schema, d."table")
      FROM pg_catalog.jsonb_to_recordset(plan->'tenant_tables')
           AS d(role text, schema text, "table" text, "column" text)
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                        WHERE p.polname = d.role
                          AND p.polrelid = pg_catalog.format('%I.%I', d.schema, d."table")::pg_catalog.regclass)
    UNION ALL
    -- and what it must not: every privilege it effectively holds, however it got it
    SELECT pg_catalog.format('%s can %s on %I.%I', r, p, n.nspname, c.relname)
      FROM pg_catalog.unnest(declared) AS r
     CROSS JOIN pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN pg_catalog.unnest(CASE WHEN c.relkind = 'S' THEN ARRAY['USAGE', 'SELECT', 'UPDATE']
                                       ELSE ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                                  'REFERENCES', 'TRIGGER'] END) AS p
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND n.nspname <> 'information_schema' AND NOT pg_catalog.starts_with(n.nspname, 'pg_')
       AND CASE WHEN c.relkind = 'S' THEN pg_catalog.has_sequence_privilege(r, c.oid, p)
                ELSE pg_catalog.has_table_privilege(r, c.oid, p) END
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_to_recordset(plan->'tables')
                                AS d(role text, schema text, "table" text, privilege text)
                        WHERE d.role = r AND d.schema = n.nspname AND d."table" = c.relname
                          AND d.privilege = p)
       AND NOT (p = 'USAGE' AND EXISTS (SELECT 1 FROM ({_OWNED_SEQUENCES}) o
                                         WHERE o.role = r AND o.seq = c.oid))
    UNION ALL
    SELECT pg_catalog.format('%s can %s column %s of %I.%I', r, p, t.attname, n.nspname, c.relname)
      FROM pg_catalog.unnest(declared) AS r
     CROSS JOIN pg_catalog.pg_attribute t
      JOIN pg_catalog.pg_class c ON c.oid = t.attrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN pg_catalog.unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) AS p
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND t.attnum > 0 AND NOT t.attisdropped
       AND n.nspname <> 'information_schema' AND NOT pg_catalog.starts_with(n.nspname, 'pg_')
       AND NOT pg_catalog.has_table_privilege(r, c.oid, p)
       AND pg_catalog.has_column_privilege(r, c.oid, t.attnum, p)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.jsonb_to_recordset(plan->'columns')
                                AS d(role text, schema text, "table" text, "column" text, privilege text)
                        WHERE d.role = r AND d.schema = n.nspname AND d."table" = c.relname
                          AND d."column" = t.attname AND d.privilege = p)
    UNION ALL
    SELECT pg_catalog.format('%s can CREATE in schema %s', r, n.nspname)
      FROM pg_catalog.unnest(declared) AS r CROSS JOIN pg_catalog.pg_namespace n
     WHERE pg_catalog.has_schema_privilege(r, n.oid, 'CREATE')
    UNION ALL
    SELECT pg_catalog.format('%s can CREATE schemas in database %s', r, plan->>'database')
      FROM pg_catalog.unnest(declared) AS r
     WHERE pg_catalog.has_database_privilege(r, plan->>'database', 'CREATE')
    ORDER BY 1);
{
    _raise_if_problems(
        "the tool roles do not hold exactly what they declare; nothing was changed",
        "a missing CONNECT usually means the admin neither owns the database nor holds CONNECT WITH GRANT OPTION on it; an extra privilege was granted to every role or through a membership: revoke it there",
    )
}
END
"""

_UNCOVERED = """
DECLARE
  uncovered text;
BEGIN
  SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_ident(r.rolname), ', ') INTO uncovered
    FROM pg_catalog.pg_class c
    CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
    JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
   WHERE c.oid = __TABLE__::pg_catalog.regclass
     AND a.grantee <> c.relowner AND NOT r.rolsuper AND NOT r.rolbypassrls
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                      WHERE p.polrelid = c.oid AND (a.grantee = ANY (p.polroles) OR 0::oid = ANY (p.polroles)));
  IF uncovered IS NOT NULL THEN
    RAISE WARNING 'agent-perimeter: row-level security is on for %; roles % hold privileges on it but no policy applies to them, so they see none of its rows', __TABLE__, uncovered;
  END IF;
END
"""
