"""The role script on schemas and servers as they are found in practice, on a real server.

Serial and identity columns, a hardened database (PUBLIC's CONNECT revoked, the
admin not its owner), privileges granted to everyone, tenant predicates that
must use an index, TLS verified against a CA, and the Job's own command reading
its secrets from files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.pure.config import PerimeterConfig
from infra.pure.database.job import ADMIN_PASSWORD_KEY, connection_env, job_command
from infra.pure.database.sql import roles_for
from tests.database.conftest import (
    ADMIN,
    Passwords,
    Server,
    admin,
    apply,
    clean_env,
    dev_raw,
    make_config,
)

pytestmark = pytest.mark.postgres

EXPORT = "mcp_tickets_export_ticket"
GET = "mcp_tickets_get_ticket"
DENIED = "42501"


def _config(mutate: Any = None) -> PerimeterConfig:
    raw = dev_raw()
    if mutate:
        mutate(raw)
    return make_config(raw)


# --- sequences --------------------------------------------------------------------------------

SERIAL_QUEUE = (
    "CREATE TABLE support.serial_queue (id serial PRIMARY KEY, tenant_id text NOT NULL, note text)"
)


def _export_also_to_serial_queue(raw: dict[str, Any]) -> None:
    raw["mcp_servers"][1]["tools"][1]["grants"].append(
        {
            "table": "support.serial_queue",
            "privileges": ["INSERT"],
            "columns": ["tenant_id", "note"],
        }
    )


def _sequence_usage(pg: Server, role: str, sequence: str) -> str:
    return pg.superuser(
        f"SELECT has_sequence_privilege('{role}', '{sequence}', 'USAGE')", db="support"
    ).rows[0]


def test_insert_into_serial_and_identity_tables_works_and_the_sequence_follows_the_grant(
    fresh: Server,
) -> None:
    admin(fresh, SERIAL_QUEUE)
    passwords = Passwords()
    apply(fresh, _config(_export_also_to_serial_queue), "support", passwords)
    run = lambda *sql: fresh.connect(EXPORT, passwords[EXPORT], *sql)  # noqa: E731
    assert run("INSERT INTO support.serial_queue (tenant_id, note) VALUES ('acme', 'x')").ok
    assert run("INSERT INTO support.export_queue (tenant_id, ticket_id) VALUES ('acme', 1)").ok
    # USAGE only: reading or resetting the sequence stays refused.
    assert run("SELECT last_value FROM support.serial_queue_id_seq").sqlstate == DENIED
    assert run("SELECT setval('support.serial_queue_id_seq', 1)").sqlstate == DENIED
    assert _sequence_usage(fresh, EXPORT, "support.serial_queue_id_seq") == "t"

    apply(fresh, _config(), "support", passwords)  # the INSERT grant is gone again
    assert _sequence_usage(fresh, EXPORT, "support.serial_queue_id_seq") == "f"
    refused = run("INSERT INTO support.serial_queue (tenant_id, note) VALUES ('acme', 'y')")
    assert refused.sqlstate == DENIED


# --- a hardened database ----------------------------------------------------------------------


def _on_database(name: str) -> Any:
    def mutate(raw: dict[str, Any]) -> None:
        raw["databases"] = {name: raw["databases"]["support"]}
        for server in raw["mcp_servers"]:
            if "database" in server:  # an HTTP-backed server stays without one
                server["database"] = name

    return mutate


def test_a_database_closed_to_everyone_fails_clearly_until_the_admin_may_grant_connect(
    fresh: Server,
) -> None:
    fresh.superuser(
        "CREATE DATABASE hardened TEMPLATE perimeter_template OWNER postgres",
        "REVOKE CONNECT, TEMPORARY ON DATABASE hardened FROM PUBLIC",
        f"GRANT CONNECT ON DATABASE hardened TO {ADMIN}",
    )
    config = _config(_on_database("hardened"))
    passwords = Passwords()
    failed = apply(fresh, config, "hardened", passwords, check=False)
    assert not failed.ok, "a role that cannot connect must fail the run, not warn"
    assert "the tool roles do not hold exactly what they declare" in failed.stderr
    assert f"{GET} cannot connect to database hardened" in failed.stderr
    assert "CONNECT WITH GRANT OPTION" in failed.stderr
    roles = fresh.superuser("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'mcp\\_%'").rows
    assert roles == ["0"], "nothing may be left half-applied"

    fresh.superuser(f"GRANT CONNECT ON DATABASE hardened TO {ADMIN} WITH GRANT OPTION")
    apply(fresh, config, "hardened", passwords)
    for spec in roles_for(config, "hardened"):
        logged_in = fresh.connect(
            spec.role, passwords[spec.role], "SELECT current_user", db="hardened"
        )
        assert logged_in.rows == [spec.role], logged_in.stderr


def test_a_privilege_granted_to_every_role_fails_the_verification(fresh: Server) -> None:
    admin(fresh, "GRANT SELECT ON support.export_queue TO PUBLIC")
    failed = apply(fresh, _config(), "support", Passwords(), check=False)
    assert not failed.ok
    assert f"{EXPORT} can SELECT on support.export_queue" in failed.stderr
    assert f"{GET} can SELECT on support.export_queue" in failed.stderr


# --- tenant predicates use the index ----------------------------------------------------------

ORG = "6f1c2f7e-8d3a-4b7e-9a51-0c2d4e6f8a10"


def _tenant_uuid_tool(raw: dict[str, Any]) -> None:
    raw["mcp_servers"][1]["tools"][0]["grants"].append(
        {"table": "support.accounts", "privileges": ["SELECT"]}
    )


def _plan(pg: Server, password: str, tenant: str, query: str) -> str:
    result = pg.connect(
        GET, password, "SET enable_seqscan = off", f"SET agent_perimeter.tenant = '{tenant}'",
        f"EXPLAIN (COSTS OFF) {query}",
    )  # fmt: skip
    assert result.ok, result.stderr
    return "\n".join(result.rows)


def test_the_tenant_predicate_lets_postgres_use_the_tenant_index(fresh: Server) -> None:
    admin(
        fresh,
        "CREATE INDEX tickets_tenant_idx ON support.tickets (tenant_id)",
        "CREATE TABLE support.accounts (id bigint GENERATED ALWAYS AS IDENTITY, tenant_id uuid NOT NULL, name text)",
        "CREATE INDEX accounts_tenant_idx ON support.accounts (tenant_id)",
        f"INSERT INTO support.accounts (tenant_id, name) VALUES ('{ORG}', 'mine'), (gen_random_uuid(), 'other')",
    )  # fmt: skip
    passwords = Passwords()
    apply(fresh, _config(_tenant_uuid_tool), "support", passwords)
    text_plan = _plan(fresh, passwords.for_role(GET), "acme", "SELECT subject FROM support.tickets")
    assert "tickets_tenant_idx" in text_plan, text_plan
    uuid_plan = _plan(fresh, passwords[GET], ORG, "SELECT name FROM support.accounts")
    assert "accounts_tenant_idx" in uuid_plan, uuid_plan
    assert "Index Cond: (tenant_id = " in uuid_plan, "the column itself, never a cast of it"
    assert "(tenant_id)::text" not in text_plan + uuid_plan
    rows = fresh.connect(
        GET,
        passwords[GET],
        f"SET agent_perimeter.tenant = '{ORG}'",
        "SELECT name FROM support.accounts",
    )
    assert rows.rows == ["mine"]  # fmt: skip
    unset = fresh.connect(GET, passwords[GET], "SELECT count(*) FROM support.accounts")
    assert unset.rows == ["0"], "without a tenant the tool sees no rows"


def test_a_missing_tenant_column_stops_the_run_by_name(fresh: Server) -> None:
    def wrong_column(raw: dict[str, Any]) -> None:
        raw["mcp_servers"][1]["tools"][0]["tenant_column"] = "customer_id"

    failed = apply(fresh, _config(wrong_column), "support", Passwords(), check=False)
    assert not failed.ok
    assert "table support.tickets has no column customer_id" in failed.stderr


# --- TLS verified against a CA the test generates ---------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def _make_ca(folder: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
        cwd=folder,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tls(pg: Server) -> Iterator[Path]:
    """SSL switched on for the shared server (reloaded, not restarted), off again afterwards."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is needed to generate the test CA", pytrace=False)
    folder = Path(tempfile.mkdtemp(prefix="agent-perimeter-tls-"))
    try:
        _make_ca(folder, "ca")
        _make_ca(folder, "other-ca")
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder,
        )  # fmt: skip
        (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        _openssl(
            "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=folder,
        )  # fmt: skip
        for name in ("server.crt", "server.key"):
            target = pg.root / name
            shutil.copy(folder / name, target)
            target.chmod(0o600)
            if os.geteuid() == 0:
                shutil.chown(target, "postgres", "postgres")
        pg.superuser(
            f"ALTER SYSTEM SET ssl_cert_file = '{pg.root / 'server.crt'}'",
            f"ALTER SYSTEM SET ssl_key_file = '{pg.root / 'server.key'}'",
            "ALTER SYSTEM SET ssl = on",
            "SELECT pg_reload_conf()",
        )
        for _ in range(50):
            if pg.superuser("SHOW ssl").rows == ["on"]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the server did not switch SSL on")
        yield folder
    finally:
        pg.superuser(
            "ALTER SYSTEM RESET ssl", "ALTER SYSTEM RESET ssl_cert_file",
            "ALTER SYSTEM RESET ssl_key_file", "SELECT pg_reload_conf()",
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def _tls_config(
    pg: Server, ca_pem: str, sslmode: str = "verify-full", host: str = "127.0.0.1"
) -> PerimeterConfig:
    def mutate(raw: dict[str, Any]) -> None:
        raw["databases"]["support"].update(
            host=host if host != "localhost" else "127.0.0.1", cidrs=["127.0.0.1/32"],
            sslmode=sslmode, ca_certificate=ca_pem,
        )  # fmt: skip

    return _config(mutate)


def _admin_over_tls(
    pg: Server, config: PerimeterConfig, ca_file: Path, host: str = "127.0.0.1"
) -> Any:
    """`SELECT` whether the admin session is encrypted, with exactly the Job's libpq settings."""
    env = connection_env(config.databases["support"], "support", ca_file=str(ca_file))
    env.update(PGHOST=host, PGPORT=str(pg.port), PGPASSWORD=pg.admin_password)
    return pg.psql("-At", "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", env=env)


def _ca_file(tls: Path, pem: str) -> Path:
    """The config's CA written as the ConfigMap mount would present it."""
    path = tls / "mounted-ca.crt"
    path.write_text(pem)
    return path


def test_verify_full_with_the_configured_ca_connects_encrypted_and_applies(
    fresh: Server, tls: Path
) -> None:
    config = _tls_config(fresh, (tls / "ca.crt").read_text())
    ca_file = _ca_file(tls, config.databases["support"].ca_certificate or "")
    session = _admin_over_tls(fresh, config, ca_file)
    assert session.rows == ["t"], session.stderr
    endpoint_env = connection_env(config.databases["support"], "support", ca_file=str(ca_file))
    ssl_env = {k: v for k, v in endpoint_env.items() if k.startswith("PGSSL")}
    assert ssl_env == {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": str(ca_file)}
    apply(fresh, config, "support", Passwords(), env_override=ssl_env)


@pytest.mark.parametrize(
    ("ca", "sslmode", "host", "refusal"),
    [
        ("other-ca", "verify-full", "127.0.0.1", "certificate verify failed"),
        ("other-ca", "verify-ca", "127.0.0.1", "certificate verify failed"),
        ("ca", "verify-full", "localhost", 'does not match host name "localhost"'),
    ],
    ids=["a foreign CA", "a foreign CA with verify-ca", "the wrong host name"],
)
def test_a_server_the_ca_does_not_vouch_for_is_refused(
    fresh: Server, tls: Path, ca: str, sslmode: str, host: str, refusal: str
) -> None:
    config = _tls_config(fresh, (tls / f"{ca}.crt").read_text(), sslmode)
    session = _admin_over_tls(
        fresh, config, _ca_file(tls, config.databases["support"].ca_certificate or ""), host
    )
    assert not session.ok
    assert refusal in session.stderr


def test_verify_ca_accepts_any_name_the_ca_signed(fresh: Server, tls: Path) -> None:
    config = _tls_config(fresh, (tls / "ca.crt").read_text(), "verify-ca")
    session = _admin_over_tls(
        fresh, config, _ca_file(tls, config.databases["support"].ca_certificate or ""), "localhost"
    )
    assert session.rows == ["t"], session.stderr


# --- the Job's command: secrets are files -----------------------------------------------------


def test_the_job_command_reads_the_admin_password_and_verifiers_from_files(fresh: Server) -> None:
    from infra.pure.database.sql import role_sql

    config = _config()
    passwords = Passwords()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "admin").mkdir()
        (root / "verifiers").mkdir()
        (root / "admin" / ADMIN_PASSWORD_KEY).write_text(fresh.admin_password)
        for spec in roles_for(config, "support"):
            (root / "verifiers" / spec.env_var).write_text(passwords.verifier(spec.role))
        for path in root.rglob("*"):
            path.chmod(0o440 if path.is_file() else 0o750)
        (root / "roles.sql").write_text(role_sql(config, "support"))
        env = connection_env(fresh.endpoint(), "support")
        env["PATH"] = f"{fresh.bin}:{os.environ['PATH']}"
        command = job_command(str(root / "roles.sql"), str(root / "admin"), str(root / "verifiers"))
        assert "PGPASSWORD" not in env and not any(k.startswith("VERIFIER_") for k in env)
        proc = subprocess.run(
            command, env=clean_env(env), capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert fresh.admin_password not in proc.stdout + proc.stderr
    for spec in roles_for(config, "support"):
        assert fresh.connect(spec.role, passwords[spec.role], "SELECT current_user").rows == [
            spec.role
        ]
