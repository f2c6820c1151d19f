"""The pool's worker: the SDK's poller and `EnvironmentWorker.handle_item`, one session at a time.

The poll loop is ours (the SDK's `poller`, so claiming and acking are the SDK's) because the
limits sit around each claimed item: a fresh workspace and a fresh `EnvironmentWorker` bound to
it, a deadline, the wrapped tools. `handle_item` heartbeats the lease and force-stops the work
item whenever it returns or is cancelled, so stopping a session is cancelling it.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, cast

import anyio
from anthropic import AsyncAnthropic, DefaultAsyncHttpxClient
from anthropic.lib.tools.agent_toolset import AgentToolContext
from anthropic.types.beta.environments import BetaSelfHostedWork

from sandbox.guard import SessionGuard
from sandbox.health import Health
from sandbox.settings import Settings
from sandbox.tool_client import ToolHostError, ToolHostSession, remote_toolset
from sandbox.workspace import empty, tool_environment

log = logging.getLogger("sandbox.worker")


def platform_client(health: Health, environment_key: str) -> AsyncAnthropic:
    """The SDK client, noting every answered poll for the readiness probe."""

    async def note_poll(response: Any) -> None:
        if response.request.url.path.endswith("/work/poll") and response.is_success:
            health.poll_served()

    return AsyncAnthropic(
        auth_token=environment_key,
        http_client=DefaultAsyncHttpxClient(event_hooks={"response": [note_poll]}),
    )


class PoolWorker:
    def __init__(self, settings: Settings, client: AsyncAnthropic, health: Health) -> None:
        self.settings = settings
        self.client = client
        self.health = health
        self._poll_scope: anyio.CancelScope | None = None

    async def run(self) -> None:
        """Serve sessions until SIGTERM/SIGINT, then finish the session in flight and return."""
        # A restarted container finds the scratch of the session it died in (the tool host
        # empties the workspace and its own scratch).
        empty(self.settings.scratch_dirs)
        self.health.loop_running = True
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._tick)
                tg.start_soon(self._on_signals)
                await self._poll()
                tg.cancel_scope.cancel()
        finally:
            self.health.loop_running = False

    def drain(self) -> None:
        """Take no more work; a session in flight runs on to its end or its deadline."""
        if self.health.draining:
            return
        self.health.draining = True
        if self.health.in_session:
            log.info("draining: finishing the session in flight, then exiting")
        else:
            log.info("draining: idle, exiting")
            if self._poll_scope is not None:
                self._poll_scope.cancel()

    async def _poll(self) -> None:
        s = self.settings
        with anyio.CancelScope() as self._poll_scope:
            # Typed as an iterator; it is the async generator `aiter_work`, closed on exit.
            poller = cast(
                AsyncGenerator[BetaSelfHostedWork, None],
                self.client.beta.environments.work.poller(
                    environment_id=s.environment_id,
                    environment_key=s.environment_key,
                    # Each item's `handle_item` force-stops it; the poller must not stop it again.
                    auto_stop=False,
                ),
            )
            async with aclosing(poller) as items:
                async for item in items:
                    self.health.in_session = True
                    try:
                        await self._serve(item)
                    finally:
                        self.health.in_session = False
                    if self.health.draining:
                        break
        log.info("poll loop finished")

    async def _serve(self, item: BetaSelfHostedWork) -> None:
        work_type: str = item.data.type
        if work_type != "session":
            # The queue also sends e.g. healthcheck items; the SDK's own loop stops them unrun.
            log.info("stopping a non-session work item work_id=%s type=%s", item.id, work_type)
            await self._force_stop(item)
            return
        s = self.settings
        session_id = item.data.id
        guard = SessionGuard(
            session_id=session_id,
            run_timeout_seconds=s.run_timeout_seconds,
            max_tool_calls=s.max_tool_calls,
        )
        try:
            # Leaving this block ends the session on the tool host: every process it started
            # is killed and the workspace emptied, however the session ended.
            async with ToolHostSession.open(s.tool_socket, session_id) as host:
                await self._run(item, guard, host)
        except ToolHostError as e:
            log.error("no tool host for session_id=%s work_id=%s: %s", session_id, item.id, e)
            await self._force_stop(item)
            return
        finally:
            empty(s.scratch_dirs)
        if guard.stop_reason == "tool_call_cap":
            log.warning(
                "tool-call cap of %d reached; session stopped session_id=%s work_id=%s",
                s.max_tool_calls,
                session_id,
                item.id,
            )
        elif guard.timed_out:
            log.warning(
                "run timeout of %gs reached; session force-stopped session_id=%s work_id=%s",
                s.run_timeout_seconds,
                session_id,
                item.id,
            )
        else:
            log.info(
                "session ended session_id=%s work_id=%s tool_calls=%d",
                session_id,
                item.id,
                guard.tool_calls,
            )

    async def _run(
        self, item: BetaSelfHostedWork, guard: SessionGuard, host: ToolHostSession
    ) -> None:
        s = self.settings
        session_id = guard.session_id
        workdir = host.workdir
        log.info(
            "serving session session_id=%s work_id=%s workdir=%s run_timeout=%gs max_tool_calls=%d",
            session_id,
            item.id,
            workdir,
            s.run_timeout_seconds,
            s.max_tool_calls,
        )

        def tools(context: AgentToolContext) -> list[Any]:
            # `env` replaces the bash tool's default environment outright.
            env = tool_environment(workdir, s.tool_env, os.environ)
            return guard.wrap(remote_toolset(context, host, env))

        worker = self.client.beta.environments.work.worker(
            environment_id=item.environment_id,
            environment_key=s.environment_key,
            tools=tools,
            workdir=workdir,
            max_idle=s.max_idle_seconds,
        )
        try:
            with guard.enforce():
                await worker.handle_item(
                    work_id=item.id,
                    environment_id=item.environment_id,
                    session_id=session_id,
                    environment_key=s.environment_key,
                    work_secret=item.secret,
                )
        except Exception as e:
            log.error(
                "session failed session_id=%s work_id=%s error=%s", session_id, item.id, _causes(e)
            )

    async def _force_stop(self, item: BetaSelfHostedWork) -> None:
        try:
            await self.client.beta.environments.work.stop(
                item.id, environment_id=item.environment_id, force=True
            )
        except Exception as e:
            log.error("force-stop failed work_id=%s error=%s", item.id, e)

    async def _tick(self) -> None:
        while True:
            self.health.tick()
            await anyio.sleep(1.0)

    async def _on_signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("received %s", signal.Signals(signum).name)
                self.drain()


def _causes(exc: BaseException) -> str:
    inner = getattr(exc, "exceptions", None)
    return "; ".join(_causes(e) for e in inner) if inner else str(exc)
