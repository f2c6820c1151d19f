"""The tool host: the SDK's agent tools, run in a container of their own under their own user.

Why a second container: Pod Security `restricted` cannot give one container two users, and the
code a tool runs (bash above all) can read whatever its user can. The worker's container holds
the environment key; this one has no key mount, no service-account token and a PID namespace of
its own (the pod does not share one), so neither the key file nor `/proc/<worker>` exists where
tools run. The worker reaches the host over a Unix socket in an emptyDir both mount.

Why a subreaper: every process a session starts (`setsid`, `nohup`, a double fork) is
reparented to this process when its parent exits, so at session end every descendant is found
and killed with SIGKILL, which nothing can ignore. A process group or session would not do:
`setsid` leaves both. In the pod this process is also PID 1 of its namespace.

One connection is one session: the worker opens it when a session starts, sends tool calls on
it, and closes it (or dies) when the session ends; either way the host then kills everything
the session started and empties the workspace and scratch directories.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import inspect
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import anyio
from anthropic.lib.tools import ToolError
from anthropic.lib.tools._beta_functions import aclose_runnable_tool
from anthropic.lib.tools.agent_toolset import AgentToolContext, beta_agent_toolset_20260401
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from sandbox.workspace import empty, session_workspace

log = logging.getLogger("sandbox.toolhost")

# A whole `read` result (an image block is up to 5 MiB of base64) fits in one message.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_PR_SET_CHILD_SUBREAPER = 36

Reply = Callable[[dict[str, Any]], Awaitable[None]]


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def descendants(root: int) -> set[int]:
    """Every live or zombie process under `root`, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_descendants(timeout: float = 10.0) -> int:
    """SIGKILL every descendant until none is left (a fork racing the kill is caught by the
    next round, being reparented here); the number of processes killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        _reap()
        pids = descendants(os.getpid())
        if not pids:
            return len(killed)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes survived the session's end: {sorted(pids)}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        time.sleep(0.02)


def _jsonable(value: object) -> object:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON")


class HostedSession:
    """One session's tools, built on its first call from the context the worker sends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._tools: dict[str, Any] | None = None

    def tools(self, context: dict[str, Any]) -> dict[str, Any]:
        if self._tools is None:
            ctx = AgentToolContext(
                workdir=self.workdir,
                env=dict(context.get("env") or {}),
                allowed_roots=[Path(p) for p in context.get("allowed_roots", [])],
                read_only_roots=[Path(p) for p in context.get("read_only_roots", [])],
            )
            self._tools = {tool.name: tool for tool in beta_agent_toolset_20260401(ctx)}
        return self._tools

    async def close(self) -> None:
        for tool in (self._tools or {}).values():
            try:
                await aclose_runnable_tool(tool)
            except Exception as e:
                log.error("closing tool %s failed: %s", tool.name, e)


class ToolHost:
    def __init__(self, socket_path: Path, workspace: Path, scratch_dirs: Iterable[Path]) -> None:
        self.socket_path = socket_path
        self.workspace = workspace
        self.scratch_dirs = tuple(scratch_dirs)
        self._draining = False
        self._in_session = False

    def reset(self) -> int:
        """Nothing of a session survives it: its processes, then its files."""
        killed = kill_descendants()
        empty([self.workspace, *self.scratch_dirs])
        return killed

    async def serve(self) -> None:
        self.reset()
        self.socket_path.unlink(missing_ok=True)
        listener = await anyio.create_unix_listener(self.socket_path)
        # The worker's user reaches it through the shared group (the pod's fsGroup).
        os.chmod(self.socket_path, 0o660)
        log.info("serving tools on %s", self.socket_path)
        async with listener, anyio.create_task_group() as tg:
            tg.start_soon(self._on_sigterm, tg.cancel_scope)
            # One session at a time: a second connection waits until the first has ended.
            while not self._draining:
                stream = await listener.accept()
                self._in_session = True
                try:
                    with anyio.CancelScope(shield=True):
                        await self._session(stream)
                finally:
                    self._in_session = False
            tg.cancel_scope.cancel()
        log.info("drained; exiting")

    async def _on_sigterm(self, serving: anyio.CancelScope) -> None:
        # The worker drains on the same SIGTERM: a session in flight ends first, then both go.
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                self._draining = True
                if not self._in_session:
                    serving.cancel()

    async def _session(self, stream: SocketStream) -> None:
        receive = BufferedByteReceiveStream(stream)
        lock = anyio.Lock()
        scopes: dict[int, anyio.CancelScope] = {}
        session: HostedSession | None = None

        async def reply(message: dict[str, Any]) -> None:
            async with lock:
                await stream.send(json.dumps(message, default=_jsonable).encode() + b"\n")

        try:
            async with anyio.create_task_group() as tg:
                while True:
                    try:
                        line = await receive.receive_until(b"\n", MAX_MESSAGE_BYTES)
                    except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                        break
                    message = json.loads(line)
                    op = message.get("op")
                    if op == "begin":
                        workdir = session_workspace(self.workspace, str(message["session_id"]))
                        session = HostedSession(workdir)
                        log.info("session begun session_id=%s", message["session_id"])
                        await reply({"id": message["id"], "workdir": str(workdir)})
                    elif op == "call" and session is not None:
                        tg.start_soon(self._call, session, message, scopes, reply)
                    elif op == "cancel":
                        scope = scopes.get(int(message["target"]))
                        if scope is not None:
                            scope.cancel()
                    elif op == "end":
                        break
                    else:
                        await reply({"id": message.get("id"), "error": f"unexpected op {op!r}"})
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                if session is not None:
                    await session.close()
                killed = self.reset()
                log.info("session ended; %d processes killed, workspace emptied", killed)
                with contextlib.suppress(
                    anyio.BrokenResourceError, anyio.ClosedResourceError, OSError
                ):
                    await reply({"op": "ended", "killed": killed})
                await stream.aclose()

    async def _call(
        self,
        session: HostedSession,
        message: dict[str, Any],
        scopes: dict[int, anyio.CancelScope],
        reply: Reply,
    ) -> None:
        call_id = int(message["id"])
        name = str(message["tool"])
        answer: dict[str, Any] = {"id": call_id, "error": f"{name}: cancelled"}
        with anyio.CancelScope() as scope:
            scopes[call_id] = scope
            try:
                tool = session.tools(message.get("context") or {}).get(name)
                if tool is None:
                    raise ToolError(f"no tool named {name!r}")
                result = tool.call(message.get("input") or {})
                if inspect.isawaitable(result):
                    result = await result
                answer = {"id": call_id, "result": result}
            except ToolError as e:
                answer = {"id": call_id, "error": e.content}
            except Exception as e:
                answer = {"id": call_id, "error": f"{name}: {e}"}
        scopes.pop(call_id, None)
        await reply(answer)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sandbox.toolhost",
        description="Run the sessions' tools for the worker, away from its key.",
    )
    p.add_argument("--socket", type=Path, required=True)
    p.add_argument("--workspace", type=Path, default=Path("/workspace"))
    p.add_argument("--scratch-dir", action="append", type=Path, default=[])
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    # Files a tool writes stay the worker's to read and remove (the shared group).
    os.umask(0o007)
    become_subreaper()
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(ToolHost(args.socket, args.workspace, args.scratch_dir).serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
