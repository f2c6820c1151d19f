"""One connection pool per tool, each opened with that tool's own role.

A handler is given only its own `ToolDatabase`, so no tool can run a query as another tool's
role. Each call is one transaction; for a tenant-bound tool the tenant is bound inside it with
`set_config(..., is_local => true)` (the `SET LOCAL` the roles' row-level security reads),
so it can never leak into the next call on the same connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from servers.runtime.contract import TENANT_SETTING, Database, ToolCredential

CONNECT_TIMEOUT_SECONDS = 3
# Inside the kubelet's 3 s probe timeout (charts/mcp-server), every pool checked at once.
READY_TIMEOUT_SECONDS = 2
STATEMENT_TIMEOUT_MS = 10_000


class ToolDatabase:
    """What a handler may do with its database: queries in the call's one transaction."""

    def __init__(self, connection: psycopg.AsyncConnection[Any]) -> None:
        self._connection = connection

    async def fetch(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        async with self._connection.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(query, params)
            return await cursor.fetchall()

    async def fetch_one(self, query: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = await self.fetch(query, params)
        return rows[0] if rows else None

    async def execute(self, query: str, params: Sequence[Any] = ()) -> int:
        """The number of rows the statement touched."""
        async with self._connection.cursor() as cursor:
            await cursor.execute(query, params)
            return cursor.rowcount


class ToolPool:
    def __init__(self, tool: str, database: Database, credential: ToolCredential) -> None:
        self.tool = tool
        self._database = database
        self._credential = credential
        self._pool = AsyncConnectionPool(
            kwargs=self._connect_kwargs,
            min_size=0,
            max_size=4,
            open=False,
            check=AsyncConnectionPool.check_connection,
            timeout=CONNECT_TIMEOUT_SECONDS,
            reconnect_timeout=CONNECT_TIMEOUT_SECONDS,
            name=f"tool-{tool}",
        )

    def _connect_kwargs(self) -> dict[str, Any]:
        database = self._database
        kwargs: dict[str, Any] = {
            "host": database.host,
            "port": database.port,
            "dbname": database.name,
            "user": self._credential.username,
            "password": self._credential.password(),
            "sslmode": database.sslmode,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": f"mcp-tool-{self.tool}",
            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        }
        if database.sslrootcert is not None:
            kwargs["sslrootcert"] = str(database.sslrootcert)
        return kwargs

    async def open(self) -> None:
        await self._pool.open(wait=False)

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def transaction(self, tenant: str | None) -> AsyncIterator[ToolDatabase]:
        async with self._pool.connection() as connection, connection.transaction():
            if tenant is not None:
                await connection.execute(
                    "SELECT pg_catalog.set_config(%s, %s, true)", (TENANT_SETTING, tenant)
                )
            yield ToolDatabase(connection)

    async def ready(self) -> bool:
        """The role can log in and run a statement now."""
        try:
            async with self._pool.connection(timeout=READY_TIMEOUT_SECONDS) as connection:
                await connection.execute("SELECT 1")
        except (psycopg.Error, OSError):  # psycopg_pool's PoolTimeout is a psycopg.Error
            return False
        return True
