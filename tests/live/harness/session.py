"""One live session: containment, then the node; on exit, both torn down and the host
compared with how it was. Used by the tier's fixture and by the live benchmark."""

from __future__ import annotations

import fcntl
import ipaddress
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from infra.contract.addresses import METADATA_ADDRESSES
from infra.offline.audit.probe import Target, config_targets
from infra.offline.commands.source import load_stack_source
from infra.offline.manifests import Manifest
from infra.pure.config import load
from tests.live.harness import containment as contain, preflight
from tests.live.harness.containment import Containment, Listen
from tests.live.harness.host import Snapshot, drop_new_empty_tables, run
from tests.live.harness.node import BRIDGE, LiveNode
from tests.live.harness.tools import LiveTools, ensure_live_tools
from tests.signals import interrupt

INTERNET = Target("internet", "203.0.113.10", "TCP", 443)  # outside every allowed range
FORBIDDEN = [
    *(Target("metadata", str(a), "TCP", 80) for a in METADATA_ADDRESSES if a.version == 4),
    INTERNET,
]
LIVE_STACKS = ("dev",)
# One live node per host: the names of its links, chains and routes are fixed.
LOCK = Path("/run/lock/agent-perimeter-live.lock")


class LiveLeftovers(RuntimeError):
    """The session left state on the host, or pod traffic tried to leave the machine."""


def stand_ins() -> list[Target]:
    """Every outside address a live stack may be probed at, plus the forbidden ones."""
    found = [t for stack in LIVE_STACKS for t in config_targets(load(stack=stack))]
    return list(dict.fromkeys([*found, *FORBIDDEN]))


def stack_fences(stack: str) -> list[Manifest]:
    """The stack's Namespace and NetworkPolicies, as the program renders them."""
    source = load_stack_source(stack)
    return [m for m in source.manifests if m["kind"] in ("Namespace", "NetworkPolicy")]


def stand_in(stack: str, name: str) -> Target:
    """The address `stack`'s declared endpoint `name` (say "platform API") is served at."""
    found = [t for t in config_targets(load(stack=stack)) if t.name == name]
    if not found:
        raise AssertionError(f"{stack} declares no {name!r} endpoint")
    return found[0]


@dataclass
class Live:
    node: LiveNode
    containment: Containment
    tools: LiveTools
    root: Path
    report: dict[str, float] = field(default_factory=dict)

    @property
    def probe_image(self) -> str:
        return self.tools.images["probe"].ref

    def fence(self, namespace: str, stack: str) -> None:
        """`stack`'s NetworkPolicies in force in `namespace` (a test's own): the policies
        select by labels only, so they fence the same pods there as in the stack's."""
        policies = [
            m | {"metadata": m["metadata"] | {"namespace": namespace}}
            for m in stack_fences(stack)
            if m["kind"] == "NetworkPolicy"
        ]
        self.node.apply(policies)


@contextmanager
def _host_lock() -> Iterator[None]:
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"live tier: waiting for another run to finish ({LOCK})", file=sys.stderr)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def live_session() -> Iterator[Live]:
    """Raises LiveLeftovers at exit when anything is left behind or the drop counter moved;
    the teardown runs whatever happened inside (SIGTERM becomes KeyboardInterrupt)."""
    preflight.require()
    tools = ensure_live_tools()
    with _host_lock():
        previous = signal.signal(signal.SIGTERM, interrupt)
        # A run killed hard leaves objects only we name: remove them before the snapshot.
        contain.reap()
        run("ip", "link", "del", BRIDGE, check=False)
        root = Path(tempfile.mkdtemp(prefix="ap-live-"))
        before = Snapshot.capture(str(root))
        listens = [
            Listen(t.address, t.port, t.protocol)
            for t in stand_ins()
            if ipaddress.ip_address(t.address).version == 4
        ]
        fence = Containment(root / "contain", listens)
        node = LiveNode(tools, fence, root=root / "node")
        live = Live(node, fence, tools, root)
        try:
            fence.start()
            fence.verify()
            node.start()
            live.report.update(node.timings)
            yield live
        finally:
            live.report["dropped"] = fence.dropped() if fence.up else 0
            began = time.monotonic()
            try:
                node.stop()
            finally:
                fence.stop()
                drop_new_empty_tables(before.parts["nft tables"])
                signal.signal(signal.SIGTERM, previous)
            shutil.rmtree(root, ignore_errors=True)
            live.report["teardown"] = time.monotonic() - began
            left = before.diff(Snapshot.capture(str(root)))
        problems = []
        if left:
            problems.append("the live node left this behind:\n  " + "\n  ".join(left))
        if live.report["dropped"]:
            problems.append(
                f"{live.report['dropped']:.0f} packets from the pod network tried to leave the machine"
            )
        if problems:
            raise LiveLeftovers("\n".join(problems))
