"""The `databases` section and the role provisioner that creates per-tool roles in them."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from infra.pure.config.resources import Resources, default_resources
from infra.pure.config.types import (
    CaBundle,
    Cidr,
    Duration,
    Hostname,
    Identifier,
    Image,
    Port,
    QualifiedTable,
    Section,
    invalid,
    raise_cross_reference,
    require_unique,
)

# Schemas owned by PostgreSQL: no tool is granted anything in them.
SYSTEM_SCHEMA_PREFIX = "pg_"
SYSTEM_SCHEMAS = ("information_schema",)


class DatabaseEndpoint(Section):
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
        raise_cross_reference(problems)
        return self


Privilege = Literal["SELECT", "INSERT", "UPDATE", "DELETE"]


def _user_schema(value: str) -> str:
    schema = value.split(".", 1)[0]
    if schema.startswith(SYSTEM_SCHEMA_PREFIX) or schema in SYSTEM_SCHEMAS:
        raise invalid(
            "system_schema",
            f"{value!r} is in the system schema {schema!r}; tools are granted only user tables",
        )
    return value


class TableGrant(Section):
    table: Annotated[QualifiedTable, AfterValidator(_user_schema)]
    privileges: list[Privilege] = Field(min_length=1)
    columns: list[Identifier] | None = Field(
        default=None, min_length=1, description="omit for the whole table; never empty"
    )

    @field_validator("privileges")
    @classmethod
    def _unique_privileges(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise invalid("duplicate", "each privilege may be named once")
        return value

    @field_validator("columns")
    @classmethod
    def _unique_columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            require_unique(value, "column")
        return value

    @property
    def schema_name(self) -> str:
        return self.table.split(".", 1)[0]


class Provisioner(Section):
    image: Image
    resources: Resources = default_resources("50m", "64Mi", "250m", "128Mi")
    backoff_limit: int = Field(default=2, ge=0, le=10)
