"""A loopback stand-in for the platform's work queue and session events, in the SDK's own types.

Each queued session follows a script: the stream sends one `agent.tool_use` at a time and
waits for its result before the next, then ends the session with `session.status_terminated`
(or holds the stream open with `end="hold"`). Every request is recorded, in order, so a test
asserts on what the platform received.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from anthropic.pagination import AsyncPageCursor
from anthropic.types.beta import BetaManagedAgentsSession, BetaManagedAgentsUserToolResultEvent
from anthropic.types.beta.environments import (
    BetaSelfHostedWork,
    BetaSelfHostedWorkHeartbeatResponse,
)
from anthropic.types.beta.sessions import (
    BetaManagedAgentsAgentToolUseEvent,
    BetaManagedAgentsSendSessionEvents,
    BetaManagedAgentsSessionEvent,
    BetaManagedAgentsSessionStatusTerminatedEvent,
)

ENVIRONMENT_ID = "env_01JTESTsandbox1"
NOW = "2026-01-01T00:00:00Z"
WAIT_FOR_RESULT_SECONDS = 60.0


@dataclass(frozen=True)
class Recorded:
    at: float
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Session:
    id: str
    work_id: str
    calls: list[tuple[str, dict[str, Any]]]
    end: str = "terminate"  # or "hold": keep the stream open, send nothing more
    emitted: list[Any] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped: threading.Event = field(default_factory=threading.Event)
    result_arrived: threading.Condition = field(default_factory=threading.Condition)


def result_text(event: dict[str, Any]) -> str:
    """The text a tool result sent to the platform holds."""
    content = event["content"]
    assert isinstance(content, list)
    return "".join(block["text"] for block in content)


def _json(model: Any) -> bytes:
    return model.to_json(indent=None).encode() if model is not None else b"null"


class FakePlatform:
    def __init__(self, host: str = "127.0.0.1") -> None:
        """`host`: loopback for a worker on this machine; the node's bridge address for one in
        a pod."""
        self.requests: list[Recorded] = []
        self.sessions: dict[str, Session] = {}
        self._queue: list[Session] = []
        self._lock = threading.Lock()
        self.closing = threading.Event()
        self.poll_status = 200
        platform = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                platform._handle(self, "GET")

            def do_POST(self) -> None:
                platform._handle(self, "POST")

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakePlatform:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        for session in self.sessions.values():
            with session.result_arrived:
                session.result_arrived.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    # --- scripting -------------------------------------------------------------------------

    def queue_session(
        self, calls: list[tuple[str, dict[str, Any]]], *, end: str = "terminate"
    ) -> Session:
        n = len(self.sessions) + 1
        session = Session(id=f"sesn_test{n:04d}", work_id=f"work_test{n:04d}", calls=calls, end=end)
        with self._lock:
            self.sessions[session.id] = session
            self._queue.append(session)
        return session

    def wait_stopped(self, session: Session, timeout: float = 60.0) -> None:
        if not session.stopped.wait(timeout):
            raise AssertionError(f"{session.id} was never stopped; requests: {self.summary()}")

    # --- what the platform received --------------------------------------------------------

    def received(self, method: str, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def tool_results(self, session: Session) -> list[dict[str, Any]]:
        return [
            event
            for r in self.received("POST", f"/v1/sessions/{session.id}/events")
            for event in r.body["events"]
        ]

    def stops(self, session: Session) -> list[Recorded]:
        return self.received("POST", f"/work/{session.work_id}/stop")

    def summary(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    # --- the endpoints ---------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        record = Recorded(
            at=time.monotonic(),
            method=method,
            path=url.path,
            query=parse_qs(url.query),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=json.loads(raw) if raw else None,
        )
        with self._lock:
            self.requests.append(record)
        parts = url.path.strip("/").split("/")
        if parts[:2] == ["v1", "environments"] and parts[3] == "work":
            self._work(h, parts[4:], record)
        elif parts[:2] == ["v1", "sessions"] and len(parts) == 3:
            self._send(h, 200, _json(self._session_model(parts[2])))
        elif parts[:2] == ["v1", "sessions"] and parts[3:] == ["events", "stream"]:
            self._stream(h, self.sessions[parts[2]])
        elif parts[:2] == ["v1", "sessions"] and parts[3:] == ["events"] and method == "GET":
            self._list(h, self.sessions[parts[2]])
        elif parts[:2] == ["v1", "sessions"] and parts[3:] == ["events"]:
            self._results(h, self.sessions[parts[2]], record.body)
        else:
            self._send(h, 404, b'{"type":"error","error":{"type":"not_found_error","message":"?"}}')

    def _work(self, h: BaseHTTPRequestHandler, rest: list[str], record: Recorded) -> None:
        if rest == ["poll"]:
            if self.poll_status != 200:
                self._send(
                    h,
                    self.poll_status,
                    b'{"type":"error","error":{"type":"api_error","message":"down"}}',
                )
                return
            with self._lock:
                session = self._queue.pop(0) if self._queue else None
            if session is None:
                time.sleep(0.2)  # a short long-poll
            self._send(h, 200, _json(session and self._work_model(session, "starting")))
            return
        session = next(s for s in self.sessions.values() if s.work_id == rest[0])
        if rest[1:] == ["ack"]:
            self._send(h, 200, _json(self._work_model(session, "active")))
        elif rest[1:] == ["heartbeat"]:
            state = "stopped" if session.stopped.is_set() else "active"
            beat = BetaSelfHostedWorkHeartbeatResponse(
                last_heartbeat=NOW,
                lease_extended=True,
                state=state,
                ttl_seconds=30,
                type="work_heartbeat",
            )
            self._send(h, 200, _json(beat))
        elif rest[1:] == ["stop"]:
            if session.stopped.is_set():
                self._send(
                    h,
                    409,
                    b'{"type":"error","error":{"type":"conflict_error","message":"stopped"}}',
                )
                return
            session.stopped.set()
            with session.result_arrived:
                session.result_arrived.notify_all()
            self._send(h, 200, _json(self._work_model(session, "stopped")))

    def _stream(self, h: BaseHTTPRequestHandler, session: Session) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        try:
            for n, (name, tool_input) in enumerate(session.calls, start=1):
                event = BetaManagedAgentsAgentToolUseEvent(
                    id=f"{session.id}_call{n}",
                    input=tool_input,
                    name=name,
                    processed_at=datetime.now(UTC),
                    type="agent.tool_use",
                )
                session.emitted.append(event)
                self._event(h, event)
                if not self._await_result(h, session, event.id):
                    return
            if session.end == "terminate":
                self._event(
                    h,
                    BetaManagedAgentsSessionStatusTerminatedEvent(
                        id=f"{session.id}_end",
                        processed_at=datetime.now(UTC),
                        type="session.status_terminated",
                    ),
                )
            while not (self.closing.is_set() or session.stopped.is_set()):
                self._ping(h)
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _await_result(self, h: BaseHTTPRequestHandler, session: Session, call_id: str) -> bool:
        deadline = time.monotonic() + WAIT_FOR_RESULT_SECONDS
        while call_id not in session.results:
            if self.closing.is_set() or session.stopped.is_set() or time.monotonic() > deadline:
                return False
            self._ping(h)
            with session.result_arrived:
                session.result_arrived.wait(0.2)
        return True

    def _event(self, h: BaseHTTPRequestHandler, event: Any) -> None:
        h.wfile.write(f"event: {event.type}\ndata: {event.to_json(indent=None)}\n\n".encode())
        h.wfile.flush()

    def _ping(self, h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b"event: ping\ndata: {}\n\n")
        h.wfile.flush()

    def _list(self, h: BaseHTTPRequestHandler, session: Session) -> None:
        events: list[Any] = list(session.emitted)
        events += [
            BetaManagedAgentsUserToolResultEvent.model_validate(
                {**result, "id": f"{call_id}_result", "processed_at": NOW}
            )
            for call_id, result in session.results.items()
        ]
        page = AsyncPageCursor[BetaManagedAgentsSessionEvent].model_construct(
            data=events, next_page=None
        )
        self._send(h, 200, page.model_dump_json().encode())

    def _results(self, h: BaseHTTPRequestHandler, session: Session, body: Any) -> None:
        for event in body["events"]:
            session.results[event["tool_use_id"]] = event
        with session.result_arrived:
            session.result_arrived.notify_all()
        self._send(h, 200, _json(BetaManagedAgentsSendSessionEvents.model_validate({"data": []})))

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    # --- the SDK's response types ----------------------------------------------------------

    def _work_model(self, session: Session, state: str) -> BetaSelfHostedWork:
        return BetaSelfHostedWork.model_validate(
            {
                "id": session.work_id,
                "created_at": NOW,
                "environment_id": ENVIRONMENT_ID,
                "data": {"type": "session", "id": session.id},
                "metadata": {},
                "state": state,
                "type": "work",
            }
        )

    def _session_model(self, session_id: str) -> BetaManagedAgentsSession:
        return BetaManagedAgentsSession.model_validate(
            {
                "id": session_id,
                "created_at": NOW,
                "updated_at": NOW,
                "environment_id": ENVIRONMENT_ID,
                "metadata": {},
                "outcome_evaluations": [],
                "resources": [],
                "status": "running",
                "type": "session",
                "vault_ids": [],
                "stats": {},
                "usage": {},
                "agent": {
                    "id": "agent_test",
                    "type": "agent",
                    "name": "test",
                    "version": 1,
                    "model": {"id": "claude-sonnet-4-5"},
                    "execution_identity": {"type": "service_account"},
                    "mcp_servers": [],
                    "skills": [],
                    "tools": [],
                },
            }
        )
