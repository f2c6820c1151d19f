"""Per-session limits: a hard deadline and a tool-call cap, enforced around every tool call.

The SDK runs each tool call inside a shielded scope (a result is always posted), so cancelling
the session from outside waits for the call in flight, up to the SDK's own per-call timeout.
Every tool is therefore wrapped: the wrapper bounds the call by the session's deadline itself,
and refuses the call after the cap. Either way the agent gets a tool error saying why, and the
guard asks the worker to stop the session, which the SDK then force-stops.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import anyio
from anthropic.lib.environments import BetaAnyRunnableTool
from anthropic.lib.tools import (
    BetaBuiltinFunctionTool,
    BetaFunctionTool,
    BetaFunctionToolResultType,
    ToolError,
)
from anthropic.lib.tools._beta_functions import aclose_runnable_tool

from sandbox.facade import FacadeTool


class SessionGuard:
    """One session's limits and why it was stopped, if it was."""

    def __init__(self, *, session_id: str, run_timeout_seconds: float, max_tool_calls: int) -> None:
        self.session_id = session_id
        self.run_timeout_seconds = run_timeout_seconds
        self.max_tool_calls = max_tool_calls
        self.deadline = anyio.current_time() + run_timeout_seconds
        self.tool_calls = 0
        self.stop_reason: str | None = None
        self._scope: anyio.CancelScope | None = None

    def enforce(self) -> anyio.CancelScope:
        """The scope the whole session runs in: cancelled at the deadline or on `stop`."""
        self._scope = anyio.CancelScope(deadline=self.deadline)
        return self._scope

    @property
    def timed_out(self) -> bool:
        return self.stop_reason == "timeout" or anyio.current_time() >= self.deadline

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if self._scope is not None:
            self._scope.cancel()

    def admit(self) -> None:
        """Count one tool call; past the cap, refuse it and stop the session."""
        if self.tool_calls >= self.max_tool_calls:
            self.stop("tool_call_cap")
            raise ToolError(
                f"tool-call cap reached: this session may make {self.max_tool_calls} tool calls "
                "and has made them all; the session is being stopped"
            )
        self.tool_calls += 1

    def timeout_error(self) -> ToolError:
        self.stop("timeout")
        return ToolError(
            f"run timeout reached: this session may run {self.run_timeout_seconds:g}s; "
            "the tool call was cancelled and the session is being stopped"
        )

    def wrap(self, tools: Sequence[BetaAnyRunnableTool]) -> list[BetaAnyRunnableTool]:
        return [LimitedTool(tool, self) for tool in tools]


class LimitedTool(FacadeTool):
    """A tool as the agent sees it (same name and schema), counted and bounded by its guard."""

    def __init__(self, inner: BetaAnyRunnableTool, guard: SessionGuard) -> None:
        super().__init__(inner)
        self._inner = inner
        self._guard = guard

    async def call(self, input: object) -> BetaFunctionToolResultType:
        self._guard.admit()
        with anyio.CancelScope(deadline=self._guard.deadline):
            if isinstance(self._inner, BetaFunctionTool | BetaBuiltinFunctionTool):
                return await anyio.to_thread.run_sync(
                    self._inner.call, input, abandon_on_cancel=True
                )
            result = self._inner.call(input)
            return await result if inspect.isawaitable(result) else result
        raise self._guard.timeout_error()

    async def aclose(self) -> None:
        # The SDK drives this on the runner's cleanup path; the inner tool (bash keeps a
        # shell open) needs the same cleanup it would get unwrapped.
        await aclose_runnable_tool(self._inner)
