"""The `mcp_servers` section: a server, its tools, backends, env and files.

Values a server passes to its pod are judged for credentials here, so a secret never
reaches a ConfigMap or a pod spec in plain text.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from infra.contract.addresses import reachable_metadata  # every metadata address, every spelling
from infra.contract.secret_shapes import (  # one credential judge: the config's and the pack's
    credential_in_args,
    credential_in_text,
    credential_in_value,
    credential_name,
)
from infra.pure.config.addresses import inside, ip_or_none, overlap, overlaps
from infra.pure.config.database import TableGrant
from infra.pure.config.resources import Resources, default_resources
from infra.pure.config.types import (
    Cidr,
    Epoch,
    Hostname,
    Identifier,
    Image,
    Port,
    Section,
    ShortName,
    UnprivilegedPort,
    UrlPath,
    duplicates,
    invalid,
    raise_cross_reference,
    require_unique,
)


class Tool(Section):
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
                    raise invalid(
                        "read_only",
                        f"grants[{i}]: a read tool may only hold SELECT, not {', '.join(wider)}",
                    )
        elif self.permission_policy == "always_allow":
            raise invalid("write_policy", "permission_policy of a write tool must be always_ask")
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
                    raise invalid(
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
        raise invalid(
            "env_name",
            f"{value!r} is not an environment variable name: A-Z, 0-9 and '_', not starting "
            "with a digit",
        )
    if value.startswith(RESERVED_ENV_PREFIXES):
        raise invalid(
            "env_reserved",
            f"{value!r} starts with {', '.join(RESERVED_ENV_PREFIXES)}: the chart sets those "
            "itself; pick another name",
        )
    if credential_name(value):  # a value under such a name is a credential
        raise invalid(
            "env_credential",
            f"{value!r} names a credential; declare it as a backend with `credential: true` and "
            "set it under the backendCredentials secret, so it is mounted as a file",
        )
    return value


def _file_name(value: str) -> str:
    if not _FILE_NAME.fullmatch(value):
        raise invalid(
            "file_name",
            f"{value!r} is not a plain file name: letters, digits, '.', '_' and '-', no '/'",
        )
    return value


def _refused_credential(found: str) -> PydanticCustomError:
    return invalid(
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


class Backend(Section):
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
        require_unique((str(p) for p in value), "port")
        return value

    @model_validator(mode="after")
    def _addressable(self) -> Backend:
        problems = []
        address = ip_or_none(self.host)
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
        if address is not None and self.cidrs and not inside(address, self.cidrs):
            problems.append(
                f"host: {self.host} is outside cidrs ({', '.join(self.cidrs)}); the "
                "NetworkPolicy would block every connection to it"
            )
        problems += [f"cidrs[{j}]: {m}" for j, m in overlaps(self.cidrs)]
        raise_cross_reference(problems)
        return self

    @property
    def effective_cidrs(self) -> list[str]:
        """The ranges its egress allows: the stated CIDRs, or the host's own address."""
        if self.cidrs:
            return list(self.cidrs)
        address = ipaddress.ip_address(str(self.host))
        return [f"{address}/{address.max_prefixlen}"]


class McpServer(Section):
    name: ShortName
    image: Image
    port: UnprivilegedPort = 8080
    path: UrlPath = "/mcp"
    route: ShortName | None = None
    replicas: int = Field(default=2, ge=1, le=20)
    resources: Resources = default_resources("100m", "128Mi", "500m", "256Mi")
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
        require_unique((t.name for t in tools), "tool name")
        return tools

    @field_validator("args")
    @classmethod
    def _no_credential_flag(cls, args: list[str]) -> list[str]:
        found = credential_in_args(args)
        if found:
            index, what = found
            raise invalid(
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
            raise invalid(
                "config_size",
                f"{size} bytes of config files; one ConfigMap holds at most "
                f"{MAX_CONFIG_FILES_BYTES} here",
            )
        return files

    @model_validator(mode="after")
    def _backends_and_grants(self) -> McpServer:
        problems = duplicates([b.name for b in self.backends], "backends", "name")
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
                clash = overlap(cidr, taken)
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
        raise_cross_reference(problems)
        return self

    def backend(self, name: str) -> Backend:
        return next(b for b in self.backends if b.name == name)

    @property
    def credential_backends(self) -> list[Backend]:
        return [b for b in self.backends if b.credential]

    @property
    def route_name(self) -> str:
        return self.route or self.name
