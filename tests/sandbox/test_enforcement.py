"""Each limit, as the platform sees it: the real worker process, the real SDK client, a loopback
platform that records every request."""

from __future__ import annotations

import time
from collections.abc import Callable

from .attempts import ENVIRONMENT_KEY
from .conftest import Worker
from .platform import FakePlatform, result_text


def test_a_session_past_its_run_timeout_is_force_stopped(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    session = platform.queue_session([("bash", {"command": "sleep 60; echo finished"})], end="hold")
    worker = start_worker(run_timeout_seconds=3)
    platform.wait_stopped(session, timeout=30)

    (result,) = platform.tool_results(session)
    assert result["is_error"] is True
    assert "run timeout reached" in result_text(result)
    (stop,) = platform.stops(session)
    assert stop.body == {"force": True}
    started = platform.received("GET", f"/v1/sessions/{session.id}")[0].at
    assert stop.at - started < 15, "the sleeping tool call was not cut off at the deadline"
    (posted,) = platform.received("POST", f"/v1/sessions/{session.id}/events")
    assert posted.at < stop.at, "the agent must learn why before the work item is stopped"
    worker.wait_for(lambda: "run timeout" in worker.log(), "the timeout log line")
    (logged,) = [e for e in worker.log_entries() if "run timeout of 3s reached" in e["message"]]
    assert logged["level"] == "warning"
    assert f"session_id={session.id}" in logged["message"]
    assert worker.terminate() == 0


def test_a_session_waiting_on_the_agent_is_force_stopped_at_its_deadline(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    """No tool in flight: the session is simply cancelled, and the SDK force-stops it."""
    session = platform.queue_session([("bash", {"command": "true"})], end="hold")
    start_worker(run_timeout_seconds=2, max_idle="10m")
    platform.wait_stopped(session, timeout=30)
    assert [r["is_error"] for r in platform.tool_results(session)] == [False]
    assert [s.body for s in platform.stops(session)] == [{"force": True}]


def test_the_call_after_the_cap_gets_an_error_and_the_session_is_stopped(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    calls = [("write", {"file_path": f"f{n}.txt", "content": str(n)}) for n in range(1, 5)]
    session = platform.queue_session(calls, end="hold")
    worker = start_worker(max_tool_calls=2)
    platform.wait_stopped(session, timeout=30)

    results = platform.tool_results(session)
    assert [r["tool_use_id"] for r in results] == [f"{session.id}_call{n}" for n in (1, 2, 3)]
    assert [r["is_error"] for r in results] == [False, False, True]
    assert "tool-call cap reached" in result_text(results[2])
    assert "may make 2 tool calls" in result_text(results[2])
    (stop,) = platform.stops(session)
    assert stop.body == {"force": True}
    assert stop.at > platform.received("POST", f"/v1/sessions/{session.id}/events")[-1].at
    worker.wait_for(lambda: "tool-call cap of 2 reached" in worker.log(), "the cap log line")
    assert f"session_id={session.id}" in worker.log()
    assert worker.terminate() == 0


def test_a_second_session_sees_nothing_the_first_one_left(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    first = platform.queue_session(
        [
            ("write", {"file_path": "notes.txt", "content": "first session's data"}),
            (
                "bash",
                {
                    "command": 'echo a > "$TMPDIR/t" && echo b > ../beside-my-workdir '
                    '&& echo c > "$SCRATCH/left-in-scratch" && pwd'
                },
            ),
        ]
    )
    second = platform.queue_session(
        [("bash", {"command": 'pwd; cd .. && find "$(pwd)" "$SCRATCH" -mindepth 1 | sort'})]
    )
    worker = start_worker(tool_env="SCRATCH", extra_env={"SCRATCH": ""})
    platform.wait_stopped(first)
    platform.wait_stopped(second)

    first_dir = result_text(platform.tool_results(first)[1]).strip()
    second_dir, *found = result_text(platform.tool_results(second)[0]).split()
    assert first_dir != second_dir
    assert found == [second_dir, f"{second_dir}/.tmp"], "files from the first session survived"
    assert worker.terminate() == 0
    assert list(worker.tools.workspace.iterdir()) == []
    assert list(worker.tools.scratch.iterdir()) == []


def test_the_key_is_not_in_a_tool_environment(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    session = platform.queue_session([("bash", {"command": "env"})])
    worker = start_worker()
    platform.wait_stopped(session)

    dumped = result_text(platform.tool_results(session)[0])
    assert "PATH=" in dumped and "HOME=" in dumped, dumped
    assert ENVIRONMENT_KEY not in dumped
    assert "ANTHROPIC_" not in dumped
    assert "WORKER_ONLY_SETTING" not in dumped, "tools see only an allowlist of the worker's env"
    assert worker.terminate() == 0
    assert ENVIRONMENT_KEY not in worker.log()
    # The key is the worker's bearer credential for the platform, and nothing else carries it.
    assert {r.headers["authorization"] for r in platform.requests} == {f"Bearer {ENVIRONMENT_KEY}"}
    assert not [r for r in platform.requests if ENVIRONMENT_KEY in str(r.body)]


def test_sigterm_during_a_session_lets_it_finish_and_takes_no_more_work(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    session = platform.queue_session([("bash", {"command": "sleep 2; echo finished"})])
    worker = start_worker()
    worker.wait_for(lambda: bool(session.emitted), "the tool call to start")
    time.sleep(0.5)
    signalled = time.monotonic()
    assert worker.terminate(timeout=30) == 0

    (result,) = platform.tool_results(session)
    assert (result["is_error"], result_text(result).strip()) == (False, "finished")
    (stop,) = platform.stops(session)
    assert stop.at > signalled
    assert not [r for r in platform.received("GET", "/work/poll") if r.at > signalled]
    assert "draining: finishing the session in flight" in worker.log()


def test_sigterm_while_idle_exits_at_once(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker()
    worker.wait_for(lambda: bool(platform.received("GET", "/work/poll")), "a first poll")
    begun = time.monotonic()
    assert worker.terminate(timeout=10) == 0
    assert time.monotonic() - begun < 5
    assert not platform.received("POST", "/stop")
