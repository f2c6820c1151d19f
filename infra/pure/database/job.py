"""What the in-cluster role-provisioning Job runs, and the environment it needs.

The Job is the only holder of a database's admin credential. It runs one psql
against one database with the script of `infra.pure.database.sql.role_sql` mounted
from a ConfigMap. The admin password and each role's SCRAM verifier are Secret
files (never environment variables of the pod spec); `job_command` hands them
to psql as its own environment (`PGPASSWORD`, `VERIFIER_<ROLE>`), so neither is
in the script, the ConfigMap, the pod spec or the command line.
"""

from __future__ import annotations

import hashlib
import shlex

from infra.contract.names import ROLE_SQL_KEY
from infra.pure.config import DatabaseEndpoint

SQL_MOUNT_PATH = "/etc/role-sql"
SQL_FILE = f"{SQL_MOUNT_PATH}/{ROLE_SQL_KEY}"
ADMIN_PASSWORD_ENV = "PGPASSWORD"
ADMIN_PASSWORD_KEY = "password"  # key of the admin Secret mounted as PGPASSWORD
APPLICATION_NAME = "agent-perimeter-role-provisioner"
CONNECT_TIMEOUT_SECONDS = 10
MIN_PSQL_VERSION = 15  # the script reads verifiers with \getenv
SECRETS_MOUNT_PATH = "/var/run/secrets/agent-perimeter"
ADMIN_SECRET_DIR = f"{SECRETS_MOUNT_PATH}/admin"  # holds the file `password`
VERIFIERS_DIR = f"{SECRETS_MOUNT_PATH}/verifiers"  # one file per VERIFIER_<ROLE>
# The CA a database's server certificate is verified against (sslmode verify-ca/verify-full),
# from the ConfigMap `naming.database_ca_config_map(database)`; the MCP servers mount it too.
CA_MOUNT_PATH = "/etc/agent-perimeter/database-ca"
CA_FILE_KEY = "ca.crt"
CA_FILE = f"{CA_MOUNT_PATH}/{CA_FILE_KEY}"


def psql_command(sql_file: str = SQL_FILE) -> list[str]:
    """psql that stops at the first error and applies the whole script in one transaction.

    `--no-psqlrc` keeps an image's psqlrc from changing ECHO (which would print
    the verifiers) or anything else about the run.
    """
    return ["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", sql_file]


def job_command(
    sql_file: str = SQL_FILE,
    admin_dir: str = ADMIN_SECRET_DIR,
    verifiers_dir: str = VERIFIERS_DIR,
) -> list[str]:
    """`psql_command` behind a POSIX shell that reads the Secret files into psql's own
    environment: the pod spec holds no secret environment variable (CKV_K8S_35), and
    libpq has no password-file option that accepts a Secret volume's group-readable mode."""
    script = "\n".join(
        [
            "set -eu",
            f"PGPASSWORD=$(cat {shlex.quote(admin_dir)}/{ADMIN_PASSWORD_KEY})",
            "export PGPASSWORD",
            f"for file in {shlex.quote(verifiers_dir)}/VERIFIER_*; do",
            '  [ -f "$file" ] || continue',
            '  export "${file##*/}=$(cat "$file")"',
            "done",
            'exec "$@"',
        ]
    )
    return ["/bin/sh", "-c", script, "role-provisioner", *psql_command(sql_file)]


def connection_env(
    endpoint: DatabaseEndpoint, database_name: str, ca_file: str = CA_FILE
) -> dict[str, str]:
    """libpq settings of the admin connection; `PGPASSWORD` is added from the admin Secret.

    `database_name` is the key of `databases` in the config: it is both the
    database to connect to and the one the script refuses to run anywhere else.
    With a CA configured, libpq verifies the server against that file only.
    """
    env = {
        "PGHOST": endpoint.host,
        "PGPORT": str(endpoint.port),
        "PGDATABASE": database_name,
        "PGUSER": endpoint.admin_user,
        "PGSSLMODE": endpoint.sslmode,
        "PGAPPNAME": APPLICATION_NAME,
        "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
    }
    if endpoint.ca_certificate is not None:
        env["PGSSLROOTCERT"] = ca_file
    return env


def sql_checksum(sql: str) -> str:
    """sha256 of the script: put it on the Job (name or annotation) so a changed script
    re-runs the Job and an unchanged one does not."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()
