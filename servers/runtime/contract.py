"""The perimeter's contract with an MCP server, read once at start from the environment and files.

charts/mcp-server sets these variables; `tests/servers/test_chart_contract.py` renders the chart
and reads the result with `Contract.from_environ`, so the two cannot drift apart. Every
credential is a file, never a variable, and nothing here ever holds a secret's value in its
repr: passwords and tokens are read when used (`ToolCredential`, `tokens.MountedTokens`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SERVER_NAME = "MCP_SERVER_NAME"
LISTEN_ADDR = "MCP_LISTEN_ADDR"
PATH = "MCP_PATH"
TLS_CERT_FILE = "MCP_TLS_CERT_FILE"
TLS_KEY_FILE = "MCP_TLS_KEY_FILE"
TOOLS = "MCP_TOOLS"
BEARER_TOKEN_DIR = "MCP_BEARER_TOKEN_DIR"
DATABASE_CREDENTIALS_DIR = "MCP_DATABASE_CREDENTIALS_DIR"
CONFIG_DIR = "MCP_CONFIG_DIR"
DATABASE_HOST = "DATABASE_HOST"
DATABASE_PORT = "DATABASE_PORT"
DATABASE_NAME = "DATABASE_NAME"
DATABASE_SSLMODE = "DATABASE_SSLMODE"
DATABASE_SSLROOTCERT = "DATABASE_SSLROOTCERT"
BACKEND_PREFIX = "BACKEND_"
# The session setting a tenant-bound tool's row-level security reads (infra/pure/database/sql.py).
TENANT_SETTING = "agent_perimeter.tenant"

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]*)):(?P<port>[0-9]{1,5})$")
_BACKEND = re.compile(r"^BACKEND_(?P<name>[A-Z0-9_]+)_HOST$")
_TOOL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ContractError(Exception):
    """The server cannot honour its contract; the message names the variable and the path."""


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ContractError(f"{name}: not set; charts/mcp-server sets it for every server")
    return value


def _readable_file(name: str, value: str) -> Path:
    path = Path(value)
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as error:
        raise ContractError(f"{name}: {path} is not a readable file ({error.strerror})") from None
    return path


def _readable_dir(name: str, value: str) -> Path:
    path = Path(value)
    if not path.is_dir() or not os.access(path, os.R_OK | os.X_OK):
        raise ContractError(f"{name}: {path} is not a readable directory")
    return path


def _port(name: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ContractError(f"{name}: {value!r} is not a port (1-65535)")
    return int(value)


def _bool(name: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise ContractError(f"{name}: {value!r} is neither true nor false")
    return value == "true"


@dataclass(frozen=True)
class ToolCredential:
    """One tool's database role: the files the role provisioner's Secret is mounted as."""

    tool: str
    directory: Path

    @property
    def username(self) -> str:
        return (self.directory / "username").read_text().strip()

    def password(self) -> str:
        """Read on every new connection, so a rotated password needs no restart."""
        return (self.directory / "password").read_text().strip()

    def check(self) -> None:
        for item in ("username", "password"):
            path = self.directory / item
            try:
                if not path.read_text().strip():
                    raise ContractError(f"{DATABASE_CREDENTIALS_DIR}: {path} is empty")
            except OSError as error:
                raise ContractError(
                    f"{DATABASE_CREDENTIALS_DIR}: {path} is not readable ({error.strerror}); "
                    f"tool {self.tool} has no database credential"
                ) from None


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    name: str
    sslmode: str
    sslrootcert: Path | None


@dataclass(frozen=True)
class Backend:
    """A service the server calls besides its database (BACKEND_<NAME>_*)."""

    name: str  # as in the variables: upper case, '_' for '-'
    host: str
    port: int
    tls: bool
    credential_file: Path | None

    def credential(self) -> str:
        if self.credential_file is None:
            raise ContractError(f"{BACKEND_PREFIX}{self.name}_CREDENTIAL_FILE: not set")
        return self.credential_file.read_text().strip()

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class Contract:
    server_name: str
    listen_host: str
    listen_port: int
    path: str
    tools: tuple[str, ...]
    bearer_token_dir: Path
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    credentials_dir: Path | None = None
    database: Database | None = None
    backends: Mapping[str, Backend] = field(default_factory=dict)
    config_dir: Path | None = None

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> Contract:
        env = os.environ if env is None else env
        listen = _required(env, LISTEN_ADDR)
        match = _LISTEN.match(listen)
        if match is None:
            raise ContractError(f"{LISTEN_ADDR}: {listen!r} is not [host]:port")
        host = match["v6"] or match["host"] or "0.0.0.0"
        path = _required(env, PATH)
        if not path.startswith("/"):
            raise ContractError(f"{PATH}: {path!r} does not start with /")
        tools = tuple(t.strip() for t in env.get(TOOLS, "").split(",") if t.strip())
        for tool in tools:
            if not _TOOL.match(tool):
                raise ContractError(f"{TOOLS}: {tool!r} is not a tool name")
        if not tools:
            raise ContractError(f"{TOOLS}: not set; it lists the tools the stack grants")
        cert, key = env.get(TLS_CERT_FILE, ""), env.get(TLS_KEY_FILE, "")
        if bool(cert) != bool(key):
            missing = TLS_KEY_FILE if cert else TLS_CERT_FILE
            raise ContractError(f"{missing}: not set, but its pair is; TLS needs both files")
        token_dir = _readable_dir(BEARER_TOKEN_DIR, _required(env, BEARER_TOKEN_DIR))
        credentials = env.get(DATABASE_CREDENTIALS_DIR, "")
        config_dir = env.get(CONFIG_DIR, "")
        return cls(
            server_name=_required(env, SERVER_NAME),
            listen_host=host,
            listen_port=_port(LISTEN_ADDR, match["port"]),
            path=path,
            tools=tools,
            bearer_token_dir=token_dir,
            tls_cert_file=_readable_file(TLS_CERT_FILE, cert) if cert else None,
            tls_key_file=_readable_file(TLS_KEY_FILE, key) if key else None,
            credentials_dir=_readable_dir(DATABASE_CREDENTIALS_DIR, credentials)
            if credentials
            else None,
            database=_database(env),
            backends=_backends(env),
            config_dir=_readable_dir(CONFIG_DIR, config_dir) if config_dir else None,
        )

    def credential(self, tool: str) -> ToolCredential:
        if self.credentials_dir is None:
            raise ContractError(
                f"{DATABASE_CREDENTIALS_DIR}: not set, but tool {tool} uses the database; "
                "the stack grants it no role"
            )
        if self.database is None:
            raise ContractError(f"{DATABASE_HOST}: not set, but tool {tool} uses the database")
        credential = ToolCredential(tool, self.credentials_dir / tool)
        credential.check()
        return credential


def _database(env: Mapping[str, str]) -> Database | None:
    host = env.get(DATABASE_HOST, "")
    if not host:
        return None
    sslmode = env.get(DATABASE_SSLMODE, "require")
    if sslmode not in SSLMODES:
        raise ContractError(f"{DATABASE_SSLMODE}: {sslmode!r} is not one of {', '.join(SSLMODES)}")
    root = env.get(DATABASE_SSLROOTCERT, "")
    if sslmode.startswith("verify") and not root:
        raise ContractError(f"{DATABASE_SSLROOTCERT}: not set, but {DATABASE_SSLMODE} is {sslmode}")
    return Database(
        host=host,
        port=_port(DATABASE_PORT, env.get(DATABASE_PORT, "5432")),
        name=_required(env, DATABASE_NAME),
        sslmode=sslmode,
        sslrootcert=_readable_file(DATABASE_SSLROOTCERT, root) if root else None,
    )


def _backends(env: Mapping[str, str]) -> dict[str, Backend]:
    found: dict[str, Backend] = {}
    for variable in sorted(env):
        match = _BACKEND.match(variable)
        if match is None:
            continue
        name = match["name"]
        prefix = f"{BACKEND_PREFIX}{name}_"
        credential = env.get(f"{prefix}CREDENTIAL_FILE", "")
        found[name] = Backend(
            name=name,
            host=env[variable],
            port=_port(f"{prefix}PORT", env.get(f"{prefix}PORT", "")),
            tls=_bool(f"{prefix}TLS", env.get(f"{prefix}TLS", "true")),
            credential_file=_readable_file(f"{prefix}CREDENTIAL_FILE", credential)
            if credential
            else None,
        )
    return found


def backend_key(name: str) -> str:
    """A backend's name as the variables spell it (the chart's mcp-server.backendEnv)."""
    return name.upper().replace("-", "_")
