"""The one place configuration is read and validated.

A stack's structured settings live under the `agent-perimeter:perimeter` key of
`Pulumi.<stack>.yaml`; its secrets under their own keys (`tunnelToken`, ...).
Everything is checked here, every problem reported at once with its field
path, before a single resource is registered or a file written.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import posixpath
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

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

from infra.dns_names import HOSTNAME, domain_problem
from infra.errors import ConfigError  # defined apart: a folder check loads no pydantic
from policies.rules.names import role_name as role_name  # one derivation, the pack's
from policies.rules.network import reachable_metadata  # every metadata address, every spelling
from policies.rules.secret_shapes import (  # one credential judge: the config's and the pack's
    credential_in_args,
    credential_in_text,
    credential_in_value,
    credential_name,
)

if TYPE_CHECKING:  # the Pulumi SDK is imported only where a Pulumi program runs
    import pulumi


def _invalid(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose text is already final (values may contain braces)."""
    return PydanticCustomError(kind, message)


PROJECT = "agent-perimeter"
PERIMETER_KEY = f"{PROJECT}:perimeter"
MAX_MCP_SERVERS = 20
# Namespaces the cluster itself uses: a perimeter there would share them with system workloads.
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Schemas owned by PostgreSQL: no tool is granted anything in them.
SYSTEM_SCHEMA_PREFIX = "pg_"
SYSTEM_SCHEMAS = ("information_schema",)

# Secret stack-config keys (set with `pulumi config set --secret`).
SECRET_KEYS: dict[str, str] = {
    "tunnelToken": "the tunnel token issued with the tunnel id (only with platform.enabled: false)",
    "tunnelTlsCert": "PEM certificate the proxy presents on the inner TLS layer",
    "tunnelTlsKey": "PEM private key of that certificate",
    "tunnelCaCert": "PEM CA of that certificate, registered with the tunnel (platform.enabled)",
    "environmentKeys": "object: sandbox pool name -> that pool's environment service key",
    "databaseAdminPasswords": "object: database name -> admin password",
    "platformApiKey": "the platform API key `pulumi up` creates the platform objects with",
    "backendCredentials": "object: MCP server name -> backend name -> that backend's credential",
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
    if not HOSTNAME.fullmatch(value):
        raise _invalid("hostname", f"{value!r} is not a hostname or IP address")
    return value


def _quantity(value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise _invalid(
            "quantity", f"{value!r} is not a Kubernetes quantity such as 100m, 256Mi or 2Gi"
        )
    return value


_QUANTITY_FACTORS = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}


def quantity_value(value: str) -> Decimal:
    """A validated quantity as a number, so requests and limits can be compared."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)", value)
    if not match or match[2] not in _QUANTITY_FACTORS:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    return Decimal(match[1]) * _QUANTITY_FACTORS[match[2]]


def _domain(value: str) -> str:
    """A DNS name with at least two labels: the platform builds https://<route>.<domain> from it."""
    problem = domain_problem(value)
    if problem is not None:
        raise _invalid(*problem)
    return value


def _url_path(value: str) -> str:
    """An absolute, normalised URL path: the vault credential matches the URL byte for byte."""
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", value):
        raise _invalid(
            "url_path",
            f"{value!r} is not a URL path: start with '/', then letters, digits and . _ ~ / - only",
        )
    normal = posixpath.normpath(value)
    if normal.startswith("//"):
        normal = normal[1:]
    if value != normal or ".." in value.split("/"):
        raise _invalid(
            "url_path_normal",
            f"{value!r} is not a normalised path (no '//', '.', '..' segments or trailing '/'); "
            f"write {normal!r}",
        )
    return value


def _namespace(value: str) -> str:
    if value in RESERVED_NAMESPACES or value.startswith("kube-"):
        raise _invalid(
            "reserved_namespace",
            f"{value!r} is reserved for the cluster itself; give the perimeter its own namespace",
        )
    return value


_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----"
)


def _ca_bundle(value: str) -> str:
    """One or more PEM certificates and nothing else (never a private key)."""
    blocks = _PEM_CERTIFICATE.findall(value)
    rest = _PEM_CERTIFICATE.sub("", value).strip()
    if "PRIVATE KEY" in value:
        raise _invalid("ca_private_key", "holds a private key; give only the CA certificate(s)")
    if not blocks or rest:
        raise _invalid(
            "ca_pem",
            "is not a PEM bundle of CA certificates (-----BEGIN CERTIFICATE----- ... "
            "-----END CERTIFICATE-----, nothing else)",
        )
    for block in blocks:
        try:
            base64.b64decode("".join(block.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _invalid("ca_pem", "holds a certificate whose body is not base64") from None
    return value if value.endswith("\n") else value + "\n"


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
    metadata = reachable_metadata(net, [])
    if metadata:
        raise _invalid(
            "cidr_metadata",
            f"{value!r} contains the cloud metadata address {metadata[0]}, which must never be reachable",
        )
    return str(net)


DnsLabel = Annotated[str, _dns_label(63)]
# Kubernetes label syntax, checked here because these become NetworkPolicy selectors: a bad
# one would be refused by the API server mid-`up`, after other objects exist.
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_LABEL_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_RULE = "at most 63 of A-Z a-z 0-9 - _ . , beginning and ending with a letter or digit"


def _label_key(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not _LABEL_PREFIX.fullmatch(prefix)):
        raise ValueError(f"label key prefix {prefix!r} is not a DNS subdomain")
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            f"label key {key!r} is not a Kubernetes label key: its name is {_LABEL_RULE}"
        )
    return key


def _label_value(value: str) -> str:
    if value and not _LABEL_NAME.fullmatch(value):
        raise ValueError(f"label value {value!r} is not a Kubernetes label value: {_LABEL_RULE}")
    return value


LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
NamespaceName = Annotated[str, _dns_label(63), AfterValidator(_namespace)]
Domain = Annotated[str, AfterValidator(_domain)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
CaBundle = Annotated[str, AfterValidator(_ca_bundle)]
ShortName = Annotated[str, _dns_label(30)]
Identifier = Annotated[str, AfterValidator(_identifier)]
QualifiedTable = Annotated[str, AfterValidator(_qualified_table)]
Hostname = Annotated[str, AfterValidator(_hostname)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Duration = Annotated[str, AfterValidator(_duration)]
Cidr = Annotated[str, AfterValidator(_network)]
Port = Annotated[int, Field(ge=1, le=65535)]
UnprivilegedPort = Annotated[int, Field(ge=1024, le=65535)]
# A rotation counter: it becomes a name suffix ("-r12"), and names have a length limit. Ten
# thousand rotations (one a day for 27 years) is plenty; a bigger number is a typo or a date.
MAX_EPOCH = 9999
Epoch = Annotated[int, Field(ge=0, le=MAX_EPOCH)]


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
    """Strict: `"8080"`, `true` or `1.0` where an integer belongs is an error, never coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _raise_cross_reference(problems: list[str]) -> None:
    """Several problems as one error; each line `path: message`, split again by `_problems`."""
    if problems:
        raise PydanticCustomError("cross_reference", "\n".join(problems))


def _require_limits_cover_requests(pairs: list[tuple[str, str, str, str]]) -> None:
    """(limit field, limit, request field, request): a limit below its request never schedules."""
    problems = [
        f"{limit_field}: {limit!r} is below {request_field} {request!r}"
        for limit_field, limit, request_field, request in pairs
        if quantity_value(limit) < quantity_value(request)
    ]
    _raise_cross_reference(problems)


class ResourceList(_Section):
    cpu: Quantity
    memory: Quantity


class Resources(_Section):
    requests: ResourceList
    limits: ResourceList

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        _require_limits_cover_requests(
            [
                ("limits.cpu", self.limits.cpu, "requests.cpu", self.requests.cpu),
                ("limits.memory", self.limits.memory, "requests.memory", self.requests.memory),
            ]
        )
        return self

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

    @field_validator("base_url")
    @classmethod
    def _safe_base_url(cls, url: str | None) -> str | None:
        if url is not None:
            _require_safe_base_url(url)
        return url


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address written as the host, in any spelling a resolver accepts: dotted, IPv6,
    and the numeric IPv4 forms inet_aton takes (2852039166, 0xa9fea9fe, 0251.0376.0251.0376,
    169.254.43518)."""
    address = _ip_or_none(host)
    if address is not None:
        return address
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _require_safe_base_url(url: str) -> None:
    """The platform's API gets the platform key with every request: only over TLS (plain
    HTTP to loopback alone, for a local stand-in), never with credentials in the URL (they
    would be logged and stored in the stack), never to a metadata, link-local or unspecified
    address, however it is spelled. The message never repeats the URL."""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry user or password (user@host): the key is sent apart")
    host = (parts.hostname or "").rstrip(".")
    address = _ip_literal(host)
    mapped = getattr(address, "ipv4_mapped", None)
    effective = mapped or address
    loopback = host == "localhost" or (effective is not None and effective.is_loopback)
    if parts.scheme != "https" and not loopback:
        raise ValueError("must be https:// (plain http only to a loopback address, for tests)")
    if effective is None:
        return
    network = ipaddress.ip_network(effective)
    if reachable_metadata(network, []) or effective.is_link_local or effective.is_unspecified:
        raise ValueError(
            "names a metadata, link-local or unspecified address: the platform key would go "
            "to the node's cloud credentials service or nowhere"
        )


class ClusterNetwork(_Section):
    service_cidrs: list[Cidr] = Field(default=["10.96.0.0/12"], min_length=1)
    dns_namespace: DnsLabel = "kube-system"
    dns_pod_labels: dict[LabelKey, LabelValue] = Field(
        default={"k8s-app": "kube-dns"}, min_length=1
    )


class NamespaceQuota(_Section):
    pods: int = Field(default=50, ge=1)
    requests_cpu: Quantity = "8"
    requests_memory: Quantity = "16Gi"
    limits_cpu: Quantity = "16"
    limits_memory: Quantity = "32Gi"

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> NamespaceQuota:
        _require_limits_cover_requests(
            [
                ("limits_cpu", self.limits_cpu, "requests_cpu", self.requests_cpu),
                ("limits_memory", self.limits_memory, "requests_memory", self.requests_memory),
            ]
        )
        return self


class CidrPrefixLimits(_Section):
    """The broadest CIDR any field may name: a wider range is almost always a typo."""

    ipv4: int = Field(default=12, ge=1, le=32)
    ipv6: int = Field(default=32, ge=1, le=128)


class DatabaseEndpoint(_Section):
    host: Hostname
    port: Port = 5432
    cidrs: list[Cidr] = Field(min_length=1, description="where the database's addresses live")
    admin_user: Identifier = "perimeter_admin"
    sslmode: Literal["disable", "require", "verify-ca", "verify-full"] = "require"
    ca_certificate: CaBundle | None = Field(
        default=None, description="PEM CA bundle the server's certificate is verified against"
    )
    connection_limit: int = Field(default=10, ge=1, le=1000)
    statement_timeout: Duration = "15s"

    @property
    def verifies_server(self) -> bool:
        return self.sslmode in ("verify-ca", "verify-full")

    @model_validator(mode="after")
    def _consistent(self) -> DatabaseEndpoint:
        problems = []
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            address = None  # a name: resolved in the cluster, its addresses must be in cidrs
        if address is not None and not any(
            address in ipaddress.ip_network(cidr) for cidr in self.cidrs
        ):
            problems.append(
                f"host: {self.host} is outside cidrs ({', '.join(self.cidrs)}); "
                "the NetworkPolicies would block every connection to it"
            )
        if self.verifies_server and self.ca_certificate is None:
            problems.append(
                f"ca_certificate: sslmode {self.sslmode} verifies the server against a CA; "
                "give the CA's PEM certificate here"
            )
        if self.ca_certificate is not None and not self.verifies_server:
            problems.append(
                f"ca_certificate: sslmode {self.sslmode} never checks it; "
                "use verify-full (or verify-ca) or remove the certificate"
            )
        _raise_cross_reference(problems)
        return self


Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE"]


def _user_schema(value: str) -> str:
    schema = value.split(".", 1)[0]
    if schema.startswith(SYSTEM_SCHEMA_PREFIX) or schema in SYSTEM_SCHEMAS:
        raise _invalid(
            "system_schema",
            f"{value!r} is in the system schema {schema!r}; tools are granted only user tables",
        )
    return value


class TableGrant(_Section):
    table: Annotated[QualifiedTable, AfterValidator(_user_schema)]
    privileges: list[Privilege] = Field(min_length=1)
    columns: list[Identifier] | None = Field(
        default=None, min_length=1, description="omit for the whole table; never empty"
    )

    @field_validator("privileges")
    @classmethod
    def _unique_privileges(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise _invalid("duplicate", "each privilege may be named once")
        return value

    @field_validator("columns")
    @classmethod
    def _unique_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            _require_unique(value, "column")
        return value

    @property
    def schema_name(self) -> str:
        return self.table.split(".", 1)[0]


class Tool(_Section):
    name: Identifier
    description: str = ""
    access: Literal["read", "write"]
    permission_policy: Literal["always_allow", "always_ask"] | None = None
    # Required (at least one) exactly when the tool's server has a database; refused otherwise.
    grants: list[TableGrant] = []
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
        if self.tenant_column is not None and self.grants:
            # Per table, across the tool's grants: UPDATE (status) beside SELECT (tenant_id, ...)
            # is fine; a table where no grant covers the tenant column is not.
            covered: dict[str, bool] = {}
            first: dict[str, int] = {}
            for i, grant in enumerate(self.grants):
                first.setdefault(grant.table, i)
                covered[grant.table] = covered.get(grant.table, False) or (
                    grant.columns is None or self.tenant_column in grant.columns
                )
            for table, ok in covered.items():
                if not ok:
                    raise _invalid(
                        "tenant_column",
                        f"grants[{first[table]}].columns: the tenant column {self.tenant_column!r} "
                        f"is not among the columns granted on {table}; the tenant filter could "
                        "not be checked",
                    )
        return self

    @property
    def effective_permission_policy(self) -> str:
        if self.permission_policy:
            return self.permission_policy
        return "always_allow" if self.access == "read" else "always_ask"


_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
# Set by the chart itself: a server's own settings must not shadow them.
RESERVED_ENV_PREFIXES = ("MCP_", "BACKEND_", "DATABASE_", "PG", "TOOL_")
MAX_CONFIG_FILES_BYTES = 512 * 1024  # a ConfigMap holds at most 1 MiB, with its metadata


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise _invalid(
            "env_name",
            f"{value!r} is not an environment variable name: A-Z, 0-9 and '_', not starting "
            "with a digit",
        )
    if value.startswith(RESERVED_ENV_PREFIXES):
        raise _invalid(
            "env_reserved",
            f"{value!r} starts with {', '.join(RESERVED_ENV_PREFIXES)}: the chart sets those "
            "itself; pick another name",
        )
    if credential_name(value):  # a value under such a name is a credential
        raise _invalid(
            "env_credential",
            f"{value!r} names a credential; declare it as a backend with `credential: true` and "
            "set it under the backendCredentials secret, so it is mounted as a file",
        )
    return value


def _file_name(value: str) -> str:
    if not _FILE_NAME.fullmatch(value):
        raise _invalid(
            "file_name",
            f"{value!r} is not a plain file name: letters, digits, '.', '_' and '-', no '/'",
        )
    return value


def _refused_credential(found: str) -> PydanticCustomError:
    return _invalid(
        "credential_value",
        f"holds {found}; credentials go in the backendCredentials secret, mounted as a file "
        "(the value is not shown here)",
    )


def _no_credential_value(value: str) -> str:
    found = credential_in_value(value)
    if found:
        raise _refused_credential(found)
    return value


def _no_credential_text(value: str) -> str:
    found = credential_in_text(value)
    if found:
        raise _refused_credential(found)
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]
FileName = Annotated[str, AfterValidator(_file_name)]
PlainText = Annotated[str, AfterValidator(_no_credential_value)]
PlainFile = Annotated[str, AfterValidator(_no_credential_text)]


class Backend(_Section):
    """A service an MCP server calls besides its database: an internal API, a queue, a SaaS
    gateway. The server's egress allows exactly its backends' addresses and ports."""

    name: ShortName
    # What the server connects to: an IP address, or a DNS name whose addresses `cidrs` states
    # (a NetworkPolicy matches addresses, never names).
    host: Hostname | None = None
    cidrs: list[Cidr] = []
    ports: list[Port] = Field(min_length=1)
    protocol: Literal["TCP", "UDP"] = "TCP"
    tls: bool = True
    # True: the stack's `backendCredentials.<server>.<backend>` secret is mounted as a file.
    credential: bool = False

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, value: list[int]) -> list[int]:
        _require_unique((str(p) for p in value), "port")
        return value

    @model_validator(mode="after")
    def _addressable(self) -> Backend:
        problems = []
        address = _ip_or_none(self.host)
        if self.host is None and not self.cidrs:
            problems.append(
                "cidrs: give the backend's address: `host` (an IP address, or a DNS name with "
                "`cidrs`) or `cidrs`"
            )
        elif self.host is not None and address is None and not self.cidrs:
            problems.append(
                f"cidrs: {self.host} is a DNS name and NetworkPolicies cannot match names; "
                "state the CIDRs its addresses live in (cidrs: [...])"
            )
        if address is not None and reachable_metadata(ipaddress.ip_network(address), []):
            problems.append(
                f"host: {self.host} is the cloud metadata address, which must never be reachable"
            )
        if address is not None and self.cidrs and not _inside(address, self.cidrs):
            problems.append(
                f"host: {self.host} is outside cidrs ({', '.join(self.cidrs)}); the "
                "NetworkPolicy would block every connection to it"
            )
        problems += [f"cidrs[{j}]: {m}" for j, m in _overlaps(self.cidrs)]
        _raise_cross_reference(problems)
        return self

    @property
    def effective_cidrs(self) -> list[str]:
        """The ranges its egress allows: the stated CIDRs, or the host's own address."""
        if self.cidrs:
            return list(self.cidrs)
        address = ipaddress.ip_address(str(self.host))
        return [f"{address}/{address.max_prefixlen}"]


def _ip_or_none(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host) if host else None
    except ValueError:
        return None


def _inside(address: ipaddress.IPv4Address | ipaddress.IPv6Address, cidrs: list[str]) -> bool:
    return any(address in ipaddress.ip_network(cidr) for cidr in cidrs)


def _overlap(cidr: str, seen: Iterable[tuple[str, str]]) -> str | None:
    """Why `cidr` clashes with one of `seen` ((where, cidr) pairs), if it does: two
    declarations of the same addresses are a typo, or one backend reached through another's
    allowance."""
    network = ipaddress.ip_network(cidr)
    for where, other in seen:
        if network.overlaps(ipaddress.ip_network(other)):
            return f"{cidr} overlaps {where} ({other})"
    return None


def _overlaps(cidrs: list[str]) -> list[tuple[int, str]]:
    """(index, message) of each range in `cidrs` that overlaps an earlier one."""
    found = []
    for j, cidr in enumerate(cidrs):
        clash = _overlap(cidr, ((f"cidrs[{k}]", c) for k, c in enumerate(cidrs[:j])))
        if clash:
            found.append((j, clash))
    return found


class McpServer(_Section):
    name: ShortName
    image: Image
    port: UnprivilegedPort = 8080
    path: UrlPath = "/mcp"
    route: ShortName | None = None
    replicas: int = Field(default=2, ge=1, le=20)
    resources: Resources = _resources("100m", "128Mi", "500m", "256Mi")
    # A PostgreSQL backend declared under `databases`, with a role and grants per tool.
    database: Identifier | None = None
    backends: list[Backend] = []
    tools: list[Tool] = Field(min_length=1)
    env: dict[EnvName, PlainText] = {}
    args: list[PlainText] = Field(default=[], max_length=64)
    config_files: dict[FileName, PlainFile] = {}
    # Raise by one per `pulumi up` to rotate this server's platform token without downtime.
    token_epoch: Epoch = 0

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, tools: list[Tool]) -> list[Tool]:
        _require_unique((t.name for t in tools), "tool name")
        return tools

    @field_validator("args")
    @classmethod
    def _no_credential_flag(cls, args: list[str]) -> list[str]:
        found = credential_in_args(args)
        if found:
            index, what = found
            raise _invalid(
                "credential_value",
                f"args[{index}] holds {what}; credentials go in the backendCredentials secret, "
                "mounted as a file (the value is not shown here)",
            )
        return args

    @field_validator("config_files")
    @classmethod
    def _config_size(cls, files: dict[str, str]) -> dict[str, str]:
        size = sum(len(k) + len(v.encode()) for k, v in files.items())
        if size > MAX_CONFIG_FILES_BYTES:
            raise _invalid(
                "config_size",
                f"{size} bytes of config files; one ConfigMap holds at most "
                f"{MAX_CONFIG_FILES_BYTES} here",
            )
        return files

    @model_validator(mode="after")
    def _backends_and_grants(self) -> McpServer:
        problems = _duplicates([b.name for b in self.backends], "backends", "name")
        problems += [
            f"backends[{i}].name: {b.name!r} is already the name of the server's database"
            for i, b in enumerate(self.backends)
            if b.name == self.database
        ]
        taken: list[tuple[str, str]] = []
        for i, backend in enumerate(self.backends):
            spot = "cidrs[{j}]" if backend.cidrs else "host"
            mine = [
                (f"backends[{i}].{spot.format(j=j)}", c)
                for j, c in enumerate(backend.effective_cidrs)
            ]
            for where, cidr in mine:
                clash = _overlap(cidr, taken)
                if clash:
                    problems.append(f"{where}: {clash}")
            taken += mine
        for j, tool in enumerate(self.tools):
            if self.database is None and tool.grants:
                problems.append(
                    f"tools[{j}].grants: {self.name} has no database, so its tools hold no "
                    "table grants; remove them (or give the server `database:`)"
                )
            if self.database is not None and not tool.grants:
                problems.append(
                    f"tools[{j}].grants: a tool of a database-backed server needs at least one "
                    f"grant on {self.database} (its own role holds exactly those)"
                )
            if self.database is None and tool.tenant_column is not None:
                problems.append(
                    f"tools[{j}].tenant_column: {self.name} has no database, so there are no "
                    "rows to filter by tenant; remove it"
                )
        _raise_cross_reference(problems)
        return self

    def backend(self, name: str) -> Backend:
        return next(b for b in self.backends if b.name == name)

    @property
    def credential_backends(self) -> list[Backend]:
        return [b for b in self.backends if b.credential]

    @property
    def route_name(self) -> str:
        return self.route or self.name


class Tunnel(_Section):
    # With the platform enabled: `id` adopts an existing tunnel (else one is created) and
    # `domain`, when given, is checked against the one the platform assigned.
    # With it disabled both are required: the operator created the tunnel by hand.
    id: str | None = Field(default=None, pattern=r"^tnl_[A-Za-z0-9]{4,64}$")
    domain: Domain | None = None
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    # Raise by one to rotate the tunnel token; the token Secret is renamed with it.
    token_epoch: Epoch = 0
    replicas: int = Field(default=2, ge=1, le=10)
    proxy_image: Image
    cloudflared_image: Image
    proxy_port: UnprivilegedPort = 8443
    log_level: Literal["debug", "info", "warn", "error"] = "info"
    shutdown_timeout: Duration = "30s"
    proxy_resources: Resources = _resources("50m", "64Mi", "500m", "256Mi")
    cloudflared_resources: Resources = _resources("50m", "64Mi", "500m", "256Mi")


class Metrics(_Section):
    """A Prometheus scraper the stack names, let in to the tunnel's metrics ports and nowhere
    else: from pods with `scraper_pod_labels` in `scraper_namespace`, to cloudflared's
    metrics port (and the proxy's, when `proxy_port` says the proxy image serves one)."""

    scraper_namespace: DnsLabel
    scraper_pod_labels: dict[LabelKey, LabelValue] = Field(min_length=1)
    # The vendor documents no metrics setting for the proxy: give the port only when the
    # proxy image in use serves Prometheus metrics on one.
    proxy_port: UnprivilegedPort | None = None


class SandboxPool(_Section):
    """One runner pool: one trust boundary, with its own environment, key and egress.
    The limits are enforced by the `sandbox` worker the chart runs."""

    # The SDK's own bound on one tool call (`TOOL_TIMEOUT` in
    # anthropic.lib.tools._beta_session_runner, 2.10.0); a test holds the two equal. Not
    # imported: the SDK takes seconds to import and every offline command loads this module.
    SDK_TOOL_CALL_TIMEOUT_SECONDS: ClassVar[int] = 150

    name: ShortName
    # With the platform enabled: adopts this environment (else one is created).
    # With it disabled: required, the environment created by hand.
    environment_id: str | None = Field(default=None, pattern=r"^env_[A-Za-z0-9]{4,64}$")
    description: str | None = None
    image: Image
    min_replicas: int = Field(default=1, ge=1, le=100)
    max_replicas: int = Field(default=4, ge=1, le=100)
    runtime_class_name: DnsLabel | None = None
    # From 10 s up: a deadline shorter than the SDK's per-call bound is the team's call (warned).
    run_timeout_seconds: int = Field(default=1800, ge=10, le=86400)
    max_tool_calls: int = Field(default=200, ge=1, le=10000)
    # Reserved after the run timeout for winding a session down: the tool call in flight is
    # cancelled, bash torn down, the force-stop sent, the workspace emptied.
    drain_seconds: int = Field(default=30, ge=5, le=600)
    # Unset: run_timeout_seconds + drain_seconds, so a scaled-down runner can always finish.
    termination_grace_period_seconds: int | None = Field(default=None, ge=1, le=90000)
    max_idle: Duration = "60s"
    # Servers this pool's code may call directly, bypassing the platform's approval gate.
    # Empty by default; each entry is flagged by the audit and warned about by the policies.
    direct_mcp_access: list[ShortName] = []
    workspace_size: Quantity = "2Gi"
    resources: Resources = _resources("250m", "512Mi", "1", "1Gi")

    @property
    def warnings(self) -> list[str]:
        """What the team should know but may choose: a run timeout under the SDK's per-call
        bound cuts off a call the SDK would still allow (the agent gets a tool error)."""
        floor = self.SDK_TOOL_CALL_TIMEOUT_SECONDS
        if self.run_timeout_seconds >= floor:
            return []
        return [
            f"sandboxes.{self.name}.run_timeout_seconds: {self.run_timeout_seconds}s is shorter "
            f"than the {floor}s the SDK allows one tool call; a call still running at the "
            "deadline is cancelled, the agent gets a tool error and the session ends"
        ]

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


class UpstreamTls(_Section):
    """TLS from the tunnel's proxy to each MCP server, under a CA the program manages: the
    platform bearer token never crosses the cluster network in clear."""

    enabled: bool = True
    validity_hours: int = Field(default=2160, ge=24, le=87600)
    ca_validity_hours: int = Field(default=43800, ge=24, le=175200)
    # A `pulumi up` that finds a certificate this close to its end issues a new one.
    renew_within_hours: int = Field(default=720, ge=1)

    @model_validator(mode="after")
    def _window_inside_validity(self) -> UpstreamTls:
        shortest = min(self.validity_hours, self.ca_validity_hours)
        if self.renew_within_hours >= shortest:
            _raise_cross_reference(
                [
                    f"renew_within_hours: {self.renew_within_hours} must be shorter than the "
                    f"validity ({shortest}h): every `pulumi up` would issue new certificates"
                ]
            )
        return self


class Provisioner(_Section):
    image: Image
    resources: Resources = _resources("50m", "64Mi", "250m", "128Mi")
    backoff_limit: int = Field(default=2, ge=0, le=10)


class PerimeterConfig(_Section):
    """One environment: everything `pulumi up --stack <env>` creates."""

    environment: ShortName
    tier: Annotated[Tier, Field(strict=False)]  # a YAML string naming the enum member
    namespace: NamespaceName
    rotation_epoch: Epoch = 0
    min_cidr_prefix: CidrPrefixLimits = CidrPrefixLimits()
    platform: PlatformEndpoints = PlatformEndpoints()
    cluster: ClusterNetwork = ClusterNetwork()
    quota: NamespaceQuota = NamespaceQuota()
    tunnel: Tunnel
    databases: dict[Identifier, DatabaseEndpoint] = {}
    mcp_servers: list[McpServer] = Field(min_length=1, max_length=MAX_MCP_SERVERS)
    sandboxes: list[SandboxPool] = Field(min_length=1)
    agents: list[AgentSpec] = []
    vault: Vault = Vault()
    provisioner: Provisioner
    upstream_tls: UpstreamTls = UpstreamTls()
    metrics: Metrics | None = None  # off: nothing may reach the tunnel's metrics ports
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

    def _scraper_problems(self) -> list[str]:
        """A scraper in the perimeter's own namespace must be a pod no workload is: labels
        that select a server, the tunnel, a pool or a provisioner would let that workload
        (sandbox code, say) reach the tunnel's metrics ports as the scraper."""
        from infra import naming  # naming reads these models' types

        if self.metrics is None or self.metrics.scraper_namespace != self.namespace:
            return []
        workloads = [
            *(naming.mcp_server_selector(s) for s in self.mcp_servers),
            naming.tunnel_selector(),
            *(naming.sandbox_selector(p.name) for p in self.sandboxes),
            *(naming.provisioner_selector(d) for d in self.databases),
        ]
        wanted = self.metrics.scraper_pod_labels.items()
        for labels in workloads:
            if wanted <= labels.items():
                return [
                    "metrics.scraper_pod_labels: in the perimeter's namespace these labels "
                    f"select {labels[naming.LABEL_INSTANCE]}'s pods; a scraper must be outside "
                    "the namespace, or a pod no workload's labels match"
                ]
        return []

    @model_validator(mode="after")
    def _cross_references(self) -> PerimeterConfig:
        problems: list[str] = []
        names = [s.name for s in self.mcp_servers]
        problems += _duplicates(names, "mcp_servers", "name")
        problems += _duplicates([s.route_name for s in self.mcp_servers], "mcp_servers", "route")
        problems += self._platform_problems()
        problems += self._scraper_problems()
        for i, server in enumerate(self.mcp_servers):
            if server.database is not None and server.database not in self.databases:
                problems.append(
                    f"mcp_servers[{i}].database: {server.database!r} is not declared under "
                    f"databases (declared: {', '.join(sorted(self.databases)) or 'none'})"
                )
        roles: dict[str, str] = {}
        for i, server in enumerate(self.mcp_servers):
            for j, tool in enumerate(server.tools if server.database else []):
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
        problems += self._cidr_breadth()
        problems += self._backend_overlaps()
        problems += self._backends_across_servers()
        if self.tier is Tier.prod and not self.upstream_tls.enabled:
            problems.append(
                "upstream_tls.enabled: prod requires TLS from the proxy to every MCP server; "
                "the platform bearer token must not cross the cluster network in clear"
            )
        if len(set(names)) == len(names):  # duplicate servers already explain any shared name
            problems += _name_collisions(self)
        if self.tier is Tier.prod:
            for path, image in self.images():
                if not image.pinned:
                    problems.append(
                        f"{path}: {image} is not pinned by digest; prod images must end in "
                        "@sha256:<64 hex>"
                    )
        _raise_cross_reference(problems)
        return self

    def cidrs(self) -> list[tuple[str, str]]:
        """(field path, CIDR) of every address range the config names."""
        found = [(f"platform.api_cidrs[{i}]", c) for i, c in enumerate(self.platform.api_cidrs)]
        found += [
            (f"platform.tunnel_edge_cidrs[{i}]", c)
            for i, c in enumerate(self.platform.tunnel_edge_cidrs)
        ]
        found += [
            (f"cluster.service_cidrs[{i}]", c) for i, c in enumerate(self.cluster.service_cidrs)
        ]
        for name, database in self.databases.items():
            found += [(f"databases.{name}.cidrs[{i}]", c) for i, c in enumerate(database.cidrs)]
        for i, server in enumerate(self.mcp_servers):
            for j, backend in enumerate(server.backends):
                found += [
                    (f"mcp_servers[{i}].backends[{j}].cidrs[{k}]", c)
                    for k, c in enumerate(backend.cidrs)
                ]
        return found

    def _backend_overlaps(self) -> list[str]:
        """A backend inside the platform's or the cluster's ranges would widen what those
        allowances mean, or never match (Service IPs are rewritten before policy applies)."""
        fixed = [
            (where, cidr)
            for where, cidr in self.cidrs()
            if where.startswith(("platform.", "cluster."))
        ]
        problems = []
        for i, server in enumerate(self.mcp_servers):
            if server.database is not None and server.database in self.databases:
                database = self.databases[server.database]
                fixed_here = [
                    *fixed,
                    *(
                        (f"databases.{server.database}.cidrs[{k}]", c)
                        for k, c in enumerate(database.cidrs)
                    ),
                ]
            else:
                fixed_here = fixed
            for j, backend in enumerate(server.backends):
                spot = "cidrs[{k}]" if backend.cidrs else "host"
                for k, cidr in enumerate(backend.effective_cidrs):
                    clash = _overlap(cidr, fixed_here)
                    if clash:
                        problems.append(
                            f"mcp_servers[{i}].backends[{j}].{spot.format(k=k)}: {clash}"
                        )
        return problems

    def _backends_across_servers(self) -> list[str]:
        """One server's backend range that overlaps another server's backend would let the
        first reach the second's service (egress matches addresses, not intent), unless both
        declare the very same address: then they call one shared service on purpose."""
        declared = [
            (i, j, server, backend, [ipaddress.ip_network(c) for c in backend.effective_cidrs])
            for i, server in enumerate(self.mcp_servers)
            for j, backend in enumerate(server.backends)
        ]
        problems = []
        for i, j, server, backend, networks in declared:
            for k, m, other, theirs, their_networks in declared:
                if k <= i or (backend.host, sorted(map(str, networks))) == (
                    theirs.host,
                    sorted(map(str, their_networks)),
                ):
                    continue
                for n, network in enumerate(networks):
                    if any(
                        network.version == t.version and network.overlaps(t) for t in their_networks
                    ):
                        spot = f"cidrs[{n}]" if backend.cidrs else "host"
                        problems.append(
                            f"mcp_servers[{i}].backends[{j}].{spot}: {network} overlaps "
                            f"mcp_servers[{k}].backends[{m}] ({other.name}'s {theirs.name}), so "
                            f"{server.name} could reach it too; narrow the range, or declare the "
                            "identical address (host and cidrs) in both when it is one service"
                        )
        return problems

    def _cidr_breadth(self) -> list[str]:
        problems = []
        for where, cidr in self.cidrs():
            network = ipaddress.ip_network(cidr)
            limit = self.min_cidr_prefix.ipv4 if network.version == 4 else self.min_cidr_prefix.ipv6
            if network.prefixlen < limit:
                problems.append(
                    f"{where}: {cidr} is broader than /{limit}; name narrower ranges "
                    f"(or lower min_cidr_prefix.ipv{network.version} deliberately)"
                )
        return problems

    def images(self) -> list[tuple[str, ImageRef]]:
        found = [
            ("tunnel.proxy_image", self.tunnel.proxy_image),
            ("tunnel.cloudflared_image", self.tunnel.cloudflared_image),
            ("provisioner.image", self.provisioner.image),
        ]
        found += [(f"sandboxes[{i}].image", p.image) for i, p in enumerate(self.sandboxes)]
        found += [(f"mcp_servers[{i}].image", s.image) for i, s in enumerate(self.mcp_servers)]
        return found

    @property
    def warnings(self) -> list[str]:
        """Every warning the render and `pulumi preview`/`up` print, in one list."""
        return [w for pool in self.sandboxes for w in pool.warnings]

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


def _name_collisions(config: PerimeterConfig) -> list[str]:
    """Generated Kubernetes names that two config entries would both produce.

    Role names are checked where they are derived; Secret names follow other
    rules ('_' becomes '-'), so server `a-db-b` and tool `b_c` of server `a`
    could otherwise share one Secret.
    """
    from infra.naming import generated_secret_names  # naming builds on this module

    return [
        f"{where}: its Secret {name!r} would also be the Secret of {first}"
        for name, where, first in _repeats(generated_secret_names(config))
    ]


def _repeats(entries: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(value, where, where it was first used) for each value used again."""
    first: dict[str, str] = {}
    repeats = []
    for value, where in entries:
        if value in first:
            repeats.append((value, where, first[value]))
        first.setdefault(value, where)
    return repeats


def _require_unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise _invalid("duplicate", f"{what} {value!r} is declared twice")
        seen.add(value)


def _duplicates(values: list[str], section: str, field: str) -> list[str]:
    return [
        f"{where}.{field}: {value!r} is already used by {first}"
        for value, where, first in _repeats((v, f"{section}[{i}]") for i, v in enumerate(values))
    ]


# --- errors and loading -----------------------------------------------------------------------


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key that failed: the key is the path
            continue
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
                problems.append((f"{path}.{sub}" if path else sub, message))
        else:
            message = err["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            if ": " in message and message.split(": ", 1)[0].startswith("grants["):
                sub, message = message.split(": ", 1)
                path = f"{path}.{sub}" if path else sub
            problems.append((path, message))
    return problems


# A system prompt is instructions, not a corpus: a bigger file is a wrong path or a pasted dump.
MAX_PROMPT_BYTES = 64 * 1024
# The project's checkout (Pulumi.yaml's directory): a stack file elsewhere may still use its
# prompts.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def read_prompt(base: Path, relative: str) -> str:
    """The prompt file's text, confined to the stack file's directory or the project: a path
    (absolute, a `..` escape or a symlink) resolving outside them would make any file the
    machine can read (say /etc/passwd) an agent's instructions, sent to the platform."""
    root = base.resolve()
    roots = (root, PROJECT_ROOT)
    try:
        path = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        reason = getattr(exc, "strerror", None) or "a symlink loop"
        raise ValueError(
            f"cannot read {relative!r} ({reason}); the path is relative to the stack file"
        ) from None
    if not any(path.is_relative_to(r) for r in roots):
        raise ValueError(
            f"{relative!r} resolves outside {root} and the project: "
            "prompt files must live in the repository"
        )
    if not path.is_file():
        raise ValueError(f"{relative!r} is not a regular file")
    size = path.stat().st_size
    if size > MAX_PROMPT_BYTES:
        raise ValueError(f"{relative!r} is {size} bytes; a prompt file may have {MAX_PROMPT_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{relative!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"cannot read {relative!r} ({exc.strerror})") from None
    if not text:
        raise ValueError(f"{relative!r} is empty: an agent needs instructions")
    return text


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
        try:
            config._prompts[agent.name] = read_prompt(base, agent.system_prompt_file)
        except ValueError as exc:
            problems.append((f"agents[{i}].system_prompt_file", str(exc)))
    if problems:
        raise ConfigError(source, problems)
    return config


def stack_file(stack: str, root: Path | None = None) -> Path:
    root = root or PROJECT_ROOT
    return root / f"Pulumi.{stack}.yaml"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that is told about duplicate keys instead of keeping the last one silently."""


def _yaml_path(parts: list[str]) -> str:
    out = ""
    for part in parts:
        out += part if part.startswith("[") else (f".{part}" if out else part)
    return out


def _duplicate_keys(node: yaml.Node, at: list[str]) -> list[tuple[str, str]]:
    """Every mapping key written twice, with its path and both lines (never the value)."""
    problems: list[tuple[str, str]] = []
    if isinstance(node, yaml.MappingNode):
        first: dict[Any, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                continue
            name = key.value if isinstance(key, yaml.ScalarNode) else "?"
            line = key.start_mark.line + 1
            if name in first:
                problems.append(
                    (
                        _yaml_path([*at, str(name)]).removeprefix(f"config.{PERIMETER_KEY}."),
                        f"key written twice (lines {first[name]} and {line}); "
                        "YAML would silently keep the last one",
                    )
                )
            first.setdefault(name, line)
            problems += _duplicate_keys(value, [*at, str(name)])
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, [*at, f"[{i}]"])
    return problems


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """What the parser objects to and where, without the source excerpt PyYAML appends
    (it quotes the offending line, which may hold a secret)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if isinstance(exc, yaml.reader.ReaderError):
        return (
            f"not valid YAML: character {exc.character!r} at position {exc.position} is not allowed"
        )
    problem = getattr(exc, "problem", None) or "cannot be parsed"
    context = getattr(exc, "context", None)
    return f"not valid YAML: {where}{problem}" + (f" ({context})" if context else "")


def _keys_as_written(node: yaml.Node) -> None:
    """Every mapping key is the text written: YAML 1.1 reads an unquoted `on`, `yes` or `ON`
    as a boolean and `8080` as a number, and an error would then name `tunnel[1]`, a list
    index, instead of the key `tunnel.on`. No key of the settings is anything but a name."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                key.tag = "tag:yaml.org,2002:str"
            _keys_as_written(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _keys_as_written(item)


def _parse_yaml(text: str) -> tuple[Any, list[tuple[str, str]]]:
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        duplicates = _duplicate_keys(node, [])
        _keys_as_written(node)
        return loader.construct_document(node), duplicates
    finally:
        loader.dispose()


def _plaintext_secrets(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Secret keys must hold `secure:` values (encrypted by `pulumi config set --secret`)."""
    problems: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            if not isinstance(value["secure"], str):
                problems.append((path, "a `secure:` value must be the ciphertext Pulumi wrote"))
            return
        if isinstance(value, Mapping) and path.split(".", 1)[0].endswith(
            tuple(f":{k}" for k in _OBJECT_SECRETS)
        ):
            for name, item in value.items():
                walk(item, f"{path}.{name}")
            return
        problems.append(
            (
                path,
                "written in plain text; remove it from the file and set it with "
                "`pulumi config set --secret` (the value is not shown here)",
            )
        )

    for key in SECRET_KEYS:
        full = f"{PROJECT}:{key}"
        if full in config:
            walk(config[full], full)
    return problems


def read_stack_file(path: Path) -> dict[str, Any]:
    """The `config:` map of a stack file; raises on any file-level problem."""
    config, problems = _read_stack_file(path)
    if problems:
        raise ConfigError(str(path), problems)
    return config


def _read_stack_file(path: Path) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The `config:` map and every file-level problem: encoding, syntax, duplicate keys,
    unknown project keys, secrets in plain text. Fatal ones raise at once."""
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, [("", f"stack file {path} does not exist")]) from None
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read {path}: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            source,
            [
                (
                    "",
                    f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}; save the file as UTF-8",
                )
            ],
        ) from None
    try:
        document, problems = _parse_yaml(text.removeprefix("\ufeff"))
    except yaml.YAMLError as exc:
        raise ConfigError(source, [("", _yaml_problem(exc))]) from None
    document = document or {}
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(source, [*problems, ("config", "must be a mapping of stack settings")])
    known = {PERIMETER_KEY} | {f"{PROJECT}:{k}" for k in SECRET_KEYS}
    problems += [
        (str(k), f"replaced by {RENAMED_SECRET_KEYS[str(k).split(':', 1)[1]]}")
        if str(k).split(":", 1)[1] in RENAMED_SECRET_KEYS
        else (str(k), f"unknown key; allowed: {', '.join(sorted(known))}")
        for k in config
        if str(k).startswith(f"{PROJECT}:") and k not in known
    ]
    problems += _plaintext_secrets(config)
    return config, problems


def load_stack_file(path: Path) -> PerimeterConfig:
    """Every problem of the file and of its settings, reported together."""
    config, problems = _read_stack_file(path)
    try:
        parsed = parse_perimeter(config.get(PERIMETER_KEY), str(path), path.resolve().parent)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(str(path), problems)
    return parsed


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
    # (server, backend) -> that backend's credential, for backends with `credential: true`.
    backend_credentials: Mapping[tuple[str, str], pulumi.Output[str]] = field(default_factory=dict)


def backend_credential_keys(config: PerimeterConfig) -> list[str]:
    """`<server>.<backend>` of every backend credential the stack must hold."""
    return [f"{s.name}.{b.name}" for s in config.mcp_servers for b in s.credential_backends]


def _dig(value: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def required_secrets(config: PerimeterConfig) -> list[str]:
    """The secret keys one environment needs, by whether it manages the platform side."""
    keys = ["tunnelTlsCert", "tunnelTlsKey", "environmentKeys"]
    if config.databases:
        keys.append("databaseAdminPasswords")
    if backend_credential_keys(config):
        keys.append("backendCredentials")
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
        backend_credentials={
            tuple(key.split(".")): placeholder(f"backendCredentials.{key}")  # type: ignore[misc]
            for key in backend_credential_keys(config)
        },
    )


_OBJECT_SECRETS = {
    "databaseAdminPasswords": "databases",
    "environmentKeys": "sandboxes",
    "backendCredentials": "MCP server, then backend",
}


def load_pulumi() -> tuple[PerimeterConfig, PerimeterSecrets]:
    """Read the stack's config under `pulumi up`/`preview`; raise one RunError listing all problems."""
    import pulumi

    stack = pulumi.get_stack()
    source = f"Pulumi.{stack}.yaml"
    cfg = pulumi.Config(PROJECT)
    root = PROJECT_ROOT
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
        "backendCredentials": backend_credential_keys(config),
    }
    required = required_secrets(config)
    for key in required:
        meaning = SECRET_KEYS[key]
        value = cfg.get_secret_object(key) if key in _OBJECT_SECRETS else cfg.get_secret(key)
        if value is None:
            problems.append(
                (f"{PROJECT}:{key}", f"missing: set {meaning} with `pulumi config set --secret`")
            )
        elif not pulumi.runtime.is_config_secret(f"{PROJECT}:{key}"):
            problems.append(
                (
                    f"{PROJECT}:{key}",
                    "written in plain text in the stack file; set it with "
                    "`pulumi config set --secret` (the value is not shown here)",
                )
            )
        values[key] = value
    for key, wanted in names.items():
        if key not in required:
            continue
        given = cfg.get_object(key) or {}
        if not isinstance(given, Mapping):
            problems.append(
                (f"{PROJECT}:{key}", f"must be an object keyed by {_OBJECT_SECRETS[key]}")
            )
            continue
        missing = [name for name in wanted if _dig(given, name) is None]
        if values.get(key) is not None and missing:
            problems.append((f"{PROJECT}:{key}", f"no value for: {', '.join(missing)}"))
    if problems:
        raise pulumi.RunError(str(ConfigError(source, problems)))

    def entries(key: str) -> dict[str, pulumi.Output[str]]:
        whole = values.get(key)
        if whole is None:
            return {}
        return {
            name: as_secret(whole.apply(lambda d, n=name: str(_dig(d, n)))) for name in names[key]
        }

    return config, PerimeterSecrets(
        tunnel_token=values.get("tunnelToken"),
        tunnel_tls_cert=values["tunnelTlsCert"],
        tunnel_tls_key=values["tunnelTlsKey"],
        environment_keys=entries("environmentKeys"),
        database_admin_passwords=entries("databaseAdminPasswords"),
        tunnel_ca_cert=values.get("tunnelCaCert"),
        platform_api_key=values.get("platformApiKey"),
        backend_credentials={
            (key.split(".")[0], key.split(".")[1]): value
            for key, value in entries("backendCredentials").items()
        },
    )
