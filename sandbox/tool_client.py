"""The worker's side of the tool host (`sandbox.toolhost`): one connection per session, and
tools that look to the SDK exactly like its own but run there, away from the key."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
from anthropic.lib.environments import BetaAnyRunnableTool
from anthropic.lib.tools import BetaFunctionToolResultType, ToolError
from anthropic.lib.tools.agent_toolset import AgentToolContext, beta_agent_toolset_20260401
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from sandbox.facade import FacadeTool
from sandbox.toolhost import MAX_MESSAGE_BYTES

# Time the host gets at session end to kill what the session started and empty the workspace.
END_TIMEOUT_SECONDS = 30.0


class ToolHostError(RuntimeError):
    """The tool host cannot be reached or went away; the session cannot run tools."""


class _Pending:
    def __init__(self) -> None:
        self.done = anyio.Event()
        self.reply: dict[str, Any] = {}


class ToolHostSession:
    """One session on the tool host: its workdir there, and the calls in flight."""

    def __init__(self, stream: SocketStream) -> None:
        self._stream = stream
        self._receive = BufferedByteReceiveStream(stream)
        self._lock = anyio.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._ended = _Pending()
        self._gone: str | None = None
        self.workdir = Path()
        self.killed = 0

    @classmethod
    @asynccontextmanager
    async def open(cls, socket_path: Path, session_id: str) -> AsyncIterator[ToolHostSession]:
        try:
            stream = await anyio.connect_unix(socket_path)
        except OSError as e:
            raise ToolHostError(f"the tool host at {socket_path} is unreachable: {e}") from e
        session = cls(stream)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(session._read)
                try:
                    try:
                        begun = await session._request({"op": "begin", "session_id": session_id})
                    except ToolError as e:
                        raise ToolHostError(str(e)) from e
                    if "workdir" not in begun:
                        raise ToolHostError(f"the tool host refused the session: {begun}")
                    session.workdir = Path(begun["workdir"])
                    yield session
                finally:
                    with anyio.CancelScope(shield=True):
                        await session._end()
                    tg.cancel_scope.cancel()
        finally:
            await stream.aclose()

    async def call(self, tool: str, input: object, context: dict[str, Any]) -> Any:
        call_id = next(self._ids)
        try:
            reply = await self._request(
                {"op": "call", "tool": tool, "input": input, "context": context}, call_id
            )
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._send({"op": "cancel", "target": call_id})
            raise
        if "error" in reply:
            raise ToolError(reply["error"])
        return reply["result"]

    async def _request(self, message: dict[str, Any], call_id: int | None = None) -> dict[str, Any]:
        call_id = next(self._ids) if call_id is None else call_id
        pending = self._pending[call_id] = _Pending()
        try:
            await self._send({"id": call_id, **message})
            await pending.done.wait()
        finally:
            self._pending.pop(call_id, None)
        if self._gone is not None and not pending.reply:
            raise ToolError(f"the tool host went away: {self._gone}")
        return pending.reply

    async def _send(self, message: dict[str, Any]) -> None:
        if self._gone is not None:
            raise ToolError(f"the tool host went away: {self._gone}")
        try:
            async with self._lock:
                await self._stream.send(json.dumps(message).encode() + b"\n")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as e:
            self._lost(str(e) or type(e).__name__)
            raise ToolError(f"the tool host went away: {self._gone}") from e

    async def _read(self) -> None:
        try:
            while True:
                message = json.loads(await self._receive.receive_until(b"\n", MAX_MESSAGE_BYTES))
                if message.get("op") == "ended":
                    self._ended.reply = message
                    self._ended.done.set()
                    continue
                pending = self._pending.get(int(message.get("id") or 0))
                if pending is not None:
                    pending.reply = message
                    pending.done.set()
        except (
            anyio.EndOfStream,
            anyio.IncompleteRead,
            anyio.BrokenResourceError,
            anyio.ClosedResourceError,
            OSError,
        ) as e:
            self._lost(str(e) or "connection closed")

    def _lost(self, why: str) -> None:
        self._gone = self._gone or why
        for pending in [*self._pending.values(), self._ended]:
            pending.done.set()

    async def _end(self) -> None:
        """Ask the host to end the session, and wait until it has (processes killed, files
        removed); a host that is gone has nothing left to end."""
        if self._gone is None:
            with suppress(ToolError):
                await self._send({"op": "end"})
        with anyio.move_on_after(END_TIMEOUT_SECONDS):
            await self._ended.done.wait()
        self.killed = int(self._ended.reply.get("killed", 0))


class RemoteTool(FacadeTool):
    """An SDK tool as the agent sees it (its own name and schema), run on the tool host."""

    def __init__(
        self, local: BetaAnyRunnableTool, host: ToolHostSession, context: dict[str, Any]
    ) -> None:
        super().__init__(local)
        self._host = host
        self._context = context

    async def call(self, input: object) -> BetaFunctionToolResultType:
        result: BetaFunctionToolResultType = await self._host.call(self.name, input, self._context)
        return result

    async def aclose(self) -> None:
        # Nothing runs here; the host closes the real tool when the session ends.
        return None


def remote_toolset(
    context: AgentToolContext, host: ToolHostSession, env: dict[str, str]
) -> Sequence[BetaAnyRunnableTool]:
    """The SDK's agent toolset (its definitions, built here and never run here), each tool
    forwarded to the host with what it needs of the session's context."""
    shipped = {
        "env": env,
        "allowed_roots": [str(p) for p in context.allowed_roots],
        "read_only_roots": [str(p) for p in context.read_only_roots],
    }
    return [RemoteTool(tool, host, shipped) for tool in beta_agent_toolset_20260401(context)]
