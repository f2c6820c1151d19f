"""A server that cannot honour its contract exits non-zero before listening, naming the
variable and the path; and a role used for another tool's work is refused by PostgreSQL."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from servers.runtime import contract
from tests.servers.conftest import MODULE, Exports
from tests.servers.harness import (
    ServerFiles,
    credential_files,
    free_port,
    run_to_exit,
    write_secret,
)
from tests.servers.test_exports_server import ACME_CUSTOMER, call, error

pytestmark = pytest.mark.postgres

Env = dict[str, str]


@pytest.fixture
def laid_out(exports: Exports, tmp_path: Path) -> Iterator[tuple[ServerFiles, Env, int]]:
    files = exports.files(tmp_path)
    port = free_port()
    yield files, exports.env(files, port), port


def _unreadable_key(files: ServerFiles, env: Env) -> str:
    Path(env[contract.TLS_KEY_FILE]).unlink()
    return f"{contract.TLS_KEY_FILE}: {env[contract.TLS_KEY_FILE]} is not a readable file"


def _tool_without_credential(files: ServerFiles, env: Env) -> str:
    shutil.rmtree(Path(env[contract.DATABASE_CREDENTIALS_DIR]) / "..data" / "retry_export_job")
    return f"{contract.DATABASE_CREDENTIALS_DIR}: {env[contract.DATABASE_CREDENTIALS_DIR]}/retry_export_job/username"


def _granted_without_handler(files: ServerFiles, env: Env) -> str:
    env[contract.TOOLS] += ",cancel_export_job"
    return f"{contract.TOOLS}: the stack grants cancel_export_job, which has no handler"


def _handler_not_granted(files: ServerFiles, env: Env) -> str:
    env[contract.TOOLS] = "get_latest_export_job,retry_export_job"
    return (
        f"{contract.TOOLS}: get_export_download_url has a handler but the stack grants no such tool"
    )


def _no_token_directory(files: ServerFiles, env: Env) -> str:
    shutil.rmtree(env[contract.BEARER_TOKEN_DIR])
    return (
        f"{contract.BEARER_TOKEN_DIR}: {env[contract.BEARER_TOKEN_DIR]} is not a readable directory"
    )


def _no_database_credentials(files: ServerFiles, env: Env) -> str:
    del env[contract.DATABASE_CREDENTIALS_DIR]
    return f"{contract.DATABASE_CREDENTIALS_DIR}: not set, but tool get_latest_export_job uses the database"


def _bad_listen_address(files: ServerFiles, env: Env) -> str:
    env[contract.LISTEN_ADDR] = "8080"
    return f"{contract.LISTEN_ADDR}: '8080' is not [host]:port"


def _verify_without_ca(files: ServerFiles, env: Env) -> str:
    env[contract.DATABASE_SSLMODE] = "verify-full"
    return (
        f"{contract.DATABASE_SSLROOTCERT}: not set, but {contract.DATABASE_SSLMODE} is verify-full"
    )


BROKEN: list[Callable[[ServerFiles, Env], str]] = [
    _unreadable_key,
    _tool_without_credential,
    _granted_without_handler,
    _handler_not_granted,
    _no_token_directory,
    _no_database_credentials,
    _bad_listen_address,
    _verify_without_ca,
]


@pytest.mark.parametrize("breaks", BROKEN, ids=lambda f: f.__name__.strip("_"))
def test_a_broken_contract_refuses_to_start(
    laid_out: tuple[ServerFiles, Env, int], breaks: Callable[[ServerFiles, Env], str]
) -> None:
    files, env, port = laid_out
    expected = breaks(files, env)
    result = run_to_exit(MODULE, env)
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert f"refusing to start: {expected}" in output
    assert "Traceback" not in output
    with socket.socket() as probe:  # never listened
        assert probe.connect_ex(("127.0.0.1", port)) != 0


# Each tool's role tried on the other tools' operations, as PostgreSQL answers them.
OTHER_TOOLS_WORK = {
    "mcp_exports_get_latest_export_job": [
        "INSERT INTO exports.retry_queue (tenant_id, job_id, attempt) VALUES ('acme', 'exp_A00000000002', 1)",
        "SELECT object_key FROM exports.jobs",
    ],
    "mcp_exports_retry_export_job": [
        "SELECT object_key FROM exports.jobs",
        "SELECT failure FROM exports.jobs",
        "UPDATE exports.jobs SET status = 'queued'",
    ],
    "mcp_exports_get_export_download_url": [
        "SELECT failure FROM exports.jobs",
        "INSERT INTO exports.retry_queue (tenant_id, job_id, attempt) VALUES ('acme', 'exp_A00000000002', 1)",
    ],
}


@pytest.mark.parametrize(
    ("role", "statement"),
    [(role, s) for role, statements in OTHER_TOOLS_WORK.items() for s in statements],
    ids=lambda v: v[:40],
)
def test_a_tools_role_cannot_do_another_tools_work(
    exports: Exports, role: str, statement: str
) -> None:
    result = exports.pg.connect(
        role, exports.passwords.for_role(role), "SET agent_perimeter.tenant = 'acme'", statement
    )
    assert not result.ok and result.sqlstate == "42501", result.stderr
    assert "permission denied" in result.stderr


def test_a_handler_on_the_wrong_role_gets_postgresqls_refusal(
    exports: Exports, tmp_path: Path
) -> None:
    """A mount mix-up (the download tool's role under the latest-job tool): the tool error
    is PostgreSQL's own permission denied, not an empty answer."""
    credentials = exports.credentials()
    credentials["get_latest_export_job"] = credentials["get_export_download_url"]

    def mix_up(files: ServerFiles) -> None:
        write_secret(files.path("database-credentials"), credential_files(credentials))

    with exports.serve(mix_up) as running:
        message = error(call(running, "get_latest_export_job", {"customer_id": ACME_CUSTOMER}))
    assert (
        "could not check: the database refused (42501): permission denied for table jobs" in message
    )
