"""Address-range arithmetic the sections and the cross-references share."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def ip_or_none(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host) if host else None
    except ValueError:
        return None


def inside(address: ipaddress.IPv4Address | ipaddress.IPv6Address, cidrs: list[str]) -> bool:
    return any(address in ipaddress.ip_network(cidr) for cidr in cidrs)


def overlap(cidr: str, seen: Iterable[tuple[str, str]]) -> str | None:
    """Why `cidr` clashes with one of `seen` ((where, cidr) pairs), if it does: two
    declarations of the same addresses are a typo, or one backend reached through another's
    allowance."""
    network = ipaddress.ip_network(cidr)
    for where, other in seen:
        if network.overlaps(ipaddress.ip_network(other)):
            return f"{cidr} overlaps {where} ({other})"
    return None


def overlaps(cidrs: list[str]) -> list[tuple[int, str]]:
    """(index, message) of each range in `cidrs` that overlaps an earlier one."""
    found = []
    for j, cidr in enumerate(cidrs):
        clash = overlap(cidr, ((f"cidrs[{k}]", c) for k, c in enumerate(cidrs[:j])))
        if clash:
            found.append((j, clash))
    return found
