"""Liveness and readiness that mean something, for the kubelet's HTTP probes.

- `/livez`: the poll loop is running and its event loop is not stuck (it ticked recently).
  A worker busy with a long session is alive; a wedged or finished loop is not.
- `/readyz`: the worker reaches the platform: a poll was answered within the readiness window,
  or it is serving a session it claimed (the SDK's lease heartbeat ends the session if the
  platform goes away). Not ready while draining. Staying ready while busy also matters to the
  ReplicaSet, which removes unready pods first when the autoscaler scales down.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOP_STALE_SECONDS = 10.0


class Health:
    """What the probes report; written by the worker's event loop, read by the probe server."""

    def __init__(
        self, readiness_window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.readiness_window_seconds = readiness_window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self.loop_running = False
        self.last_tick: float | None = None
        self.last_poll_served: float | None = None
        self.in_session = False
        self.draining = False

    def tick(self) -> None:
        with self._lock:
            self.last_tick = self._clock()

    def poll_served(self) -> None:
        with self._lock:
            self.last_poll_served = self._clock()

    def liveness(self) -> tuple[bool, str]:
        with self._lock:
            now = self._clock()
            if not self.loop_running:
                return False, "the poll loop is not running"
            if self.last_tick is None or now - self.last_tick > LOOP_STALE_SECONDS:
                return False, f"the poll loop has not run for over {LOOP_STALE_SECONDS:g}s"
            return True, "the poll loop is running"

    def readiness(self) -> tuple[bool, str]:
        with self._lock:
            now = self._clock()
            if self.draining:
                return False, "draining: no new work is taken"
            if self.in_session:
                return True, "serving a session"
            if self.last_poll_served is None:
                return False, "no poll has been answered yet"
            age = now - self.last_poll_served
            if age > self.readiness_window_seconds:
                return False, f"no poll answered for {age:.0f}s"
            return True, f"a poll was answered {age:.0f}s ago"


def serve(health: Health, host: str, port: int) -> ThreadingHTTPServer:
    """Start the probe server on a daemon thread; the caller shuts it down."""
    checks = {"/livez": health.liveness, "/readyz": health.readiness}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            check = checks.get(self.path)
            if check is None:
                self.send_error(404)
                return
            ok, reason = check()
            body = json.dumps({"ok": ok, "reason": reason}).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds would drown the worker's own log."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
