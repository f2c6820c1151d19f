"""Containment of the live node: no packet from the pod network may leave the machine.

- a counted DROP, first in FORWARD, of anything from the pod or service range (or from the
  stand-in namespace) whose out-interface is the uplink, and the same again in mangle
  POSTROUTING as a backstop for an earlier ACCEPT (kube-proxy puts its own jumps first);
- a blackhole route for the service range: a ClusterIP kube-proxy has not programmed yet
  is dropped here instead of following the default route (programmed ones are DNATed
  before routing and still work);
- every outside target is an address of a network namespace the suite made, behind a
  veth, with a listener that logs what reaches it; that namespace has no default route.

`verify()` must pass before the first probe; `dropped()` is the would-be-outbound counter
the run reports (0 for a clean run). Names are ours alone, so a run killed hard is
cleaned up by the next (`reap`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.harness.control_plane import SERVICE_CIDR
from tests.live.harness.host import run

POD_RANGE = "10.244.0.0/16"
POD_CIDR = "10.244.0.0/24"
HOST_VETH, NS_VETH = "ap-ext-h", "ap-ext-n"
LINK_HOST, LINK_NS, LINK_NET = "198.51.100.1", "198.51.100.2", "198.51.100.0/24"
APISERVER_STANDIN = "198.51.100.30"  # the API server's advertised address, forwarded to the host
CHAIN, LATE = "AP-LIVE-CONTAIN", "AP-LIVE-LATE"


def uplink() -> str:
    for line in run("ip", "-4", "route", "show", "default").splitlines():
        words = line.split()
        if "dev" in words:
            return words[words.index("dev") + 1]
    raise RuntimeError("containment: no default route, so no uplink to fence off")


def host_address() -> str:
    words = run("ip", "-4", "route", "get", "1.1.1.1").split()
    return words[words.index("src") + 1]


def _ipt(*args: str, table: str = "filter", check: bool = True) -> str:
    return run("iptables", "-w", "-t", table, *args, check=check)


def _drops(up: str, table: str) -> list[list[str]]:
    """By source range; in FORWARD also by in-interface (POSTROUTING has none)."""
    rules = [["-s", cidr, "-o", up, "-j", "DROP"] for cidr in (POD_RANGE, SERVICE_CIDR, LINK_NET)]
    if table == "filter":
        rules.append(["-i", HOST_VETH, "-o", up, "-j", "DROP"])
    return rules


@dataclass(frozen=True)
class Listen:
    address: str
    port: int
    protocol: str  # TCP | UDP

    @property
    def spec(self) -> str:
        return f"{self.address}:{self.port}/{self.protocol}"


@dataclass
class Containment:
    root: Path
    listens: list[Listen]
    up: str = ""
    holder: subprocess.Popen[bytes] | None = None
    listener: subprocess.Popen[bytes] | None = None
    addresses: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.root / "standin-connections.jsonl"

    def start(self) -> Containment:
        self.root.mkdir(parents=True, exist_ok=True)
        self.up = uplink()
        _ipt("-N", CHAIN)
        _ipt("-N", LATE, table="mangle")
        for table, chain in (("filter", CHAIN), ("mangle", LATE)):
            for rule in _drops(self.up, table):
                _ipt("-A", chain, *rule, table=table)
        _ipt("-I", "FORWARD", "1", "-j", CHAIN)
        _ipt("-I", "POSTROUTING", "1", "-j", LATE, table="mangle")
        run("ip", "route", "add", "blackhole", SERVICE_CIDR)
        self._namespace()
        return self

    def _ns(self, *argv: str, check: bool = True) -> str:
        assert self.holder is not None
        return run("nsenter", f"--net=/proc/{self.holder.pid}/ns/net", *argv, check=check)

    def _namespace(self) -> None:
        # No `ip netns add`: it bind-mounts /run/netns. The namespace lives as long as this.
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sleep", "infinity"], start_new_session=True
        )
        own = os.readlink("/proc/self/ns/net")
        for _ in range(100):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{self.holder.pid}/ns/net") != own:
                    break
            time.sleep(0.05)
        run("ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", NS_VETH)
        run("ip", "link", "set", NS_VETH, "netns", str(self.holder.pid))
        run("ip", "addr", "add", f"{LINK_HOST}/24", "dev", HOST_VETH)
        run("ip", "link", "set", HOST_VETH, "up")
        self._ns("ip", "link", "set", "lo", "up")
        self._ns("ip", "addr", "add", f"{LINK_NS}/24", "dev", NS_VETH)
        self._ns("ip", "link", "set", NS_VETH, "up")
        self._ns("ip", "route", "add", POD_RANGE, "via", LINK_HOST, "dev", NS_VETH)
        host = host_address()
        self._ns("ip", "route", "add", f"{host}/32", "via", LINK_HOST, "dev", NS_VETH)
        wanted = sorted({listen.address for listen in self.listens} | {APISERVER_STANDIN})
        for address in wanted:
            self._ns("ip", "addr", "add", f"{address}/32", "dev", NS_VETH)
            run("ip", "route", "add", f"{address}/32", "via", LINK_NS, "dev", HOST_VETH)
        self.addresses = wanted
        # The API server's stand-in address: forwarded (so policed) to the host's own.
        self._ns("sysctl", "-qw", "net.ipv4.ip_forward=1")
        nat = ("iptables", "-w", "-t", "nat", "-A")
        self._ns(
            *nat, "PREROUTING", "-d", APISERVER_STANDIN, "-j", "DNAT", "--to-destination", host
        )
        self._ns(*nat, "POSTROUTING", "-d", host, "-j", "MASQUERADE")
        script = Path(__file__).with_name("standin_listener.py")
        log = open(self.root / "standin-listener.log", "wb")  # noqa: SIM115
        self.listener = subprocess.Popen(
            [
                "nsenter",
                f"--net=/proc/{self.holder.pid}/ns/net",
                sys.executable,
                str(script),
                str(self.log),
                *(listen.spec for listen in self.listens),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while "listening" not in (self.root / "standin-listener.log").read_text():
            if self.listener.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the stand-in listener did not start: "
                    + (self.root / "standin-listener.log").read_text()[-600:]
                )
            time.sleep(0.05)

    @contextlib.contextmanager
    def forward(self, address: str, port: int, to_port: int) -> Iterator[str]:
        """Hand TCP `address`:`port` (a stand-in of this namespace) to a real server on this
        machine at LINK_HOST:`to_port`. A pod's packets still cross the policy agent on
        their way to `address`; the namespace then passes them on, masqueraded, so the
        server sees them from LINK_NS, which this yields. The rules go on exit, and the
        stand-in listener answers there again."""
        if address not in self.addresses:
            raise ValueError(f"containment: {address} is not a stand-in address of ours")
        match = ("-d", address, "-p", "tcp", "--dport", str(port))
        back = ("-d", LINK_HOST, "-p", "tcp", "--dport", str(to_port))
        rules = [
            ("PREROUTING", *match, "-j", "DNAT", "--to-destination", f"{LINK_HOST}:{to_port}"),
            ("POSTROUTING", *back, "-j", "MASQUERADE"),
        ]
        for rule in rules:
            self._ns("iptables", "-w", "-t", "nat", "-I", *rule)
        try:
            yield LINK_NS
        finally:
            for rule in rules:
                self._ns("iptables", "-w", "-t", "nat", "-D", *rule, check=False)

    def verify(self) -> None:
        """Re-assert our jumps at position 1 (kube-proxy prepends its own), then prove every
        fence holds; raises naming the first one that does not."""
        for table, hook, chain in (("filter", "FORWARD", CHAIN), ("mangle", "POSTROUTING", LATE)):
            rules = _ipt("-S", hook, table=table).splitlines()
            if len(rules) < 2 or rules[1] != f"-A {hook} -j {chain}":
                while f"-j {chain}" in _ipt("-S", hook, table=table):
                    _ipt("-D", hook, "-j", chain, table=table)
                _ipt("-I", hook, "1", "-j", chain, table=table)
            rules = _ipt("-S", hook, table=table).splitlines()
            if rules[1] != f"-A {hook} -j {chain}":
                raise RuntimeError(f"containment: {chain} is not first in {table} {hook}")
            body = _ipt("-S", chain, table=table)
            missing = [r for r in _drops(self.up, table) if " ".join(r) not in body]
            if missing:
                raise RuntimeError(f"containment: {table} {chain} lacks {missing}")
        blackholes = run("ip", "route", "show", "type", "blackhole")
        if f"blackhole {SERVICE_CIDR}" not in blackholes:
            raise RuntimeError(f"containment: no blackhole route for {SERVICE_CIDR}")
        for address in self.addresses:
            words = run("ip", "-4", "route", "get", address).split()
            dev = words[words.index("dev") + 1] if "dev" in words else "?"
            if dev != HOST_VETH:
                raise RuntimeError(f"containment: {address} is routed by {dev}, not {HOST_VETH}")
        nat = _ipt("-S", table="nat")
        masquerades = [line for line in nat.splitlines() if "MASQUERADE" in line and "CNI-" in line]
        if masquerades:
            raise RuntimeError(f"containment: the CNI masquerades pod traffic: {masquerades}")
        if self.listener is None or self.listener.poll() is not None:
            raise RuntimeError("containment: the stand-in listener is not running")

    def dropped(self) -> int:
        total = 0
        for table, chain in (("filter", CHAIN), ("mangle", LATE)):
            out = _ipt("-L", chain, "-v", "-x", "-n", table=table, check=False)
            for line in out.splitlines()[2:]:
                words = line.split()
                if len(words) > 2 and words[2] == "DROP":
                    total += int(words[0])
        return total

    def seen(self) -> list[dict[str, object]]:
        """Every packet the stand-ins answered, with its source address."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def heard_from_pods(self, since: int = 0) -> set[tuple[str, int, str]]:
        """(address, port, protocol) of each stand-in a pod's packet reached, counting from
        the `since`-th packet answered (`len(seen())` taken earlier)."""
        return {
            (str(s["address"]), int(str(s["port"])), str(s["proto"]))
            for s in self.seen()[since:]
            if ipaddress.ip_address(str(s["source"])) in ipaddress.ip_network(POD_RANGE)
        }

    def stop(self) -> None:
        for process in (self.listener, self.holder):
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        reap()


def reap() -> None:
    """Remove every object of ours, whatever state a run left it in."""
    run("ip", "link", "del", HOST_VETH, check=False)
    run("ip", "route", "del", "blackhole", SERVICE_CIDR, check=False)
    for table, hook, chain in (("filter", "FORWARD", CHAIN), ("mangle", "POSTROUTING", LATE)):
        while f"-j {chain}" in _ipt("-S", hook, table=table, check=False):
            _ipt("-D", hook, "-j", chain, table=table, check=False)
        _ipt("-F", chain, table=table, check=False)
        _ipt("-X", chain, table=table, check=False)
