"""What a running MCP server advertises (`tools/list`) against what its stack grants and its
agents allowlist: the three must be one list, or a tool is unusable, unguarded or unowned.

The server is asked through the official `mcp` client with the platform's bearer (read from a
file, never an argument) and, for HTTPS, the upstream CA; nothing else is sent.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from infra.pure.agent import agent_tools
from infra.pure.config import PerimeterConfig

if TYPE_CHECKING:
    from mcp import Client

T = TypeVar("T")


class AdvertisedError(Exception):
    """The server could not be asked (unreachable, refused, not MCP): named, never guessed."""


@dataclass(frozen=True)
class ToolLists:
    server: str
    granted: tuple[str, ...]
    allowlisted: frozenset[str]
    advertised: tuple[str, ...]

    @property
    def problems(self) -> list[str]:
        granted, advertised = set(self.granted), set(self.advertised)
        found = [
            f"{self.server}: granted but not advertised: {t}" for t in sorted(granted - advertised)
        ]
        found += [
            f"{self.server}: advertised but not granted: {t}" for t in sorted(advertised - granted)
        ]
        found += [
            f"{self.server}: granted but no agent allowlists it: {t}"
            for t in sorted(granted - self.allowlisted)
        ]
        return found


def expected_tools(config: PerimeterConfig, server: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """(granted, allowlisted): the server's tools, and those some agent allows."""
    granted = tuple(t.name for t in config.server(server).tools)
    allowed = {
        tool.name
        for agent in config.agents
        for used, tools in agent_tools(config, agent)
        if used.name == server
        for tool in tools
    }
    return granted, frozenset(allowed)


def advertised_tools(
    url: str, bearer_file: Path, ca_file: Path | None, timeout: float = 30
) -> tuple[str, ...]:
    try:
        bearer = bearer_file.read_text().strip()
    except OSError as error:
        raise AdvertisedError(
            f"--bearer-file: {bearer_file} is not readable ({error.strerror})"
        ) from None
    verify: ssl.SSLContext | bool = True
    if ca_file is not None:
        try:
            verify = ssl.create_default_context(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as error:
            raise AdvertisedError(f"--ca-file: {ca_file} is not a readable CA ({error})") from None
    return in_own_loop(_list_tools(url, bearer, verify, timeout))


@asynccontextmanager
async def mcp_session(
    url: str, bearer: str, verify: ssl.SSLContext | bool, timeout: float = 30
) -> AsyncIterator[Client]:
    """The official client over streamable HTTP, presenting the platform's bearer (the SDK is
    imported here: only `audit --tools` needs it)."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(
            verify=verify,
            headers={"Authorization": f"Bearer {bearer}"},
            timeout=httpx2.Timeout(timeout),
        ) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def _list_tools(
    url: str, bearer: str, verify: ssl.SSLContext | bool, timeout: float
) -> tuple[str, ...]:
    try:
        async with mcp_session(url, bearer, verify, timeout) as client:
            return tuple(t.name for t in (await client.list_tools()).tools)
    except Exception as error:  # the client wraps transport failures in groups and its own types
        raise AdvertisedError(f"{url}: could not list its tools ({_reason(error)})") from None


def _reason(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` without replacing the thread's current loop: the Pulumi SDK's offline
    synthesis keeps one there, which `asyncio.run` would orphan unclosed."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def compare_tools(
    config: PerimeterConfig, server: str, url: str, bearer_file: Path, ca_file: Path | None
) -> ToolLists:
    if server not in {s.name for s in config.mcp_servers}:
        declared = ", ".join(s.name for s in config.mcp_servers)
        raise AdvertisedError(f"--tools: {server!r} is not an MCP server of the stack ({declared})")
    if not url.startswith(("https://", "http://")):
        raise AdvertisedError(f"--tools: {url!r} is not an http(s) URL")
    granted, allowlisted = expected_tools(config, server)
    return ToolLists(server, granted, allowlisted, advertised_tools(url, bearer_file, ca_file))


def render_tool_lists(item: ToolLists) -> str:
    lines = [f"| {item.server}: tool | granted | allowlisted | advertised |", "|---|---|---|---|"]
    for tool in sorted({*item.granted, *item.advertised}):
        marks = [tool in item.granted, tool in item.allowlisted, tool in item.advertised]
        lines.append(f"| {tool} | " + " | ".join("yes" if m else "**no**" for m in marks) + " |")
    if item.problems:
        lines += ["", *(f"- {p}" for p in item.problems)]
    else:
        lines += ["", "Every tool is granted, allowlisted and advertised."]
    return "\n".join(lines) + "\n"
