"""The probes the chart points the kubelet at: liveness is the poll loop, readiness the platform."""

from __future__ import annotations

from collections.abc import Callable

from sandbox.health import LOOP_STALE_SECONDS, Health

from .attempts import ENVIRONMENT_KEY
from .conftest import Worker
from .platform import FakePlatform


def test_ready_once_a_poll_is_answered_and_unready_when_polls_fail(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker(readiness_window_seconds=2)
    worker.wait_for(lambda: worker.probe("/readyz")[0] == 200, "readiness")
    assert worker.probe("/livez") == (200, {"ok": True, "reason": "the poll loop is running"})

    platform.poll_status = 503
    worker.wait_for(lambda: worker.probe("/readyz")[0] == 503, "unreadiness", timeout=20)
    assert worker.probe("/readyz")[1]["reason"].startswith("no poll answered for")
    assert worker.probe("/livez")[0] == 200, "an unreachable platform is no reason to restart"

    platform.poll_status = 200
    worker.wait_for(lambda: worker.probe("/readyz")[0] == 200, "readiness again", timeout=90)
    assert worker.terminate() == 0


def test_ready_while_serving_a_long_session(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    """No polls happen during a session; a busy runner must not look broken (or be culled first)."""
    session = platform.queue_session([("bash", {"command": "sleep 4"})])
    worker = start_worker(readiness_window_seconds=1)
    worker.wait_for(lambda: bool(session.emitted), "the session to start")
    assert worker.probe("/readyz") == (200, {"ok": True, "reason": "serving a session"})
    assert worker.probe("/livez")[0] == 200
    platform.wait_stopped(session)
    assert worker.terminate() == 0


def test_a_platform_that_refuses_the_key_ends_the_worker(
    platform: FakePlatform, start_worker: Callable[..., Worker]
) -> None:
    platform.poll_status = 401
    worker = start_worker()
    assert worker.process.wait(30) == 1
    assert "worker stopped" in worker.log()
    assert ENVIRONMENT_KEY not in worker.log()


def test_liveness_fails_when_the_loop_stops_or_stalls() -> None:
    now = [100.0]
    health = Health(readiness_window_seconds=60, clock=lambda: now[0])
    assert health.liveness() == (False, "the poll loop is not running")
    health.loop_running = True
    health.tick()
    assert health.liveness()[0] is True
    now[0] += LOOP_STALE_SECONDS + 1
    assert health.liveness() == (
        False,
        f"the poll loop has not run for over {LOOP_STALE_SECONDS:g}s",
    )
    assert health.readiness() == (False, "no poll has been answered yet")
    health.poll_served()
    assert health.readiness()[0] is True
    health.draining = True
    assert health.readiness() == (False, "draining: no new work is taken")
