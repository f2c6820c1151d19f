"""The one place configuration is read and validated.

A stack's structured settings live under the `agent-perimeter:perimeter` key of
`Pulumi.<stack>.yaml`; its secrets under their own keys (`tunnelToken`, ...).
Everything is checked here, every problem reported at once with its field
path, before a single resource is registered or a file written.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:  # the Pulumi SDK is imported only where a Pulumi program runs
    import pulumi


def _invalid(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose text is already final (values may contain braces)."""
    return PydanticCustomError(kind, message)


PROJECT = "agent-perimeter"
PERIMETER_KEY = f"{PROJECT}:perimeter"
METADATA_ADDRESS = ipaddress.ip_address("169.254.169.254")
MAX_MCP_SERVERS = 20

# Secret stack-config keys (set with `pulumi config set --secret`).
SECRET_KEYS: dict[str, str] = {
    "tunnelToken": "the tunnel token issued with the tunnel id (only with platform.enabled: false)",
    "tunnelTlsCert": "PEM certificate the proxy presents on the inner TLS layer",
    "tunnelTlsKey": "PEM private key of that certificate",
    "tunnelCaCert": "PEM CA of that certificate, registered with the tunnel (platform.enabled)",
    "environmentKeys": "object: sandbox pool name -> that pool's environment service key",
    "databaseAdminPasswords": "object: database name -> admin password",
    "platformApiKey": "the platform API key `pulumi up` creates the platform objects with",
}
# Old secret keys and what replaced them: a stack still setting one gets told what to change.
RENAMED_SECRET_KEYS = {
    "environmentKey": "environmentKeys (an object keyed by sandbox pool name): "
    "`pulumi config set --secret --path 'agent-perimeter:environmentKeys.<pool>' <key>`",
}
# Shown offline and in previews when the platform has not assigned the tunnel domain yet.
PENDING_TUNNEL_DOMAIN = "tunnel-domain.pending.invalid"


# --- scalar types -----------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_DURATION = re.compile(r"^[0-9]+(ms|s|m|h)$")
_IMAGE = re.compile(
    r"^(?P<repository>[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*)"
    r"(:(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(@(?P<digest>sha256:[a-f0-9]{64}))?$"
)


def _dns_label(max_len: int) -> Any:
    def check(value: str) -> str:
        if len(value) > max_len or not _DNS_LABEL.fullmatch(value):
            raise _invalid(
                "dns_label",
                f"{value!r} is not a DNS label: lowercase letters, digits and '-', starting with a letter, not ending with '-', at most {max_len} characters",
            )
        return value

    return AfterValidator(check)


def _identifier(value: str) -> str:
    if len(value) > 30 or not _IDENTIFIER.fullmatch(value):
        raise _invalid(
            "identifier",
            f"{value!r} is not a safe SQL identifier: lowercase ASCII letters, digits and '_', starting with a letter or '_', at most 30 characters",
        )
    return value


def _qualified_table(value: str) -> str:
    parts = value.split(".")
    if len(parts) != 2 or not all(_IDENTIFIER.fullmatch(p) and len(p) <= 30 for p in parts):
        raise _invalid(
            "qualified_table",
            f"{value!r} is not a table written schema.table with safe identifiers (lowercase ASCII letters, digits and '_')",
        )
    return value


def _hostname(value: str) -> str:
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(value):
        raise _invalid("hostname", f"{value!r} is not a hostname or IP address")
    return value


def _quantity(value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise _invalid(
            "quantity", f"{value!r} is not a Kubernetes quantity such as 100m, 256Mi or 2Gi"
        )
    return value


def _duration(value: str) -> str:
    if not _DURATION.fullmatch(value):
        raise _invalid("duration", f"{value!r} is not a duration such as 500ms, 30s, 5m")
    return value


def _network(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise _invalid(
            "cidr", f"{value!r} is not a CIDR block such as 10.0.0.0/16 ({exc})"
        ) from None
    if net.prefixlen == 0:
        raise _invalid("cidr_everything", f"{value!r} is the whole internet; name narrower ranges")
    if net.version == 4 and METADATA_ADDRESS in net:
        raise _invalid(
            "cidr_metadata",
            f"{value!r} contains the cloud metadata address 169.254.169.254, which must never be reachable",
        )
    return str(net)


DnsLabel = Annotated[str, _dns_label(63)]
ShortName = Annotated[str, _dns_label(30)]
Identifier = Annotated[str, AfterValidator(_identifier)]
QualifiedTable = Annotated[str, AfterValidator(_qualified_table)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Duration = Annotated[str, AfterValidator(_duration)]
Cidr = Annotated[str, AfterValidator(_network)]
Port = Annotated[int, Field(ge=1, le=65535)]
UnprivilegedPort = Annotated[int, Field(ge=1024, le=65535)]


class ImageRef(BaseModel):
    """An OCI image reference split the way charts expect it."""

    model_config = ConfigDict(frozen=True)

    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    def __str__(self) -> str:
        ref = self.repository
        if self.tag:
            ref += f":{self.tag}"
        if self.digest:
            ref += f"@{self.digest}"
        return ref

    def chart_values(self) -> dict[str, str]:
        return {"repository": self.repository, "tag": self.tag or "", "digest": self.digest or ""}


def _parse_image(value: Any) -> Any:
    if isinstance(value, str):
        match = _IMAGE.fullmatch(value)
        if not match or not (match["tag"] or match["digest"]):
            raise _invalid(
                "image",
                f"{value!r} is not an image reference with a tag or digest, such as registry.example.com/mcp/tickets:1.4.2@sha256:<64 hex>",
            )
        return ImageRef(repository=match["repository"], tag=match["tag"], digest=match["digest"])
    return value


Image = Annotated[ImageRef, BeforeValidator(_parse_image)]


# --- sections ---------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourceList(_Section):
    cpu: Quantity
    memory: Quantity


class Resources(_Section):
    requests: ResourceList
    limits: ResourceList

    def chart_values(self) -> dict[str, dict[str, str]]:
        return self.model_dump()


def _resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> Resources:
    return Resources(
        requests=ResourceList(cpu=cpu, memory=memory),
        limits=ResourceList(cpu=cpu_limit, memory=memory_limit),
    )


class Tier(StrEnum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class PlatformEndpoints(_Section):
    """The managed side: whether `pulumi up` manages it, how to reach its API, and the
    address ranges the outbound-only workloads may connect to."""

    enabled: bool = True
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    workspace_id: str | None = Field(default=None, pattern=r"^wrkspc_[A-Za-z0-9]{4,64}$")

    api_cidrs: list[Cidr] = Field(default=["160.79.104.0/23", "2607:6bc0::/48"], min_length=1)
    api_port: Port = 443
    tunnel_edge_cidrs: list[Cidr] = Field(
        default=["198.41.192.0/19", "2606:4700:a0::/44"], min_length=1
    )
    tunnel_edge_port: Port = 7844


class ClusterNetwork(_Section):
    service_cidrs: list[Cidr] = Field(default=["10.96.0.0/12"], min_length=1)
    dns_namespace: DnsLabel = "kube-system"
    dns_pod_labels: dict[str, str] = Field(default={"k8s-app": "kube-dns"}, min_length=1)


class NamespaceQuota(_Section):
    pods: int = Field(default=50, ge=1)
    requests_cpu: Quantity = "8"
    requests_memory: Quantity = "16Gi"
    limits_cpu: Quantity = "16"
    limits_memory: Quantity = "32Gi"


class DatabaseEndpoint(_Section):
    host: Hostname
    port: Port = 5432
    cidrs: list[Cidr] = Field(min_length=1, description="where the database's addresses live")
    admin_user: Identifier = "perimeter_admin"
    sslmode: Literal["disable", "require", "verify-ca", "verify-full"] = "require"
    connection_limit: int = Field(default=10, ge=1, le=1000)
    statement_timeout: Duration = "15s"


Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE"]


class TableGrant(_Section):
    table: QualifiedTable
    privileges: list[Privilege] = Field(min_length=1)
    columns: list[Identifier] | None = None

    @field_validator("privileges")
    @classmethod
    def _unique_privileges(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise _invalid("duplicate", "each privilege may be named once")
        return value

    @property
    def schema_name(self) -> str:
        return self.table.split(".", 1)[0]


class Tool(_Section):
    name: Identifier
    description: str = ""
    access: Literal["read", "write"]
    permission_policy: Literal["always_allow", "always_ask"] | None = None
    grants: list[TableGrant] = Field(min_length=1)
    tenant_column: Identifier | None = None

    @model_validator(mode="after")
    def _least_privilege(self) -> Tool:
        if self.access == "read":
            for i, grant in enumerate(self.grants):
                wider = [p for p in grant.privileges if p != "SELECT"]
                if wider:
                    raise _invalid(
                        "read_only",
                        f"grants[{i}]: a read tool may only hold SELECT, not {', '.join(wider)}",
                    )
        elif self.permission_policy == "always_allow":
            raise _invalid("write_policy", "permission_policy of a write tool must be always_ask")
        return self

    @property
    def effective_permission_policy(self) -> str:
        if self.permission_policy:
            return self.permission_policy
        return "always_allow" if self.access == "read" else "always_ask"


class McpServer(_Section):
    name: ShortName
    image: Image
    port: UnprivilegedPort = 8080
    path: str = Field(default="/mcp", pattern=r"^/[A-Za-z0-9._~/-]*$")
    route: ShortName | None = None
    replicas: int = Field(default=2, ge=1, le=20)
    resources: Resources = _resources("100m", "128Mi", "500m", "256Mi")
    database: Identifier
    tools: list[Tool] = Field(min_length=1)
    # Raise by one per `pulumi up` to rotate this server's platform token without downtime.
    token_epoch: int = Field(default=0, ge=0)

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[Tool]) -> list[Tool]:
        _require_unique((t.name for t in tools), "tool name")
        return tools

    @property
    def route_name(self) -> str:
        return self.route or self.name


class Tunnel(_Section):
    # With the platform enabled: `id` adopts an existing tunnel (else one is created) and
    # `domain`, when given, is checked against the one the platform assigned.
    # With it disabled both are required: the operator created the tunnel by hand.
    id: str | None = Field(default=None, pattern=r"^tnl_[A-Za-z0-9]{4,64}$")
    domain: Hostname | None = None
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    token_epoch: int = Field(default=0, ge=0, description="raise by one to rotate the token")
    replicas: int = Field(default=2, ge=1, le=10)
    proxy_image: Image
    cloudflared_image: Image
    proxy_port: UnprivilegedPort = 8443
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    shutdown_timeout: Duration = "30s"
    proxy_resources: Resources = _resources("50m", "64Mi", "500m", "256Mi")
    cloudflared_resources: Resources = _resources("50m", "64Mi", "500m", "256Mi")


class SandboxPool(_Section):
    """One pool: one trust boundary, with its own environment, key and egress."""

    name: ShortName
    # With the platform enabled: adopts this environment (else one is created).
    # With it disabled: required, the environment created by hand.
    environment_id: str | None = Field(default=None, pattern=r"^env_[A-Za-z0-9]{4,64}$")
    description: str | None = None
    image: Image
    min_replicas: int = Field(default=1, ge=1, le=100)
    max_replicas: int = Field(default=4, ge=1, le=100)
    runtime_class_name: DnsLabel | None = None
    run_timeout_seconds: int = Field(default=1800, ge=30, le=86400)
    max_tool_calls: int = Field(default=200, ge=1, le=10000)
    max_idle: Duration = "60s"
    # Servers this pool's code may call directly, bypassing the platform's approval gate.
    # Empty by default; each entry is flagged by the audit and warned about by the policies.
    direct_mcp_access: list[ShortName] = []
    workspace_size: Quantity = "2Gi"
    resources: Resources = _resources("250m", "512Mi", "1", "1Gi")

    @model_validator(mode="after")
    def _replica_range(self) -> SandboxPool:
        if self.min_replicas > self.max_replicas:
            raise _invalid(
                "replicas",
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})",
            )
        return self


class AgentServer(_Section):
    """One MCP server an agent may use, and which of its tools (all when omitted)."""

    server: ShortName
    tools: list[Identifier] | None = Field(default=None, min_length=1)


class AgentSpec(_Section):
    """One agent on the platform; its tools are a subset of the declared servers' tools."""

    name: DnsLabel
    model: str = Field(min_length=1, max_length=128)
    system_prompt_file: str = Field(min_length=1, description="relative to the stack file")
    description: str | None = None
    sandbox: ShortName
    mcp_servers: list[AgentServer] = Field(min_length=1, max_length=MAX_MCP_SERVERS)
    id: str | None = Field(default=None, pattern=r"^agent_[A-Za-z0-9]{4,64}$")


class Vault(_Section):
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    id: str | None = Field(default=None, pattern=r"^vlt_[A-Za-z0-9]{4,64}$")


class Provisioner(_Section):
    image: Image
    resources: Resources = _resources("50m", "64Mi", "250m", "128Mi")
    backoff_limit: int = Field(default=2, ge=0, le=10)


class PerimeterConfig(_Section):
    """One environment: everything `pulumi up --stack <env>` creates."""

    environment: ShortName
    tier: Tier
    namespace: DnsLabel
    rotation_epoch: int = Field(default=0, ge=0)
    platform: PlatformEndpoints = PlatformEndpoints()
    cluster: ClusterNetwork = ClusterNetwork()
    quota: NamespaceQuota = NamespaceQuota()
    tunnel: Tunnel
    databases: dict[Identifier, DatabaseEndpoint] = Field(min_length=1)
    mcp_servers: list[McpServer] = Field(min_length=1, max_length=MAX_MCP_SERVERS)
    sandboxes: list[SandboxPool] = Field(min_length=1)
    agents: list[AgentSpec] = []
    vault: Vault = Vault()
    provisioner: Provisioner
    _prompts: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _old_shape(cls, raw: Any) -> Any:
        """Stack files written for the single-pool shape get told exactly what to change."""
        if not isinstance(raw, Mapping):
            return raw
        problems = []
        if "sandbox" in raw:
            problems.append(
                "sandbox: replaced by `sandboxes:`, a list with one pool per trust boundary; "
                "write `sandboxes: [{name: <pool>, ...the same settings...}]` and rename its "
                "`mcp_servers` to `direct_mcp_access`"
            )
        for i, pool in enumerate(raw.get("sandboxes") or []):
            if isinstance(pool, Mapping) and "mcp_servers" in pool:
                problems.append(
                    f"sandboxes[{i}].mcp_servers: renamed `direct_mcp_access` (it bypasses the "
                    "platform's approval gate; list servers only when a pool needs that)"
                )
        if problems:
            raise PydanticCustomError("cross_reference", "\n".join(problems))
        return raw

    def _platform_problems(self) -> list[str]:
        """Pools, agents and the platform section: checked with the other cross-references."""
        problems: list[str] = []
        declared = {s.name: s for s in self.mcp_servers}
        pools = [p.name for p in self.sandboxes]
        problems += _duplicates(pools, "sandboxes", "name")
        problems += _duplicates([a.name for a in self.agents], "agents", "name")
        if not self.platform.enabled:
            if self.tunnel.id is None or self.tunnel.domain is None:
                problems.append(
                    "tunnel: with platform.enabled: false, give the hand-made tunnel's `id` and "
                    "`domain`"
                )
            for i, pool in enumerate(self.sandboxes):
                if pool.environment_id is None:
                    problems.append(
                        f"sandboxes[{i}].environment_id: required with platform.enabled: false"
                    )
        for i, pool in enumerate(self.sandboxes):
            for j, name in enumerate(pool.direct_mcp_access):
                if name not in declared:
                    problems.append(
                        f"sandboxes[{i}].direct_mcp_access[{j}]: {name!r} is not a declared MCP "
                        f"server (declared: {', '.join(declared)})"
                    )
        for i, agent in enumerate(self.agents):
            where = f"agents[{i}]"
            if agent.sandbox not in pools:
                problems.append(
                    f"{where}.sandbox: {agent.sandbox!r} is not a sandbox pool "
                    f"(pools: {', '.join(pools)})"
                )
            problems += _duplicates(
                [s.server for s in agent.mcp_servers], f"{where}.mcp_servers", "server"
            )
            for j, use in enumerate(agent.mcp_servers):
                server = declared.get(use.server)
                if server is None:
                    problems.append(
                        f"{where}.mcp_servers[{j}].server: {use.server!r} is not a declared MCP "
                        f"server (declared: {', '.join(declared)})"
                    )
                    continue
                tools = [t.name for t in server.tools]
                for k, tool in enumerate(use.tools or []):
                    if tool not in tools:
                        problems.append(
                            f"{where}.mcp_servers[{j}].tools[{k}]: {tool!r} is not a tool of "
                            f"{server.name} (tools: {', '.join(tools)})"
                        )
        return problems

    @model_validator(mode="after")
    def _cross_references(self) -> PerimeterConfig:
        problems: list[str] = []
        names = [s.name for s in self.mcp_servers]
        problems += _duplicates(names, "mcp_servers", "name")
        problems += _duplicates([s.route_name for s in self.mcp_servers], "mcp_servers", "route")
        problems += self._platform_problems()
        for i, server in enumerate(self.mcp_servers):
            if server.database not in self.databases:
                problems.append(
                    f"mcp_servers[{i}].database: {server.database!r} is not declared under "
                    f"databases (declared: {', '.join(sorted(self.databases)) or 'none'})"
                )
        roles: dict[str, str] = {}
        for i, server in enumerate(self.mcp_servers):
            for j, tool in enumerate(server.tools):
                role = role_name(server.name, tool.name)
                where = f"mcp_servers[{i}].tools[{j}].name"
                if len(role) > 63:
                    problems.append(
                        f"{where}: database role {role!r} is {len(role)} characters; PostgreSQL "
                        "allows 63, so shorten the server or tool name"
                    )
                if role in roles:
                    problems.append(
                        f"{where}: database role {role!r} would also belong to {roles[role]}"
                    )
                roles.setdefault(role, where)
        if self.tier is Tier.prod:
            for path, image in self.images():
                if not image.pinned:
                    problems.append(
                        f"{path}: {image} is not pinned by digest; prod images must end in "
                        "@sha256:<64 hex>"
                    )
        if problems:
            raise PydanticCustomError("cross_reference", "\n".join(problems))
        return self

    def images(self) -> list[tuple[str, ImageRef]]:
        found = [
            ("tunnel.proxy_image", self.tunnel.proxy_image),
            ("tunnel.cloudflared_image", self.tunnel.cloudflared_image),
            ("provisioner.image", self.provisioner.image),
        ]
        found += [(f"sandboxes[{i}].image", p.image) for i, p in enumerate(self.sandboxes)]
        found += [(f"mcp_servers[{i}].image", s.image) for i, s in enumerate(self.mcp_servers)]
        return found

    def server(self, name: str) -> McpServer:
        return next(s for s in self.mcp_servers if s.name == name)

    def pool(self, name: str) -> SandboxPool:
        return next(p for p in self.sandboxes if p.name == name)

    @property
    def tunnel_domain(self) -> str:
        """The domain known before `up`: configured, or a placeholder until the platform assigns it."""
        return self.tunnel.domain or PENDING_TUNNEL_DOMAIN

    def mcp_url(self, server: McpServer, domain: str | None = None) -> str:
        """The exact URL the platform dials and the vault credential is bound to.

        `domain` is the tunnel's, as the platform assigned it; every URL derives from it.
        """
        return f"https://{server.route_name}.{domain or self.tunnel_domain}{server.path}"

    def system_prompt(self, agent: AgentSpec) -> str:
        return self._prompts.get(agent.name, "")

    def agent_tools(self, agent: AgentSpec) -> list[tuple[McpServer, list[Tool]]]:
        """Each server the agent may use, with the tools it may call."""
        chosen = []
        for use in agent.mcp_servers:
            server = self.server(use.server)
            allowed = use.tools or [t.name for t in server.tools]
            chosen.append((server, [t for t in server.tools if t.name in allowed]))
        return chosen


def role_name(server: str, tool: str) -> str:
    """Database role of one tool: derived, never configured, so it cannot be shared."""
    return f"mcp_{server.replace('-', '_')}_{tool}"


def _require_unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise _invalid("duplicate", f"{what} {value!r} is declared twice")
        seen.add(value)


def _duplicates(values: list[str], section: str, field: str) -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for i, value in enumerate(values):
        if value in seen:
            problems.append(
                f"{section}[{i}].{field}: {value!r} is already used by {section}[{seen[value]}]"
            )
        seen.setdefault(value, i)
    return problems


# --- errors and loading -----------------------------------------------------------------------


class ConfigError(Exception):
    """Every problem of one configuration, each with its field path."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"invalid configuration in {source}: {len(problems)} problem(s)"]
        lines += [
            f"  - {path}: {message}" if path else f"  - {message}" for path, message in problems
        ]
        lines.append("nothing was deployed or written")
        super().__init__("\n".join(lines))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """Walk the model along an error location to name the keys that are allowed there."""
    model: Any = PerimeterConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part)
            if field is None:
                continue  # a dict key such as a database name
            model = _inner_model(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = _path(loc)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            problems.append((path, f"unknown key; allowed keys here: {', '.join(allowed)}"))
        elif err["type"] == "cross_reference":
            for line in err["msg"].splitlines():
                sub, _, message = line.partition(": ")
                problems.append((sub, message))
        else:
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if ": " in message and message.split(": ", 1)[0].startswith("grants["):
                sub, message = message.split(": ", 1)
                path = f"{path}.{sub}" if path else sub
            problems.append((path, message))
    return problems


def parse_perimeter(raw: Any, source: str, base_dir: Path | None = None) -> PerimeterConfig:
    """Validate the settings; system prompt files are read relative to `base_dir`."""
    if not isinstance(raw, Mapping):
        raise ConfigError(source, [(PERIMETER_KEY, "missing, or not a mapping of settings")])
    try:
        config = PerimeterConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None
    base = base_dir or Path(source).resolve().parent
    problems = []
    for i, agent in enumerate(config.agents):
        path = base / agent.system_prompt_file
        try:
            config._prompts[agent.name] = path.read_text().strip()
        except OSError as exc:
            problems.append(
                (
                    f"agents[{i}].system_prompt_file",
                    f"cannot read {path} ({exc.strerror}); the path is relative to the stack file",
                )
            )
    if problems:
        raise ConfigError(source, problems)
    return config


def stack_file(stack: str, root: Path | None = None) -> Path:
    root = root or Path(__file__).resolve().parent.parent
    return root / f"Pulumi.{stack}.yaml"


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` map of a stack file, checked for keys this project does not know."""
    source = str(path)
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(source, [("", f"stack file {path} does not exist")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("", f"not valid YAML: {exc}")]) from None
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(source, [("config", "must be a mapping of stack settings")])
    known = {PERIMETER_KEY} | {f"{PROJECT}:{k}" for k in SECRET_KEYS}
    unknown = [k for k in config if k.startswith(f"{PROJECT}:") and k not in known]
    if unknown:
        raise ConfigError(
            source,
            [
                (k, f"replaced by {RENAMED_SECRET_KEYS[k.split(':', 1)[1]]}")
                if k.split(":", 1)[1] in RENAMED_SECRET_KEYS
                else (k, f"unknown key; allowed: {', '.join(sorted(known))}")
                for k in unknown
            ],
        )
    return config


def load_stack_file(path: Path) -> PerimeterConfig:
    config = read_stack_file(path)
    return parse_perimeter(config.get(PERIMETER_KEY), str(path), path.resolve().parent)


def load(stack: str | None = None, config_file: str | Path | None = None) -> PerimeterConfig:
    """The offline commands' entry: `--stack <env>` or `--config <file>`."""
    if config_file is not None:
        return load_stack_file(Path(config_file))
    if stack is None:
        raise ConfigError("command line", [("", "give --stack <env> or --config <file>")])
    return load_stack_file(stack_file(stack))


# --- the Pulumi side: structured settings plus the secrets ------------------------------------


T = TypeVar("T")


def as_secret(value: pulumi.Output[T]) -> pulumi.Output[T]:
    """`Output.secret` keeping the value type (mypy cannot infer it through `Input[U]`)."""
    import pulumi

    return pulumi.Output.secret(value)


@dataclass(frozen=True)
class PerimeterSecrets:
    """Secret inputs, always as Pulumi secret Outputs so they never print in plain text.

    `tunnel_token` is set only with the platform disabled (otherwise the platform
    reveals it); `tunnel_ca_cert` and `platform_api_key` only with it enabled.
    """

    tunnel_token: pulumi.Output[str] | None
    tunnel_tls_cert: pulumi.Output[str]
    tunnel_tls_key: pulumi.Output[str]
    environment_keys: dict[str, pulumi.Output[str]]
    database_admin_passwords: dict[str, pulumi.Output[str]]
    tunnel_ca_cert: pulumi.Output[str] | None = None
    platform_api_key: pulumi.Output[str] | None = None


def required_secrets(config: PerimeterConfig) -> list[str]:
    """The secret keys one environment needs, by whether it manages the platform side."""
    keys = ["tunnelTlsCert", "tunnelTlsKey", "environmentKeys", "databaseAdminPasswords"]
    if config.platform.enabled:
        return [*keys, "tunnelCaCert", "platformApiKey"]
    return ["tunnelToken", *keys]


def offline_secrets(config: PerimeterConfig) -> PerimeterSecrets:
    """Visible placeholders for the offline commands, which never see real secrets."""
    import pulumi

    def placeholder(key: str) -> pulumi.Output[str]:
        return pulumi.Output.secret(f"<secret:{key}>")

    enabled = config.platform.enabled
    return PerimeterSecrets(
        tunnel_token=None if enabled else placeholder("tunnelToken"),
        tunnel_tls_cert=placeholder("tunnelTlsCert"),
        tunnel_tls_key=placeholder("tunnelTlsKey"),
        environment_keys={
            pool.name: placeholder(f"environmentKeys.{pool.name}") for pool in config.sandboxes
        },
        database_admin_passwords={
            name: placeholder(f"databaseAdminPasswords.{name}") for name in config.databases
        },
        tunnel_ca_cert=placeholder("tunnelCaCert") if enabled else None,
        platform_api_key=placeholder("platformApiKey") if enabled else None,
    )


_OBJECT_SECRETS = {"databaseAdminPasswords": "databases", "environmentKeys": "sandboxes"}


def load_pulumi() -> tuple[PerimeterConfig, PerimeterSecrets]:
    """Read the stack's config under `pulumi up`/`preview`; raise one RunError listing all problems."""
    import pulumi

    stack = pulumi.get_stack()
    source = f"Pulumi.{stack}.yaml"
    cfg = pulumi.Config(PROJECT)
    root = Path(__file__).resolve().parent.parent
    try:
        config = parse_perimeter(cfg.get_object("perimeter"), source, root)
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None

    problems: list[tuple[str, str]] = []
    for old, replacement in RENAMED_SECRET_KEYS.items():
        if cfg.get(old) is not None:
            problems.append((f"{PROJECT}:{old}", f"replaced by {replacement}"))
    values: dict[str, Any] = {}
    names = {
        "databaseAdminPasswords": list(config.databases),
        "environmentKeys": [p.name for p in config.sandboxes],
    }
    for key in required_secrets(config):
        meaning = SECRET_KEYS[key]
        value = cfg.get_secret_object(key) if key in _OBJECT_SECRETS else cfg.get_secret(key)
        if value is None:
            problems.append(
                (f"{PROJECT}:{key}", f"missing: set {meaning} with `pulumi config set --secret`")
            )
        values[key] = value
    for key, wanted in names.items():
        given = cfg.get_object(key) or {}
        if not isinstance(given, Mapping):
            problems.append(
                (f"{PROJECT}:{key}", f"must be an object keyed by {_OBJECT_SECRETS[key]}")
            )
            continue
        missing = [name for name in wanted if name not in given]
        if values.get(key) is not None and missing:
            problems.append((f"{PROJECT}:{key}", f"no value for: {', '.join(missing)}"))
    if problems:
        raise pulumi.RunError(str(ConfigError(source, problems)))

    def entries(key: str) -> dict[str, pulumi.Output[str]]:
        whole = values[key]
        return {name: as_secret(whole.apply(lambda d, n=name: str(d[n]))) for name in names[key]}

    return config, PerimeterSecrets(
        tunnel_token=values.get("tunnelToken"),
        tunnel_tls_cert=values["tunnelTlsCert"],
        tunnel_tls_key=values["tunnelTlsKey"],
        environment_keys=entries("environmentKeys"),
        database_admin_passwords=entries("databaseAdminPasswords"),
        tunnel_ca_cert=values.get("tunnelCaCert"),
        platform_api_key=values.get("platformApiKey"),
    )
