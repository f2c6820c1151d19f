"""Scalar types every section shares: names, quantities, addresses, labels, images.

Each is an `Annotated` type whose validator names what is wrong without repeating the
value, so one definition serves every field that holds such a value.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import posixpath
import re
from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from infra.contract.addresses import reachable_metadata  # every metadata address, every spelling
from infra.pure.dns_names import HOSTNAME, domain_problem

MAX_MCP_SERVERS = 20


def invalid(kind: str, message: str) -> PydanticCustomError:
    """A validation error whose text is already final (values may contain braces)."""
    return PydanticCustomError(kind, message)


# Namespaces the cluster itself uses: a perimeter there would share them with system workloads.
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


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
            raise invalid(
                "dns_label",
                f"{value!r} is not a DNS label: lowercase letters, digits and '-', starting with a letter, not ending with '-', at most {max_len} characters",
            )
        return value

    return AfterValidator(check)


def _identifier(value: str) -> str:
    if len(value) > 30 or not _IDENTIFIER.fullmatch(value):
        raise invalid(
            "identifier",
            f"{value!r} is not a safe SQL identifier: lowercase ASCII letters, digits and '_', starting with a letter or '_', at most 30 characters",
        )
    return value


def _qualified_table(value: str) -> str:
    parts = value.split(".")
    if len(parts) != 2 or not all(_IDENTIFIER.fullmatch(p) and len(p) <= 30 for p in parts):
        raise invalid(
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
        raise invalid("hostname", f"{value!r} is not a hostname or IP address")
    return value


def _quantity(value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise invalid(
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
        raise invalid(*problem)
    return value


def _url_path(value: str) -> str:
    """An absolute, normalised URL path: the vault credential matches the URL byte for byte."""
    if not re.fullmatch(r"/[A-Za-z0-9._~/-]*", value):
        raise invalid(
            "url_path",
            f"{value!r} is not a URL path: start with '/', then letters, digits and . _ ~ / - only",
        )
    normal = posixpath.normpath(value)
    if normal.startswith("//"):
        normal = normal[1:]
    if value != normal or ".." in value.split("/"):
        raise invalid(
            "url_path_normal",
            f"{value!r} is not a normalised path (no '//', '.', '..' segments or trailing '/'); "
            f"write {normal!r}",
        )
    return value


def _namespace(value: str) -> str:
    if value in RESERVED_NAMESPACES or value.startswith("kube-"):
        raise invalid(
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
        raise invalid("ca_private_key", "holds a private key; give only the CA certificate(s)")
    if not blocks or rest:
        raise invalid(
            "ca_pem",
            "is not a PEM bundle of CA certificates (-----BEGIN CERTIFICATE----- ... "
            "-----END CERTIFICATE-----, nothing else)",
        )
    for block in blocks:
        try:
            base64.b64decode("".join(block.split()), validate=True)
        except (binascii.Error, ValueError):
            raise invalid("ca_pem", "holds a certificate whose body is not base64") from None
    return value if value.endswith("\n") else value + "\n"


def _duration(value: str) -> str:
    if not _DURATION.fullmatch(value):
        raise invalid("duration", f"{value!r} is not a duration such as 500ms, 30s, 5m")
    return value


def _network(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise invalid(
            "cidr", f"{value!r} is not a CIDR block such as 10.0.0.0/16 ({exc})"
        ) from None
    if net.prefixlen == 0:
        raise invalid("cidr_everything", f"{value!r} is the whole internet; name narrower ranges")
    metadata = reachable_metadata(net, [])
    if metadata:
        raise invalid(
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
            raise invalid(
                "image",
                f"{value!r} is not an image reference with a tag or digest, such as registry.example.com/mcp/tickets:1.4.2@sha256:<64 hex>",
            )
        return ImageRef(repository=match["repository"], tag=match["tag"], digest=match["digest"])
    return value


Image = Annotated[ImageRef, BeforeValidator(_parse_image)]


# --- sections ---------------------------------------------------------------------------------


class Section(BaseModel):
    """Strict: `"8080"`, `true` or `1.0` where an integer belongs is an error, never coerced."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def raise_cross_reference(problems: list[str]) -> None:
    """Several problems as one error; each line `path: message`, split again by `validation_problems`."""
    if problems:
        raise PydanticCustomError("cross_reference", "\n".join(problems))


class Tier(StrEnum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


def repeats(entries: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(value, where, where it was first used) for each value used again."""
    first: dict[str, str] = {}
    repeats = []
    for value, where in entries:
        if value in first:
            repeats.append((value, where, first[value]))
        first.setdefault(value, where)
    return repeats


def require_unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise invalid("duplicate", f"{what} {value!r} is declared twice")
        seen.add(value)


def duplicates(values: list[str], section: str, field: str) -> list[str]:
    return [
        f"{where}.{field}: {value!r} is already used by {first}"
        for value, where, first in repeats((v, f"{section}[{i}]") for i, v in enumerate(values))
    ]
