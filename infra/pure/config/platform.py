"""The `platform` section: the managed platform's API and where its traffic comes from."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from infra.contract.addresses import reachable_metadata  # every metadata address, every spelling
from infra.pure.config.addresses import ip_or_none
from infra.pure.config.types import Cidr, Port, Section


class PlatformEndpoints(Section):
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
    address = ip_or_none(host)
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
