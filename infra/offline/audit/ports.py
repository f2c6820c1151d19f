"""Sets of ports and protocols, as NetworkPolicy rules allow them.

A rule's `ports` is a set of (protocol, port range) plus named ports that only
mean something once resolved against the destination pod's container ports.
Reachability is the intersection of what the source's egress and the
destination's ingress allow, so the set needs union and intersection.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.offline.manifests import ManifestError

PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_PORT = 65535

Range = tuple[str, int, int]
Named = tuple[str, str]


def _merge(ranges: Iterable[Range]) -> frozenset[Range]:
    """Overlapping or adjacent ranges of one protocol become one, so equal sets compare equal."""
    merged: list[Range] = []
    for proto, lo, hi in sorted(ranges):
        if merged and merged[-1][0] == proto and lo <= merged[-1][2] + 1:
            last = merged[-1]
            merged[-1] = (proto, last[1], max(last[2], hi))
        else:
            merged.append((proto, lo, hi))
    return frozenset(merged)


@dataclass(frozen=True)
class Ports:
    ranges: frozenset[Range] = frozenset()
    named: frozenset[Named] = frozenset()

    @classmethod
    def all(cls) -> Ports:
        return _ALL

    @classmethod
    def parse(cls, raw: list[dict[str, Any]] | None, where: str = "ports") -> Ports:
        """A rule's `ports` list; absent or empty means every port of every protocol."""
        if not raw:
            return _ALL
        ranges: list[Range] = []
        named: list[Named] = []
        for entry in raw:
            proto = str(entry.get("protocol") or "TCP").upper()
            if proto not in PROTOCOLS:
                raise ManifestError(f"{where}: protocol {proto!r} is not TCP, UDP or SCTP")
            port = entry.get("port")
            if port is None:
                ranges.append((proto, 1, MAX_PORT))
            elif isinstance(port, str) and not port.isdigit():
                named.append((proto, port))
            else:
                first = int(port)
                last = int(entry.get("endPort") or first)
                ranges.append((proto, first, max(first, last)))
        return cls(_merge(ranges), frozenset(named))

    def __bool__(self) -> bool:
        return bool(self.ranges or self.named)

    @property
    def is_all(self) -> bool:
        return self.ranges == _ALL.ranges

    def union(self, other: Ports) -> Ports:
        if not other:
            return self
        if not self:
            return other
        return Ports(_merge(self.ranges | other.ranges), self.named | other.named)

    def intersect(self, other: Ports) -> Ports:
        ranges = [
            (p, max(lo, olo), min(hi, ohi))
            for p, lo, hi in self.ranges
            for op, olo, ohi in other.ranges
            if p == op and max(lo, olo) <= min(hi, ohi)
        ]
        return Ports(_merge(ranges), self.named & other.named)

    def resolve(self, container_ports: Mapping[Named, int]) -> Ports:
        """Named ports become numbers on the destination pod; a name it lacks allows nothing."""
        if not self.named:
            return self
        extra = [
            (key[0], container_ports[key], container_ports[key])
            for key in self.named
            if key in container_ports
        ]
        return Ports(_merge([*self.ranges, *extra]))

    def describe(self) -> list[str]:
        """`TCP/8080`, `TCP/8000-8100`, `UDP/all`, `TCP/http` (unresolved name), or `all`."""
        if self.is_all:
            return ["all"] + [f"{p}/{n}" for p, n in sorted(self.named)]
        out = []
        for p, lo, hi in sorted(self.ranges, key=lambda r: (PROTOCOLS.index(r[0]), r[1])):
            if lo == 1 and hi == MAX_PORT:
                out.append(f"{p}/all")
            else:
                out.append(f"{p}/{lo}" if lo == hi else f"{p}/{lo}-{hi}")
        out += [f"{p}/{n}" for p, n in sorted(self.named)]
        return out

    def text(self) -> str:
        return ", ".join(self.describe()) or "none"


_ALL = Ports(frozenset((p, 1, MAX_PORT) for p in PROTOCOLS))
NO_PORTS = Ports()
