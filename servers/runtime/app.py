"""The runtime a server's tool handlers run in: the official MCP SDK, held to the contract.

A team writes handlers; the runtime supplies the rest:

- it refuses to start unless the handlers are exactly the tools the stack grants (MCP_TOOLS)
  and every database tool has its own role's credential;
- every request needs a bearer the platform holds (`tokens.MountedTokens`, the SDK's verifier);
- each handler gets only its own pool, its tenant bound in its transaction;
- inputs are validated by the handler's annotated schema (what `tools/list` advertises)
  before the handler runs;
- a database or backend failure is a tool error naming what could not be checked, never a
  default answer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import psycopg
import uvicorn
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from servers.runtime.backends import http_client
from servers.runtime.contract import Backend, Contract, ContractError, backend_key
from servers.runtime.database import ToolDatabase, ToolPool
from servers.runtime.tokens import MountedTokens

log = logging.getLogger("servers.runtime")

# The `_meta` key of a tools/call request that names the caller's tenant: set by whoever
# opens the session for one customer, never taken from the tool's own arguments.
TENANT_META_KEY = "agent-perimeter.io/tenant"
LIVEZ = "/livez"
READYZ = "/readyz"

Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


class ToolFailure(Exception):
    """Raise from a handler when the answer cannot be known; the caller sees 'could not check'."""


@dataclass(frozen=True)
class ToolCall:
    """What one call of one tool may use: its own database, the backends, the config files."""

    tool: str
    tenant: str | None
    database: ToolDatabase | None
    backends: Mapping[str, Backend]
    config_dir: Path | None

    @property
    def db(self) -> ToolDatabase:
        if self.database is None:
            raise ContractError(f"tool {self.tool} was declared without database access")
        return self.database

    def backend(self, name: str) -> Backend:
        try:
            return self.backends[backend_key(name)]
        except KeyError:
            raise ToolFailure(f"backend {name} is not configured for this server") from None

    def http(self, name: str) -> httpx2.AsyncClient:
        """`async with call.http("billing-api") as api: (await api.get("/v2/...")).raise_for_status()`;
        a refused, failed or non-2xx call is the tool's 'could not check' error."""
        return http_client(self.backend(name))


@dataclass(frozen=True)
class _Declared:
    name: str
    handler: Callable[..., Awaitable[Any]]
    description: str
    database: bool
    tenant: bool
    read_only: bool


class Runtime:
    """One MCP server. Declare handlers with `@runtime.tool(...)`, then `runtime.serve()`."""

    def __init__(self, name: str, instructions: str | None = None) -> None:
        self.name = name
        self.instructions = instructions
        self._declared: dict[str, _Declared] = {}

    def tool(
        self,
        name: str | None = None,
        *,
        database: bool = False,
        tenant: bool = False,
        read_only: bool = False,
    ) -> Callable[[Handler], Handler]:
        """`database`: the handler gets its own role's pool; `tenant`: the call needs the caller's
        tenant and binds it for row-level security (the stack's `tenant_column` tools)."""
        if tenant and not database:
            raise ValueError(
                "tenant=True binds the tenant in the tool's database; set database=True"
            )

        def register(handler: Handler) -> Handler:
            tool = name or handler.__name__
            if tool in self._declared:
                raise ValueError(f"tool {tool}: declared twice")
            self._declared[tool] = _Declared(
                tool, handler, inspect.getdoc(handler) or "", database, tenant, read_only
            )
            return handler

        return register

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(self._declared)

    def check(self, contract: Contract) -> dict[str, ToolPool]:
        """Every check that must hold before listening; the pools are created, not opened."""
        granted, handled = set(contract.tools), set(self._declared)
        missing = sorted(granted - handled)
        if missing:
            raise ContractError(
                f"MCP_TOOLS: the stack grants {', '.join(missing)}, which has no handler here"
            )
        extra = sorted(handled - granted)
        if extra:
            raise ContractError(
                f"MCP_TOOLS: {', '.join(extra)} has a handler but the stack grants no such tool"
            )
        pools: dict[str, ToolPool] = {}
        for declared in self._declared.values():
            if declared.database:
                credential = contract.credential(declared.name)
                assert contract.database is not None  # checked by credential()
                pools[declared.name] = ToolPool(declared.name, contract.database, credential)
        return pools

    def app(self, contract: Contract) -> Starlette:
        """The ASGI app: the SDK's streamable HTTP transport behind its bearer check."""
        pools = self.check(contract)

        @asynccontextmanager
        async def lifespan(_: MCPServer[Any]) -> AsyncIterator[None]:
            for pool in pools.values():
                await pool.open()
            try:
                yield
            finally:
                for pool in pools.values():
                    await pool.close()

        server: MCPServer[Any] = MCPServer(
            contract.server_name,
            instructions=self.instructions,
            token_verifier=MountedTokens(contract.bearer_token_dir),
            # The SDK's bearer check needs AuthSettings; this server is no OAuth resource
            # server (no metadata routes): the platform presents a static token it holds.
            auth=AuthSettings(
                issuer_url=f"https://{contract.server_name}.invalid",
                resource_server_url=None,
            ),
            lifespan=lifespan,
        )
        for declared in self._declared.values():
            server.add_tool(
                _bound(declared, pools.get(declared.name), contract),
                name=declared.name,
                description=declared.description,
                annotations=ToolAnnotations(
                    read_only_hint=declared.read_only, destructive_hint=False
                ),
            )

        @server.custom_route(LIVEZ, methods=["GET"], include_in_schema=False)
        async def livez(_: Request) -> Response:
            return PlainTextResponse("ok")

        @server.custom_route(READYZ, methods=["GET"], include_in_schema=False)
        async def readyz(_: Request) -> Response:
            answers = await asyncio.gather(*(pool.ready() for pool in pools.values()))
            waiting = [tool for tool, ready in zip(pools, answers, strict=True) if not ready]
            if waiting:
                return JSONResponse({"ready": False, "database_unreachable_for": waiting}, 503)
            return JSONResponse({"ready": True})

        return server.streamable_http_app(
            streamable_http_path=contract.path,
            stateless_http=True,
            json_response=True,
            # Reached through the tunnel's proxy under the service's name, never a browser.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            host=contract.listen_host,
        )

    def serve(self, env: Mapping[str, str] | None = None) -> None:
        """Read the contract, check it, and listen; any contract error exits non-zero first."""
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
        try:
            contract = Contract.from_environ(env)
            app = self.app(contract)
        except ContractError as error:
            log.error("refusing to start: %s", error)
            raise SystemExit(2) from None
        config = uvicorn.Config(
            app,
            host=contract.listen_host,
            port=contract.listen_port,
            ssl_certfile=str(contract.tls_cert_file) if contract.tls_cert_file else None,
            ssl_keyfile=str(contract.tls_key_file) if contract.tls_key_file else None,
            log_level="info",
            access_log=False,
            proxy_headers=False,
            server_header=False,
        )
        uvicorn.Server(config).run()


def _tenant(ctx: Context[Any]) -> str | None:
    meta = ctx.request_context.meta or {}
    value = meta.get(TENANT_META_KEY)
    return value if isinstance(value, str) and value.strip() else None


def _bound(
    declared: _Declared, pool: ToolPool | None, contract: Contract
) -> Callable[..., Awaitable[Any]]:
    """The handler as the SDK sees it: its own parameters (the schema) and the SDK's Context
    in place of the `ToolCall` it is given."""
    signature = inspect.signature(declared.handler, eval_str=True)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[0].annotation is not ToolCall:
        raise ValueError(f"tool {declared.name}: the handler's first parameter must be a ToolCall")
    schema = parameters[1:]
    for parameter in schema:
        if parameter.annotation is inspect.Parameter.empty:
            raise ValueError(f"tool {declared.name}: parameter {parameter.name} has no type")

    async def call(mcp_context: Context[Any], **arguments: Any) -> Any:
        tenant = _tenant(mcp_context) if declared.tenant else None
        if declared.tenant and tenant is None:
            raise ToolError(
                f"refused: {declared.name} needs the caller's tenant in the request's "
                f"_meta[{TENANT_META_KEY!r}]"
            )
        transaction = pool.transaction(tenant) if pool is not None else nullcontext(None)
        try:
            async with transaction as database:
                return await declared.handler(
                    ToolCall(
                        declared.name, tenant, database, contract.backends, contract.config_dir
                    ),
                    **arguments,
                )
        except (ToolFailure, psycopg.Error, httpx2.HTTPError, OSError) as error:
            reason = _reason(error)
            log.warning("tool %s: could not check: %s", declared.name, reason)
            raise ToolError(f"could not check: {reason}") from None

    context = inspect.Parameter("mcp_context", inspect.Parameter.KEYWORD_ONLY, annotation=Context)
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in schema), context]
    )
    call.__annotations__ = {
        **{p.name: p.annotation for p in schema},
        "mcp_context": Context,
        "return": Any
        if signature.return_annotation is inspect.Signature.empty
        else signature.return_annotation,
    }
    call.__name__ = declared.name
    return call


def _reason(error: Exception) -> str:
    """What could not be checked, in words that hold no secret: PostgreSQL's own (its SQLSTATE
    and primary message), a backend's status, never a connection string or a credential."""
    if isinstance(error, psycopg.Error):
        diag = error.diag
        if diag.sqlstate and diag.message_primary:
            return f"the database refused ({diag.sqlstate}): {diag.message_primary}"
        return f"the database is unreachable ({type(error).__name__})"
    if isinstance(error, httpx2.HTTPStatusError):
        return f"a backend answered {error.response.status_code}"
    if isinstance(error, httpx2.HTTPError):
        return f"a backend could not be reached ({type(error).__name__})"
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error)  # ToolFailure: the handler's own words
