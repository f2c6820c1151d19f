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
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
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
    "tunnelToken": "the tunnel token issued with the tunnel id",
    "tunnelTlsCert": "PEM certificate the proxy presents on the inner TLS layer",
    "tunnelTlsKey": "PEM private key of that certificate",
    "environmentKey": "the self-hosted environment service key",
    "databaseAdminPasswords": "object: database name -> admin password",
}


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
    """Where the outbound-only workloads may connect to; configurable lists."""

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

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[Tool]) -> list[Tool]:
        _require_unique((t.name for t in tools), "tool name")
        return tools

    @property
    def route_name(self) -> str:
        return self.route or self.name


class Tunnel(_Section):
    id: str = Field(pattern=r"^tnl_[A-Za-z0-9]{4,64}$")
    domain: Hostname
    replicas: int = Field(default=2, ge=1, le=10)
    proxy_image: Image
    cloudflared_image: Image
    proxy_port: UnprivilegedPort = 8443
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    shutdown_timeout: Duration = "30s"
    proxy_resources: Resources = _resources("50m", "64Mi", "500m", "256Mi")
    cloudflared_resources: Resources = _resources("50m", "64Mi", "500m", "256Mi")


class SandboxPool(_Section):
    """One runner pool. The limits are enforced by the `sandbox` worker the chart runs."""

    # The SDK's own bound on one tool call (`TOOL_TIMEOUT` in
    # anthropic.lib.tools._beta_session_runner, 2.10.0); a test holds the two equal. Not
    # imported: the SDK takes seconds to import and every offline command loads this module.
    SDK_TOOL_CALL_TIMEOUT_SECONDS: ClassVar[int] = 150

    environment_id: str = Field(pattern=r"^env_[A-Za-z0-9]{4,64}$")
    image: Image
    min_replicas: int = Field(default=1, ge=1, le=100)
    max_replicas: int = Field(default=4, ge=1, le=100)
    runtime_class_name: DnsLabel | None = None
    run_timeout_seconds: int = Field(default=1800, le=86400)
    max_tool_calls: int = Field(default=200, ge=1, le=10000)
    # Reserved after the run timeout for winding a session down: the tool call in flight is
    # cancelled, bash torn down, the force-stop sent, the workspace emptied.
    drain_seconds: int = Field(default=30, ge=5, le=600)
    # Unset: run_timeout_seconds + drain_seconds, so a scaled-down runner can always finish.
    termination_grace_period_seconds: int | None = Field(default=None, ge=1, le=90000)
    max_idle: Duration = "60s"
    mcp_servers: list[ShortName] = []
    workspace_size: Quantity = "2Gi"
    resources: Resources = _resources("250m", "512Mi", "1", "1Gi")

    @field_validator("run_timeout_seconds")
    @classmethod
    def _longer_than_one_tool_call(cls, value: int) -> int:
        floor = cls.SDK_TOOL_CALL_TIMEOUT_SECONDS
        if value < floor:
            raise _invalid(
                "run_timeout",
                f"{value} is shorter than one tool call may take: the SDK lets a single call "
                f"run {floor}s, so a run timeout below {floor} would cut off calls that are "
                "within their own limit; use a small max_tool_calls to bound short sessions",
            )
        return value

    @model_validator(mode="after")
    def _replica_range(self) -> SandboxPool:
        if self.min_replicas > self.max_replicas:
            raise _invalid(
                "replicas",
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})",
            )
        return self

    @model_validator(mode="after")
    def _grace_covers_a_run(self) -> SandboxPool:
        needed = self.run_timeout_seconds + self.drain_seconds
        grace = self.termination_grace_period_seconds
        if grace is not None and grace < needed:
            raise _invalid(
                "termination_grace",
                f"termination_grace_period_seconds ({grace}) must be at least "
                f"run_timeout_seconds + drain_seconds ({needed}): a runner scaled down mid-run "
                "would be killed before its session ends or is stopped",
            )
        return self

    @property
    def grace_period_seconds(self) -> int:
        return self.termination_grace_period_seconds or (
            self.run_timeout_seconds + self.drain_seconds
        )


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
    sandbox: SandboxPool
    provisioner: Provisioner

    @model_validator(mode="after")
    def _cross_references(self) -> PerimeterConfig:
        problems: list[str] = []
        names = [s.name for s in self.mcp_servers]
        problems += _duplicates(names, "mcp_servers", "name")
        problems += _duplicates([s.route_name for s in self.mcp_servers], "mcp_servers", "route")
        declared = set(names)
        for i, server in enumerate(self.mcp_servers):
            if server.database not in self.databases:
                problems.append(
                    f"mcp_servers[{i}].database: {server.database!r} is not declared under "
                    f"databases (declared: {', '.join(sorted(self.databases)) or 'none'})"
                )
        for i, name in enumerate(self.sandbox.mcp_servers):
            if name not in declared:
                problems.append(
                    f"sandbox.mcp_servers[{i}]: {name!r} is not a declared MCP server "
                    f"(declared: {', '.join(names)})"
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
            ("sandbox.image", self.sandbox.image),
            ("provisioner.image", self.provisioner.image),
        ]
        found += [(f"mcp_servers[{i}].image", s.image) for i, s in enumerate(self.mcp_servers)]
        return found

    def server(self, name: str) -> McpServer:
        return next(s for s in self.mcp_servers if s.name == name)

    def mcp_url(self, server: McpServer) -> str:
        """The exact URL the platform dials and the vault credential is bound to."""
        return f"https://{server.route_name}.{self.tunnel.domain}{server.path}"


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


def parse_perimeter(raw: Any, source: str) -> PerimeterConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(source, [(PERIMETER_KEY, "missing, or not a mapping of settings")])
    try:
        return PerimeterConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc)) from None


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
            [(k, f"unknown key; allowed: {', '.join(sorted(known))}") for k in unknown],
        )
    return config


def load_stack_file(path: Path) -> PerimeterConfig:
    config = read_stack_file(path)
    return parse_perimeter(config.get(PERIMETER_KEY), str(path))


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
    """Secret inputs, always as Pulumi secret Outputs so they never print in plain text."""

    tunnel_token: pulumi.Output[str]
    tunnel_tls_cert: pulumi.Output[str]
    tunnel_tls_key: pulumi.Output[str]
    environment_key: pulumi.Output[str]
    database_admin_passwords: dict[str, pulumi.Output[str]]


def offline_secrets(config: PerimeterConfig) -> PerimeterSecrets:
    """Visible placeholders for the offline commands, which never see real secrets."""
    import pulumi

    def placeholder(key: str) -> pulumi.Output[str]:
        return pulumi.Output.secret(f"<secret:{key}>")

    return PerimeterSecrets(
        tunnel_token=placeholder("tunnelToken"),
        tunnel_tls_cert=placeholder("tunnelTlsCert"),
        tunnel_tls_key=placeholder("tunnelTlsKey"),
        environment_key=placeholder("environmentKey"),
        database_admin_passwords={
            name: placeholder(f"databaseAdminPasswords.{name}") for name in config.databases
        },
    )


def load_pulumi() -> tuple[PerimeterConfig, PerimeterSecrets]:
    """Read the stack's config under `pulumi up`/`preview`; raise one RunError listing all problems."""
    import pulumi

    stack = pulumi.get_stack()
    source = f"Pulumi.{stack}.yaml"
    cfg = pulumi.Config(PROJECT)
    try:
        config = parse_perimeter(cfg.get_object("perimeter"), source)
    except ConfigError as exc:
        raise pulumi.RunError(str(exc)) from None

    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key, meaning in SECRET_KEYS.items():
        value = (
            cfg.get_secret_object(key) if key == "databaseAdminPasswords" else cfg.get_secret(key)
        )
        if value is None:
            problems.append(
                (f"{PROJECT}:{key}", f"missing: set {meaning} with `pulumi config set --secret`")
            )
        values[key] = value
    admin = cfg.get_object("databaseAdminPasswords") or {}
    if not isinstance(admin, Mapping):
        problems.append(
            (f"{PROJECT}:databaseAdminPasswords", "must be an object keyed by database")
        )
        admin = {}
    missing = [name for name in config.databases if name not in admin]
    if values.get("databaseAdminPasswords") is not None and missing:
        problems.append(
            (
                f"{PROJECT}:databaseAdminPasswords",
                f"no password for database(s): {', '.join(missing)}",
            )
        )
    if problems:
        raise pulumi.RunError(str(ConfigError(source, problems)))
    passwords = values["databaseAdminPasswords"]
    return config, PerimeterSecrets(
        tunnel_token=values["tunnelToken"],
        tunnel_tls_cert=values["tunnelTlsCert"],
        tunnel_tls_key=values["tunnelTlsKey"],
        environment_key=values["environmentKey"],
        database_admin_passwords={
            name: as_secret(passwords.apply(lambda d, n=name: str(d[n])))
            for name in config.databases
        },
    )
