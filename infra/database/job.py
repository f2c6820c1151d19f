"""What the in-cluster role-provisioning Job runs, and the environment it needs.

The Job is the only holder of a database's admin credential. It runs one psql
against one database with the script of `infra.database.sql.role_sql` mounted
from a ConfigMap; the admin password comes from a Secret (`PGPASSWORD`) and
each role's SCRAM verifier from another (`VERIFIER_<ROLE>`), so neither is in
the script, the ConfigMap or the command line.
"""

from __future__ import annotations

import hashlib

from infra.config import DatabaseEndpoint

SQL_MOUNT_PATH = "/etc/role-sql"
SQL_FILE_KEY = "roles.sql"
SQL_FILE = f"{SQL_MOUNT_PATH}/{SQL_FILE_KEY}"
ADMIN_PASSWORD_ENV = "PGPASSWORD"
ADMIN_PASSWORD_KEY = "password"  # key of the admin Secret mounted as PGPASSWORD
APPLICATION_NAME = "agent-perimeter-role-provisioner"
CONNECT_TIMEOUT_SECONDS = 10
MIN_PSQL_VERSION = 15  # the script reads verifiers with \getenv


def psql_command(sql_file: str = SQL_FILE) -> list[str]:
    """psql that stops at the first error and applies the whole script in one transaction.

    `--no-psqlrc` keeps an image's psqlrc from changing ECHO (which would print
    the verifiers) or anything else about the run.
    """
    return ["psql", "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-f", sql_file]


def connection_env(endpoint: DatabaseEndpoint, database_name: str) -> dict[str, str]:
    """libpq settings of the admin connection; `PGPASSWORD` is added from the admin Secret.

    `database_name` is the key of `databases` in the config: it is both the
    database to connect to and the one the script refuses to run anywhere else.
    """
    return {
        "PGHOST": endpoint.host,
        "PGPORT": str(endpoint.port),
        "PGDATABASE": database_name,
        "PGUSER": endpoint.admin_user,
        "PGSSLMODE": endpoint.sslmode,
        "PGAPPNAME": APPLICATION_NAME,
        "PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
    }


def sql_checksum(sql: str) -> str:
    """sha256 of the script: put it on the Job (name or annotation) so a changed script
    re-runs the Job and an unchanged one does not."""
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()
