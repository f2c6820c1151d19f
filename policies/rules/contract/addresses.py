"""Addresses every layer judges egress by: the cloud metadata and credential endpoints in
every spelling a CIDR could reach them by, the internal ranges, and the platform's own."""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# The platform's published ranges: its API and the tunnel edge (PLATFORM-FACTS.md).
DEFAULT_ALLOWED_EGRESS_CIDRS: tuple[str, ...] = (
    "160.79.104.0/23",
    "2607:6bc0::/48",
    "198.41.192.0/19",
    "2606:4700:a0::/44",
)
# The broadest range an ipBlock may name (the stack config's `min_cidr_prefix` defaults): wider
# is almost always a typo, or a wish to reach everything behind it.
DEFAULT_MIN_CIDR_PREFIX: tuple[int, int] = (12, 32)  # IPv4, IPv6

# Cloud instance-metadata and credential endpoints: AWS (IMDS, ECS task, EKS Pod Identity,
# and their IPv6 forms), GCP (IPv4, IPv6), Azure (IMDS, WireServer), Alibaba, Oracle, ...
METADATA_ADDRESSES: tuple[Address, ...] = tuple(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "168.63.129.16",
        "100.100.100.200",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "fd20:ce::254",
    )
)
METADATA_ADDRESS = METADATA_ADDRESSES[0]


def _ipv6_forms(address: ipaddress.IPv4Address) -> tuple[ipaddress.IPv6Address, ...]:
    """The IPv6 spellings that reach an IPv4 address: IPv4-mapped, IPv4-compatible, NAT64."""
    value = int(address)
    return tuple(
        ipaddress.IPv6Address(prefix + value)
        for prefix in (0xFFFF << 32, 0, int(ipaddress.IPv6Address("64:ff9b::")))
    )


def metadata_forms() -> tuple[Address, ...]:
    """Every metadata address in every form a CIDR could reach it by."""
    forms: list[Address] = []
    for address in METADATA_ADDRESSES:
        forms.append(address)
        if isinstance(address, ipaddress.IPv4Address):
            forms.extend(_ipv6_forms(address))
    return tuple(forms)


METADATA_FORMS = metadata_forms()
# Cluster- and VPC-internal space: in-cluster peers and private databases live here,
# so reaching it is not "egress to the internet".
INTERNAL_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(c)
    for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def reachable_metadata(network: Network, excepts: list[Network]) -> list[Address]:
    """Metadata addresses (any spelling) inside `network` and outside every `except`."""
    return [
        a
        for a in METADATA_FORMS
        if a.version == network.version
        and a in network
        and not any(e.version == a.version and a in e for e in excepts)
    ]
