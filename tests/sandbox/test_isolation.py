"""What a session's code can reach and leave behind, tried from inside a session: tools run on
the tool host (another user, as the chart's tools container), the key stays with the worker."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from .attempts import (
    COUNT,
    ENVIRONMENT_KEY,
    ESCAPES,
    ESCAPES_RUNNING,
    LONG_CALL,
    key_attempts,
    leaked,
)
from .conftest import TOOLS_UID, Worker
from .platform import FakePlatform, result_text


def processes_of(uid: int) -> dict[int, str]:
    """Every process of `uid` on this machine, by PID, with its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
    return found


def test_no_way_a_tool_tries_yields_the_key(
    platform: FakePlatform, start_worker: Callable[..., Worker], tmp_path: Path
) -> None:
    worker = start_worker()
    pid = worker.process.pid
    key_path = tmp_path / "secret" / "key"
    attempts = key_attempts(str(key_path), pid, search_root="/tmp")
    session = platform.queue_session([("bash", {"command": c}) for c in attempts.values()])
    platform.wait_stopped(session)

    results = dict(zip(attempts, map(result_text, platform.tool_results(session)), strict=True))
    assert "/proc/self/mountinfo" not in results["every mount"] and results["every mount"]
    assert results["every process"], "the tool could not even read its own processes"
    assert leaked(results) == [], f"a tool read the environment key through: {leaked(results)}"
    assert results["who am I"].strip() == str(TOOLS_UID), "tools must not run as the worker"
    assert worker.terminate() == 0
    assert ENVIRONMENT_KEY not in worker.tools.log()


def test_nothing_a_session_starts_outlives_it(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    first = platform.queue_session([("bash", {"command": c}) for c in [*ESCAPES, ESCAPES_RUNNING]])
    second = platform.queue_session([("bash", {"command": COUNT})])
    worker = start_worker()
    platform.wait_stopped(first)
    running = int(result_text(platform.tool_results(first)[-1]).split()[-1])
    assert running >= 4, "the session's background processes never started"
    platform.wait_stopped(second)

    assert result_text(platform.tool_results(second)[0]).strip() == "0", (
        "the next session still shares the runner with the first one's processes"
    )
    worker.wait_for(lambda: worker.tools.log().count("session ended") == 2, "both sessions' end")
    host_pid = worker.tools.process.pid
    left = {p: c for p, c in processes_of(TOOLS_UID).items() if p != host_pid}
    assert left == {}, f"processes outlived their session: {left}"
    assert worker.terminate() == 0
    assert "processes killed" in worker.tools.log()


def test_a_tool_call_cut_off_at_the_deadline_leaves_nothing_running(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    session = platform.queue_session([("bash", {"command": LONG_CALL})], end="hold")
    worker = start_worker(run_timeout_seconds=3)
    platform.wait_stopped(session, timeout=30)

    (result,) = platform.tool_results(session)
    assert result["is_error"] is True and "run timeout reached" in result_text(result)
    worker.wait_for(lambda: "processes killed" in worker.tools.log(), "the session's end")
    host_pid = worker.tools.process.pid
    assert {p for p in processes_of(TOOLS_UID) if p != host_pid} == set()
    assert worker.terminate() == 0


def test_the_worker_without_its_tool_host_refuses_the_session_and_says_why(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker()
    worker.wait_for(lambda: bool(platform.received("GET", "/work/poll")), "a first poll")
    worker.tools.process.kill()
    worker.tools.process.wait(10)
    os.unlink(worker.tools.socket)
    session = platform.queue_session([("bash", {"command": "true"})])
    platform.wait_stopped(session)

    assert platform.tool_results(session) == []
    assert [s.body for s in platform.stops(session)] == [{"force": True}]
    worker.wait_for(lambda: "no tool host for session_id" in worker.log(), "the refusal")
    assert worker.terminate() == 0
