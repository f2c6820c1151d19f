"""A real PostgreSQL for the role tests: started once per session, on loopback only.

Host connections (127.0.0.1) use scram-sha-256, so every password check in the
tests is the server's own. The admin is a non-superuser with CREATEROLE that owns
the schemas and tables, as on a managed database; the bootstrap superuser is
reachable only through the unix socket in the server's private directory and is
used for set-up and catalog snapshots, never by the code under test.
"""

from __future__ import annotations

import copy
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

import pytest

from infra.pure.config import (
    PERIMETER_KEY,
    DatabaseEndpoint,
    PerimeterConfig,
    read_stack_file,
    stack_file,
)
from infra.pure.database.job import ADMIN_PASSWORD_ENV, connection_env, psql_command
from infra.pure.database.scram import scram_sha256_verifier
from infra.pure.database.sql import role_sql, roles_for

# The export server's own schema and seed (its tests and the dev roles use the same tables).
EXPORTS_SERVER = Path(__file__).resolve().parents[2] / "servers" / "exports"
# dev's export server's roles (servers/exports), next to the tickets and inventory ones.
EXPORTS_ROLES = [
    "mcp_exports_get_latest_export_job",
    "mcp_exports_retry_export_job",
    "mcp_exports_get_export_download_url",
]
PG_PREFIX = "agent-perimeter-pg-"  # each server's directory under the temporary directory
OWNER_FILE = "owner.pid"  # the test process that started it, for the reaper
ADMIN = "perimeter_admin"
SUPERUSER = "postgres"
ANALYST = "analyst"  # a role outside the perimeter that reads support.tickets
TEMPLATE_DB = "perimeter_template"
MAIN_DB = "support"  # the dev environment's database key, and so its name
KEEP_ROLES = {SUPERUSER, ADMIN, ANALYST}
KEEP_DATABASES = {"postgres", "template0", "template1", TEMPLATE_DB}

SCHEMA_SQL = """
CREATE SCHEMA support;
CREATE SCHEMA inventory;
CREATE TABLE support.tickets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL,
    subject text NOT NULL,
    status text NOT NULL DEFAULT 'open'
);
CREATE TABLE support.export_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id text NOT NULL,
    ticket_id bigint NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE inventory.items (
    sku text PRIMARY KEY,
    name text NOT NULL,
    quantity integer NOT NULL,
    cost_price numeric(10, 2) NOT NULL
);
CREATE TABLE inventory.retry_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id text NOT NULL,
    reason text,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO support.tickets (tenant_id, subject) VALUES
    ('acme', 'printer on fire'), ('acme', 'invoice missing'), ('acme', 'password reset'),
    ('globex', 'late delivery'), ('globex', 'refund request');
INSERT INTO support.export_queue (tenant_id, ticket_id) VALUES ('globex', 4);
INSERT INTO inventory.items VALUES
    ('SKU-1', 'widget', 12, 1.50), ('SKU-2', 'gadget', 0, 7.25), ('SKU-3', 'gizmo', 5, 3.10);
INSERT INTO inventory.retry_queue (shipment_id, reason) VALUES ('shp_1', 'carrier timeout');
GRANT USAGE ON SCHEMA support TO analyst;
GRANT SELECT ON support.tickets TO analyst;
""" + "\n".join((EXPORTS_SERVER / name).read_text() for name in ("schema.sql", "seed.sql"))


def postgres_bin() -> Path:
    """The highest installed PostgreSQL's bin directory; fails (never skips) without one."""
    found = sorted(
        (Path(p) for p in glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found or not all((found[-1] / b).exists() for b in ("initdb", "pg_ctl", "psql")):
        pytest.fail(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
            "run `make setup` (it installs PostgreSQL from Debian)",
            pytrace=False,
        )
    if int(found[-1].parent.name) < 15:
        pytest.fail(
            f"PostgreSQL {found[-1].parent.name} is too old: the role script needs psql 15+ "
            "(\\getenv); run `make setup` on a newer Debian",
            pytrace=False,
        )
    return found[-1]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """No PG* from the caller's environment: only what a test sets reaches psql."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGCONNECT_TIMEOUT": "10", "LC_ALL": "C.UTF-8"})
    env.update(extra or {})
    return env


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def sqlstate(self) -> str | None:
        match = re.search(r"(?:ERROR|FATAL):\s+([0-9A-Z]{5}):", self.stderr)
        return match[1] if match else None

    @property
    def rows(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line]


@dataclass
class Server:
    bin: Path
    root: Path
    port: int
    options: str = ""
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    pristine: list[str] = field(default_factory=list)

    @property
    def socket_dir(self) -> str:
        return str(self.root)

    def endpoint(self, **overrides: Any) -> DatabaseEndpoint:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "cidrs": ["127.0.0.1/32"],
            "admin_user": ADMIN,
            "sslmode": "disable",
        }
        values.update(overrides)
        return DatabaseEndpoint(**values)

    def psql(self, *args: str, env: Mapping[str, str], stdin: str | None = None) -> Result:
        proc = subprocess.run(
            [str(self.bin / "psql"), "--no-psqlrc", *args],
            env=clean_env(env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def superuser(self, *statements: str, db: str = "postgres") -> Result:
        """Set-up and catalog reads as the bootstrap superuser, over the unix socket;
        each statement is sent on its own (CREATE DATABASE refuses a transaction)."""
        args = ["-q", "-At", "-v", "ON_ERROR_STOP=1"]
        for statement in statements:
            args += ["-c", statement]
        result = self.psql(
            *args,
            env={"PGHOST": self.socket_dir, "PGPORT": str(self.port), "PGUSER": SUPERUSER, "PGDATABASE": db},
        )  # fmt: skip
        if not result.ok:
            raise AssertionError(f"superuser SQL failed: {result.stderr}\n{statements}")
        return result

    def connect(self, user: str, password: str, *statements: str, db: str = "support") -> Result:
        """One session over TCP as `user`: each statement in turn, stop at the first error."""
        args = ["-q", "-At", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"]
        for statement in statements:
            args += ["-c", statement]
        return self.psql(
            *args,
            env={
                "PGHOST": "127.0.0.1",
                "PGPORT": str(self.port),
                "PGUSER": user,
                "PGPASSWORD": password,
                "PGDATABASE": db,
                "PGSSLMODE": "disable",
            },
        )

    def reset(self, *databases: str) -> None:
        """`support` as seeded (plus fresh copies of `databases`); no role a test created.

        `support` is cleaned in place rather than re-created (several times faster),
        and compared with its pristine snapshot so no test sees another's leftovers.
        """
        drop = [
            f'DROP DATABASE "{name}" WITH (FORCE)'
            for name in self.superuser("SELECT datname FROM pg_database").rows
            if name not in KEEP_DATABASES | {MAIN_DB}
        ]
        if drop:
            self.superuser(*drop)
        keep = ", ".join(f"'{r}'" for r in sorted(KEEP_ROLES))
        self.superuser(
            f"""
            DO $$
            DECLARE r record;
            BEGIN
              FOR r IN SELECT rolname FROM pg_roles
                        WHERE rolname !~ '^pg_' AND rolname NOT IN ({keep}) LOOP
                EXECUTE format('DROP OWNED BY %I', r.rolname);
                EXECUTE format('DROP ROLE %I', r.rolname);
              END LOOP;
            END $$;
            DROP SCHEMA support, inventory, exports CASCADE;
            DROP FUNCTION IF EXISTS public.leak();
            SET ROLE {ADMIN};
            {SCHEMA_SQL}
            """,
            db=MAIN_DB,
        )
        assert snapshot(self) == self.pristine, "the reset left state behind"
        create = [
            f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE_DB} OWNER {ADMIN}'
            for name in databases
            if name != MAIN_DB
        ]
        if create:
            self.superuser(*create)

    def start(self) -> None:
        """Start it again after `stop`, on the same port and data (an outage ends)."""
        started = _as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-o", self.options,
             "-l", str(self.root / "server.log"), "-w", "-t", "30", "start"]
        )  # fmt: skip
        if started.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start again:\n{started.stderr}")

    def serve_pods(self, address: str, clients: str) -> None:
        """Listen on `address` too (where pods' connections arrive), with TLS on (a throwaway
        certificate: sslmode=require encrypts, it does not verify), and let `clients` (a
        range) log in with SCRAM: restarted on the same port and data."""
        from tests.certificates.issued import make_ca, make_serving

        _, ca = make_ca("agent-perimeter live database CA")
        _, leaf = make_serving(ca, dns_names=["postgres"])
        for name, pem in (("server.crt", leaf["cert_pem"]), ("server.key", leaf["key_pem"])):
            path = self.root / name
            path.write_text(pem)
            path.chmod(0o600)
            if os.geteuid() == 0:
                shutil.chown(path, "postgres", "postgres")
        with (self.root / "data" / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {clients} scram-sha-256\n")
        self.stop()
        self.options = self.options.replace(
            "listen_addresses=127.0.0.1", f"listen_addresses=127.0.0.1,{address}"
        ) + (
            f" -c ssl=on -c ssl_cert_file={self.root / 'server.crt'}"
            f" -c ssl_key_file={self.root / 'server.key'}"
        )
        self.start()

    def stop(self) -> None:
        _as_postgres(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ]
        )


def _as_postgres(command: list[str]) -> subprocess.CompletedProcess[str]:
    """initdb refuses root: run server commands as the Debian `postgres` user when root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reap_orphans(bin_dir: Path) -> None:
    """Servers of a run killed before its teardown (SIGKILL): its owner is gone, so stop
    them and remove their directories; a live run's servers are left alone."""
    for root in Path(tempfile.gettempdir()).glob(f"{PG_PREFIX}*"):
        owner = root / OWNER_FILE
        try:
            alive = Path(f"/proc/{int(owner.read_text())}").exists()
        except (OSError, ValueError):
            alive = False
        if alive:
            continue
        if (root / "data" / "postmaster.pid").exists():
            _as_postgres(
                [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "-w", "stop"]
            )
        shutil.rmtree(root, ignore_errors=True)


def _start(bin_dir: Path) -> Server:
    _reap_orphans(bin_dir)
    root = Path(tempfile.mkdtemp(prefix=PG_PREFIX))
    (root / OWNER_FILE).write_text(str(os.getpid()))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    init = _as_postgres(
        [
            str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", SUPERUSER,
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
            "--locale=C.UTF-8", "--no-sync", "--no-instructions",
        ]
    )  # fmt: skip
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
    for _ in range(5):
        port = _free_port()
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        started = _as_postgres(
            [str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-o", options,
             "-l", str(root / "server.log"), "-w", "-t", "30", "start"]
        )  # fmt: skip
        if started.returncode == 0:
            return Server(bin=bin_dir, root=root, port=port, options=options)
    log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start:\n{started.stderr}\n{log}")


@contextmanager
def running_pg() -> Iterator[Server]:
    """A seeded server (schemas, admin, analyst), stopped by PID and removed after; the
    session's `pg` fixture (tests/conftest.py) is one, a test that stops its server owns one."""
    server = _start(postgres_bin())
    try:
        server.superuser(
            f"CREATE ROLE {ADMIN} LOGIN CREATEROLE PASSWORD '{server.admin_password}'",
            f"CREATE ROLE {ANALYST} LOGIN PASSWORD 'analyst-pass'",
            f"CREATE DATABASE {TEMPLATE_DB} OWNER {ADMIN}",
        )
        server.superuser(f"SET ROLE {ADMIN}; {SCHEMA_SQL}", db=TEMPLATE_DB)
        server.superuser(f"CREATE DATABASE {MAIN_DB} TEMPLATE {TEMPLATE_DB} OWNER {ADMIN}")
        server.pristine = snapshot(server)
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


# --- applying the script exactly as the Job does ---------------------------------------------


def dev_raw() -> dict[str, Any]:
    """The dev environment's perimeter settings as written, to derive test variants from
    (without agents: variants drop servers and tools that the shipped agents name)."""
    raw = copy.deepcopy(read_stack_file(stack_file("dev"))[PERIMETER_KEY])
    raw["agents"] = []
    return raw


def make_config(raw: Mapping[str, Any]) -> PerimeterConfig:
    return PerimeterConfig.model_validate(raw)


class Passwords(dict[str, str]):
    """Role -> clear-text password, each with its own stable salt (as Pulumi state keeps it)."""

    def __init__(self) -> None:
        super().__init__()
        self.salts: dict[str, bytes] = {}

    def for_role(self, role: str) -> str:
        if role not in self:
            self[role] = secrets.token_urlsafe(24)
            self.salts[role] = secrets.token_bytes(16)
        return self[role]

    def rotate(self, role: str) -> str:
        self[role] = secrets.token_urlsafe(24)
        self.salts[role] = secrets.token_bytes(16)
        return self[role]

    def verifier(self, role: str) -> str:
        return scram_sha256_verifier(self.for_role(role), self.salts[role])


def apply(
    pg: Server,
    config: PerimeterConfig,
    database: str,
    passwords: Passwords,
    *,
    connect_to: str | None = None,
    omit_env: tuple[str, ...] = (),
    env_override: Mapping[str, str] | None = None,
    single_transaction: bool = True,
    check: bool = True,
) -> Result:
    """`role_sql` in a file, `psql_command()` on it, with the Job's environment."""
    sql = role_sql(config, database)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(sql)
        path = handle.name
    try:
        env = connection_env(pg.endpoint(), connect_to or database)
        env[ADMIN_PASSWORD_ENV] = pg.admin_password
        for spec in roles_for(config, database):
            env[spec.env_var] = passwords.verifier(spec.role)
        for name in omit_env:
            env.pop(name, None)
        env.update(env_override or {})
        argv = psql_command(path)
        assert argv[0] == "psql"
        argv = [str(pg.bin / "psql"), *argv[1:]]
        if not single_transaction:
            argv.remove("--single-transaction")
        proc = subprocess.run(argv, env=clean_env(env), capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(path)
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    if check and not result.ok:
        raise AssertionError(
            f"applying the role SQL failed ({result.returncode}):\n{result.stderr}"
        )
    return result


SNAPSHOT_SQL = """
SELECT concat_ws('|', 'role', rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb,
       rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, rolpassword, rolvaliduntil,
       shobj_description(oid, 'pg_authid'))
  FROM pg_authid WHERE rolname !~ '^pg_'
UNION ALL
SELECT concat_ws('|', 'setting', r.rolname, d.datname, array_to_string(s.setconfig, ','))
  FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
  LEFT JOIN pg_database d ON d.oid = s.setdatabase
UNION ALL
SELECT concat_ws('|', 'member', g.rolname, m.rolname)
  FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
UNION ALL
SELECT concat_ws('|', 'table', c.oid::regclass, a.grantee::regrole, a.grantor::regrole,
       a.privilege_type, a.is_grantable)
  FROM pg_class c CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
 WHERE c.relnamespace IN ('support'::regnamespace, 'inventory'::regnamespace, 'public'::regnamespace)
UNION ALL
SELECT concat_ws('|', 'column', c.oid::regclass, t.attname, a.grantee::regrole, a.privilege_type,
       a.is_grantable)
  FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid CROSS JOIN LATERAL aclexplode(t.attacl) a
 WHERE c.relnamespace IN ('support'::regnamespace, 'inventory'::regnamespace, 'public'::regnamespace)
UNION ALL
SELECT concat_ws('|', 'schema', n.nspname, a.grantee::regrole, a.privilege_type, a.is_grantable)
  FROM pg_namespace n CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
 WHERE n.nspname !~ '^(pg_|information_schema)'
UNION ALL
SELECT concat_ws('|', 'database', d.datname, a.grantee::regrole, a.privilege_type, a.is_grantable)
  FROM pg_database d CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
 WHERE NOT d.datistemplate
UNION ALL
SELECT concat_ws('|', 'rls', c.oid::regclass, c.relrowsecurity, c.relforcerowsecurity)
  FROM pg_class c
 WHERE c.relkind = 'r' AND c.relnamespace IN ('support'::regnamespace, 'inventory'::regnamespace)
UNION ALL
SELECT concat_ws('|', 'policy', schemaname, tablename, policyname, permissive, roles, cmd, qual,
       with_check)
  FROM pg_policies
ORDER BY 1
"""


def snapshot(pg: Server, db: str = "support") -> list[str]:
    """Roles, settings, memberships, grants, RLS switches and policies, as text rows
    (a NULL ACL and the explicit default it stands for compare equal)."""
    return pg.superuser(SNAPSHOT_SQL, db=db).rows


@pytest.fixture
def fresh(pg: Server) -> Server:
    """The server with the `support` database as the schema fixture left it."""
    pg.reset("support")
    return pg


def admin(pg: Server, *statements: str, db: str = "support") -> None:
    """Changes made the way a person with the admin credential would make them."""
    result = pg.connect(ADMIN, pg.admin_password, *statements, db=db)
    assert result.ok, result.stderr
