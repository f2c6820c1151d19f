"""A loopback stand-in for the platform's API, answering in the official SDK's own models.

Tests point the real `anthropic` client (`base_url=`) at it; the end-to-end tier runs
it as a process (`python -m tests.fakes.platform_api --port 0 --state FILE`) so a
`pulumi up` in another process talks to it. It refuses what the platform refuses:
a toolset naming no declared server, a server without a toolset, more than 20
servers, duplicate names, a stale agent version, an unknown id, a wrong API key.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import secrets
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from anthropic.types.beta import (
    BetaEnvironment,
    BetaEnvironmentDeleteResponse,
    BetaManagedAgentsAgent,
    BetaManagedAgentsDeletedVault,
    BetaManagedAgentsVault,
    BetaTunnel,
    BetaTunnelToken,
)
from anthropic.types.beta.tunnels import BetaTunnelCertificate
from anthropic.types.beta.vaults import (
    BetaManagedAgentsCredential,
    BetaManagedAgentsDeletedCredential,
)

DEFAULT_API_KEY = "sk-fake-platform-key"
MAX_MCP_SERVERS = 20
KINDS = ("tunnels", "certificates", "environments", "vaults", "credentials", "agents")
PREFIX = {
    "tunnels": "tnl_",
    "certificates": "tcrt_",
    "environments": "env_",
    "vaults": "vlt_",
    "credentials": "vcrd_",
    "agents": "agent_",
}


class Refused(Exception):
    """An API error in the platform's shape: {"type": "error", "error": {type, message}}."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _new_id(kind: str) -> str:
    return PREFIX[kind] + secrets.token_hex(10)


def _dump(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(mode="json"))


class PlatformState:
    """Every object by kind and id, as JSON; persisted to a file when one is given."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        self.secrets: dict[str, str] = {}  # tunnel id / credential id -> token
        if path is not None and path.exists() and path.read_text().strip():
            saved = json.loads(path.read_text())
            self.objects.update(saved.get("objects", {}))
            self.secrets.update(saved.get("secrets", {}))

    def save(self) -> None:
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"objects": self.objects, "secrets": self.secrets}))
            tmp.replace(self.path)

    def get(self, kind: str, object_id: str) -> dict[str, Any]:
        found = self.objects[kind].get(object_id)
        if found is None:
            raise Refused(404, "not_found_error", f"{kind[:-1]} {object_id} does not exist")
        return found

    def live(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects[kind].values() if not o.get("archived_at")]


# --- validation the platform applies to agents -------------------------------------------------


def _agent_problems(body: dict[str, Any]) -> str | None:
    servers = body.get("mcp_servers") or []
    names = [s.get("name") for s in servers]
    if len(servers) > MAX_MCP_SERVERS:
        return f"mcp_servers: {len(servers)} servers; at most {MAX_MCP_SERVERS} are allowed"
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        return f"mcp_servers: duplicate name(s) {', '.join(map(str, dupes))}"
    toolsets = [t for t in body.get("tools") or [] if t.get("type") == "mcp_toolset"]
    used = [t.get("mcp_server_name") for t in toolsets]
    for name in used:
        if name not in names:
            return f"tools: mcp_toolset names {name!r}, which is not a declared MCP server"
    for name in names:
        if used.count(name) != 1:
            return f"mcp_servers: {name!r} must be referenced by exactly one mcp_toolset"
    for toolset in toolsets:
        tool_names = [c.get("name") for c in toolset.get("configs") or []]
        dupes = sorted({n for n in tool_names if tool_names.count(n) > 1})
        if dupes:
            return f"tools: toolset {toolset['mcp_server_name']!r} configures {dupes[0]!r} twice"
    return None


def _toolset(entry: dict[str, Any]) -> dict[str, Any]:
    """Fill the defaults the platform fills: MCP toolsets ask unless told otherwise."""
    ask = {"type": "always_ask"}
    default = {"enabled": True, "permission_policy": ask, **(entry.get("default_config") or {})}
    configs = [
        {"enabled": True, "permission_policy": default["permission_policy"], **c}
        for c in entry.get("configs") or []
    ]
    return {**entry, "default_config": default, "configs": configs}


# --- the API ------------------------------------------------------------------------------------

Handler = Callable[["FakePlatform", dict[str, Any], dict[str, str]], tuple[int, Any]]


class FakePlatform:
    """The routes the bundle uses, each answering with an `anthropic.types.beta` model."""

    def __init__(self, state: PlatformState | None = None, api_key: str = DEFAULT_API_KEY):
        self.state = state or PlatformState()
        self.api_key = api_key
        self.requests: list[tuple[str, str]] = []
        self._failures: list[tuple[int, str, str]] = []
        # The domain the next created tunnels get; None: one derived from the id, as the
        # platform assigns them.
        self.tunnel_domain: str | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (m, re.compile(f"^{p}$"), h) for m, p, h in _ROUTES
        ]

    # control, for tests
    def fail_next(self, status: int, kind: str, message: str, count: int = 1) -> None:
        self._failures.extend([(status, kind, message)] * count)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, port: int = 0) -> str:
        platform = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload, headers = platform.handle(
                    method, self.path, raw, {k.lower(): v for k, v in self.headers.items()}
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def handle(
        self, method: str, path: str, raw: bytes, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        route = path.split("?", 1)[0]
        query = dict(
            part.split("=", 1) for part in path.partition("?")[2].split("&") if "=" in part
        )
        self.requests.append((method, route))
        try:
            presented = headers.get("x-api-key") or headers.get("authorization", "").removeprefix(
                "Bearer "
            )
            if presented != self.api_key:
                raise Refused(401, "authentication_error", "invalid API key")
            if self._failures:
                status, kind, message = self._failures.pop(0)
                extra = {"retry-after-ms": "1"} if status == 429 else {}
                return status, _error(kind, message), extra
            body = json.loads(raw) if raw else {}
            for verb, pattern, handler in self.routes:
                match = pattern.match(route)
                if verb == method and match:
                    with self.state.lock:
                        status, payload = handler(self, body, {**query, **match.groupdict()})
                        if method != "GET":
                            self.state.save()
                    return status, payload, {}
            raise Refused(404, "not_found_error", f"no route {method} {route}")
        except Refused as exc:
            return exc.status, _error(exc.kind, exc.message), {}

    # objects as the SDK's models ----------------------------------------------------------
    def _page(self, kind: str, model: Any, args: dict[str, str], **match: str) -> tuple[int, Any]:
        archived = args.get("include_archived") == "true"
        rows = [
            _dump(model(**o))
            for o in self.state.objects[kind].values()
            if (archived or not o.get("archived_at"))
            and all(o.get(k) == v for k, v in match.items())
        ]
        return 200, {"data": rows, "next_page": None}


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _archive(p: FakePlatform, kind: str, object_id: str) -> dict[str, Any]:
    obj = p.state.get(kind, object_id)
    obj["archived_at"] = obj.get("archived_at") or _now()
    return obj


def _require_live(obj: dict[str, Any], what: str) -> None:
    if obj.get("archived_at"):
        raise Refused(400, "invalid_request_error", f"{what} {obj['id']} is archived")


# tunnels
def _tunnel_create(p: FakePlatform, body: dict[str, Any], _: dict[str, str]) -> tuple[int, Any]:
    tunnel_id = _new_id("tunnels")
    obj = _dump(
        BetaTunnel(
            id=tunnel_id,
            created_at=datetime.now(UTC),
            display_name=body.get("display_name"),
            domain=p.tunnel_domain or f"{tunnel_id[4:].lower()}.tunnels.platform.test",
            type="tunnel",
        )
    )
    p.state.objects["tunnels"][tunnel_id] = obj
    p.state.secrets[tunnel_id] = secrets.token_urlsafe(32)
    p.state.secrets[f"{tunnel_id}:id"] = _new_id("tunnels").replace("tnl_", "tok_")
    return 200, obj


def _tunnel_get(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    return 200, _dump(BetaTunnel(**p.state.get("tunnels", a["id"])))


def _tunnel_archive(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    return 200, _dump(BetaTunnel(**_archive(p, "tunnels", a["id"])))


def _tunnel_token(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    _require_live(p.state.get("tunnels", a["id"]), "tunnel")
    token = BetaTunnelToken(
        id=p.state.secrets[f"{a['id']}:id"],
        tunnel_token=p.state.secrets[a["id"]],
        type="tunnel_token",
    )
    return 200, _dump(token)


def _tunnel_rotate(p: FakePlatform, body: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    _require_live(p.state.get("tunnels", a["id"]), "tunnel")
    p.state.secrets[a["id"]] = secrets.token_urlsafe(32)
    p.state.secrets[f"{a['id']}:id"] = _new_id("tunnels").replace("tnl_", "tok_")
    return _tunnel_token(p, body, a)


# tunnel certificates
def _cert_create(p: FakePlatform, body: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    _require_live(p.state.get("tunnels", a["id"]), "tunnel")
    pem = str(body.get("ca_certificate_pem") or "")
    if "BEGIN CERTIFICATE" not in pem or "PRIVATE KEY" in pem:
        raise Refused(400, "invalid_request_error", "ca_certificate_pem must hold one certificate")
    obj = _dump(
        BetaTunnelCertificate(
            id=_new_id("certificates"),
            created_at=datetime.now(UTC),
            fingerprint=hashlib.sha256(pem.encode()).hexdigest(),
            tunnel_id=a["id"],
            type="tunnel_certificate",
        )
    )
    p.state.objects["certificates"][obj["id"]] = obj
    return 200, obj


def _cert_of(p: FakePlatform, a: dict[str, str]) -> dict[str, Any]:
    cert = p.state.get("certificates", a["cid"])
    if cert["tunnel_id"] != a["id"]:
        raise Refused(404, "not_found_error", f"certificate {a['cid']} is not on tunnel {a['id']}")
    return cert


def _cert_get(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    return 200, _dump(BetaTunnelCertificate(**_cert_of(p, a)))


def _cert_archive(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    _cert_of(p, a)
    return 200, _dump(BetaTunnelCertificate(**_archive(p, "certificates", a["cid"])))


# environments
def _unique_name(p: FakePlatform, kind: str, field: str, value: Any, own_id: str = "") -> None:
    for other in p.state.live(kind):
        if other.get(field) == value and other["id"] != own_id:
            raise Refused(409, "conflict_error", f"{kind[:-1]} named {value!r} already exists")


def _env_create(p: FakePlatform, body: dict[str, Any], _: dict[str, str]) -> tuple[int, Any]:
    _unique_name(p, "environments", "name", body.get("name"))
    now = _now()
    obj = _dump(
        BetaEnvironment(
            id=_new_id("environments"),
            config=body.get("config") or {"type": "self_hosted"},
            created_at=now,
            updated_at=now,
            description=body.get("description"),
            metadata=body.get("metadata") or {},
            name=body["name"],
            type="environment",
        )
    )
    p.state.objects["environments"][obj["id"]] = obj
    return 200, obj


def _merge_metadata(
    current: dict[str, str], change: dict[str, str | None] | None
) -> dict[str, str]:
    merged = dict(current)
    for key, value in (change or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _env_get(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    return 200, _dump(BetaEnvironment(**p.state.get("environments", a["id"])))


def _env_update(p: FakePlatform, body: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    obj = p.state.get("environments", a["id"])
    _require_live(obj, "environment")
    if body.get("name") is not None:
        _unique_name(p, "environments", "name", body["name"], a["id"])
        obj["name"] = body["name"]
    if "description" in body:
        obj["description"] = body["description"]
    obj["metadata"] = _merge_metadata(obj["metadata"], body.get("metadata"))
    obj["updated_at"] = _now()
    return 200, _dump(BetaEnvironment(**obj))


def _env_delete(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    p.state.get("environments", a["id"])
    del p.state.objects["environments"][a["id"]]
    return 200, _dump(BetaEnvironmentDeleteResponse(id=a["id"], type="environment_deleted"))


# vaults
def _vault_create(p: FakePlatform, body: dict[str, Any], _: dict[str, str]) -> tuple[int, Any]:
    now = datetime.now(UTC)
    obj = _dump(
        BetaManagedAgentsVault(
            id=_new_id("vaults"),
            created_at=now,
            updated_at=now,
            display_name=body["display_name"],
            metadata=body.get("metadata") or {},
            type="vault",
        )
    )
    p.state.objects["vaults"][obj["id"]] = obj
    return 200, obj


def _vault_get(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    return 200, _dump(BetaManagedAgentsVault(**p.state.get("vaults", a["id"])))


def _vault_update(p: FakePlatform, body: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    obj = p.state.get("vaults", a["id"])
    _require_live(obj, "vault")
    if body.get("display_name") is not None:
        obj["display_name"] = body["display_name"]
    obj["metadata"] = _merge_metadata(obj["metadata"], body.get("metadata"))
    obj["updated_at"] = _now()
    return 200, _dump(BetaManagedAgentsVault(**obj))


def _vault_delete(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    p.state.get("vaults", a["id"])
    for cred in list(p.state.objects["credentials"].values()):
        if cred["vault_id"] == a["id"]:
            del p.state.objects["credentials"][cred["id"]]
    del p.state.objects["vaults"][a["id"]]
    return 200, _dump(BetaManagedAgentsDeletedVault(id=a["id"], type="vault_deleted"))


# vault credentials
def _cred_create(p: FakePlatform, body: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    _require_live(p.state.get("vaults", a["id"]), "vault")
    auth = body.get("auth") or {}
    if (
        auth.get("type") != "static_bearer"
        or not auth.get("token")
        or not auth.get("mcp_server_url")
    ):
        raise Refused(
            400, "invalid_request_error", "auth: a static_bearer needs mcp_server_url and token"
        )
    for other in p.state.live("credentials"):
        if (
            other["vault_id"] == a["id"]
            and other["auth"]["mcp_server_url"] == auth["mcp_server_url"]
        ):
            raise Refused(
                409, "conflict_error", f"vault {a['id']} already holds a credential for that URL"
            )
    if len(body.get("metadata") or {}) > 16:
        raise Refused(400, "invalid_request_error", "metadata: at most 16 pairs")
    now = datetime.now(UTC)
    obj = _dump(
        BetaManagedAgentsCredential(
            id=_new_id("credentials"),
            auth={"type": "static_bearer", "mcp_server_url": auth["mcp_server_url"]},
            created_at=now,
            updated_at=now,
            metadata=body.get("metadata") or {},
            type="vault_credential",
            vault_id=a["id"],
            display_name=body.get("display_name"),
        )
    )
    p.state.objects["credentials"][obj["id"]] = obj
    p.state.secrets[obj["id"]] = auth["token"]
    return 200, obj


def _cred_of(p: FakePlatform, a: dict[str, str]) -> dict[str, Any]:
    cred = p.state.get("credentials", a["cid"])
    if cred["vault_id"] != a["id"]:
        raise Refused(404, "not_found_error", f"credential {a['cid']} is not in vault {a['id']}")
    return cred


def _cred_get(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    return 200, _dump(BetaManagedAgentsCredential(**_cred_of(p, a)))


def _cred_update(p: FakePlatform, body: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    obj = _cred_of(p, a)
    _require_live(obj, "credential")
    auth = body.get("auth")
    if auth is not None:
        if auth.get("type") != obj["auth"]["type"]:
            raise Refused(400, "invalid_request_error", "auth.type cannot change")
        if auth.get("token"):
            p.state.secrets[obj["id"]] = auth["token"]
    if body.get("display_name") is not None:
        obj["display_name"] = body["display_name"]
    obj["metadata"] = _merge_metadata(obj["metadata"], body.get("metadata"))
    obj["updated_at"] = _now()
    return 200, _dump(BetaManagedAgentsCredential(**obj))


def _cred_delete(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    _cred_of(p, a)
    del p.state.objects["credentials"][a["cid"]]
    p.state.secrets.pop(a["cid"], None)
    return 200, _dump(
        BetaManagedAgentsDeletedCredential(id=a["cid"], type="vault_credential_deleted")
    )


# agents
_AGENT_FIELDS = ("name", "description", "system", "mcp_servers", "metadata")


def _agent_model(obj: dict[str, Any]) -> dict[str, Any]:
    return _dump(BetaManagedAgentsAgent(**obj))


def _agent_create(p: FakePlatform, body: dict[str, Any], _: dict[str, str]) -> tuple[int, Any]:
    problem = _agent_problems(body)
    if problem:
        raise Refused(400, "invalid_request_error", problem)
    _unique_name(p, "agents", "name", body.get("name"))
    now = _now()
    model = body.get("model")
    obj = {
        "id": _new_id("agents"),
        "created_at": now,
        "updated_at": now,
        "description": body.get("description"),
        "execution_identity": {"type": "service_account"},
        "mcp_servers": body.get("mcp_servers") or [],
        "metadata": body.get("metadata") or {},
        "model": model if isinstance(model, dict) else {"id": model},
        "name": body["name"],
        "skills": [],
        "system": body.get("system"),
        "tools": [_toolset(t) for t in body.get("tools") or []],
        "type": "agent",
        "version": 1,
    }
    obj = _agent_model(obj)
    p.state.objects["agents"][obj["id"]] = obj
    return 200, obj


def _agent_get(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    return 200, _agent_model(p.state.get("agents", a["id"]))


def _agent_update(p: FakePlatform, body: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    obj = p.state.get("agents", a["id"])
    _require_live(obj, "agent")
    if body.get("version") != obj["version"]:
        raise Refused(
            409,
            "conflict_error",
            f"agent {obj['id']} is at version {obj['version']}, not {body.get('version')}",
        )
    merged = {
        **{k: obj[k] for k in (*_AGENT_FIELDS, "tools")},
        **{k: body[k] for k in (*_AGENT_FIELDS, "tools") if k in body},
    }
    problem = _agent_problems(merged)
    if problem:
        raise Refused(400, "invalid_request_error", problem)
    if merged["name"] != obj["name"]:
        _unique_name(p, "agents", "name", merged["name"], obj["id"])
    merged["tools"] = [_toolset(t) for t in merged["tools"] or []]
    merged["metadata"] = _merge_metadata(obj["metadata"], body.get("metadata"))
    if "model" in body:
        model = body["model"]
        merged["model"] = model if isinstance(model, dict) else {"id": model}
    else:
        merged["model"] = obj["model"]
    before = {k: obj[k] for k in merged}
    if merged != before:
        obj.update(merged, version=obj["version"] + 1, updated_at=_now())
    return 200, _agent_model(obj)


def _agent_archive(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
    return 200, _agent_model(_archive(p, "agents", a["id"]))


def _list(kind: str, model: Any, **scope: str) -> Handler:
    def handler(p: FakePlatform, _: dict[str, Any], a: dict[str, str]) -> tuple[int, Any]:
        return p._page(kind, model, a, **{k: a[v] for k, v in scope.items()})

    return handler


_ID = r"(?P<id>[A-Za-z0-9_]+)"
_CID = r"(?P<cid>[A-Za-z0-9_]+)"
_ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/v1/tunnels", _tunnel_create),
    ("GET", "/v1/tunnels", _list("tunnels", BetaTunnel)),
    ("GET", f"/v1/tunnels/{_ID}", _tunnel_get),
    ("POST", f"/v1/tunnels/{_ID}/archive", _tunnel_archive),
    ("POST", f"/v1/tunnels/{_ID}/reveal_token", _tunnel_token),
    ("POST", f"/v1/tunnels/{_ID}/rotate_token", _tunnel_rotate),
    ("POST", f"/v1/tunnels/{_ID}/certificates", _cert_create),
    (
        "GET",
        f"/v1/tunnels/{_ID}/certificates",
        _list("certificates", BetaTunnelCertificate, tunnel_id="id"),
    ),
    ("GET", f"/v1/tunnels/{_ID}/certificates/{_CID}", _cert_get),
    ("POST", f"/v1/tunnels/{_ID}/certificates/{_CID}/archive", _cert_archive),
    ("POST", "/v1/environments", _env_create),
    ("GET", "/v1/environments", _list("environments", BetaEnvironment)),
    ("GET", f"/v1/environments/{_ID}", _env_get),
    ("POST", f"/v1/environments/{_ID}", _env_update),
    ("DELETE", f"/v1/environments/{_ID}", _env_delete),
    ("POST", "/v1/vaults", _vault_create),
    ("GET", "/v1/vaults", _list("vaults", BetaManagedAgentsVault)),
    ("GET", f"/v1/vaults/{_ID}", _vault_get),
    ("POST", f"/v1/vaults/{_ID}", _vault_update),
    ("DELETE", f"/v1/vaults/{_ID}", _vault_delete),
    ("POST", f"/v1/vaults/{_ID}/credentials", _cred_create),
    (
        "GET",
        f"/v1/vaults/{_ID}/credentials",
        _list("credentials", BetaManagedAgentsCredential, vault_id="id"),
    ),
    ("GET", f"/v1/vaults/{_ID}/credentials/{_CID}", _cred_get),
    ("POST", f"/v1/vaults/{_ID}/credentials/{_CID}", _cred_update),
    ("DELETE", f"/v1/vaults/{_ID}/credentials/{_CID}", _cred_delete),
    ("POST", "/v1/agents", _agent_create),
    ("GET", "/v1/agents", _list("agents", BetaManagedAgentsAgent)),
    ("GET", f"/v1/agents/{_ID}", _agent_get),
    ("POST", f"/v1/agents/{_ID}", _agent_update),
    ("POST", f"/v1/agents/{_ID}/archive", _agent_archive),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.platform_api")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state", type=Path, help="JSON file the objects persist in")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    args = parser.parse_args(argv)
    platform = FakePlatform(PlatformState(args.state), api_key=args.api_key)
    print(f"listening on {platform.start(args.port)}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        platform.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
