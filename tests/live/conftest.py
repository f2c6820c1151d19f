"""The live tier: a real node on this host (real pods, enforced NetworkPolicies, images
built here), contained so that nothing sent from the pod network leaves the machine.

The session starts the containment, then the node, and always tears both down, also when
a test fails or the run is interrupted (SIGTERM is turned into KeyboardInterrupt). The
host's state is captured before and compared after: anything left is an error, and so is
a non-zero count of dropped would-be-outbound packets.
"""

from __future__ import annotations

import fcntl
import ipaddress
import signal
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

from infra.audit.probe import Target, config_targets
from infra.config import load
from policies.rules.network import METADATA_ADDRESSES
from tests.live.harness import containment as contain
from tests.live.harness import preflight
from tests.live.harness.containment import Containment, Listen
from tests.live.harness.host import Snapshot, drop_new_empty_tables
from tests.live.harness.node import BRIDGE, LiveNode
from tests.live.harness.tools import LiveTools, ensure_live_tools

INTERNET = Target("internet", "203.0.113.10", "TCP", 443)  # outside every allowed range
FORBIDDEN = [
    *(Target("metadata", str(a), "TCP", 80) for a in METADATA_ADDRESSES if a.version == 4),
    INTERNET,
]
LIVE_STACKS = ("dev",)
# One live node per host: the names of its links, chains and routes are fixed.
LOCK = Path("/run/lock/agent-perimeter-live.lock")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/live/" in str(item.fspath):
            item.add_marker(pytest.mark.live)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stand_ins() -> list[Target]:
    """Every outside address a shipped live stack may be probed at, plus the forbidden ones."""
    found = [t for stack in LIVE_STACKS for t in config_targets(load(stack=stack))]
    return list(dict.fromkeys([*found, *FORBIDDEN]))


@dataclass
class Live:
    node: LiveNode
    containment: Containment
    tools: LiveTools
    root: Path

    @property
    def probe_image(self) -> str:
        return self.tools.images["probe"].ref


@pytest.fixture(scope="session")
def live() -> Iterator[Live]:
    preflight.require()
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    lock = LOCK.open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"\nlive tier: waiting for another run to finish ({LOCK})", file=sys.stderr)
        fcntl.flock(lock, fcntl.LOCK_EX)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    tools = ensure_live_tools()
    # A run killed hard leaves objects only we name: remove them before the snapshot.
    contain.reap()
    from tests.live.harness.host import run

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
    problems: list[str] = []
    try:
        fence.start()
        fence.verify()
        node.start()
        print(
            "\nlive node: " + ", ".join(f"{k} {v:.1f} s" for k, v in node.timings.items()),
            file=sys.stderr,
        )
        yield Live(node, fence, tools, root)
    finally:
        dropped = fence.dropped() if fence.up else 0
        try:
            node.stop()
        finally:
            fence.stop()
            drop_new_empty_tables(before.parts["nft tables"])
            signal.signal(signal.SIGTERM, previous)
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        left = before.diff(Snapshot.capture(str(root)))
        print(f"\nlive tier: dropped would-be-outbound packets: {dropped}", file=sys.stderr)
        if left:
            problems.append("the live node left this behind:\n  " + "\n  ".join(left))
        if dropped:
            problems.append(f"{dropped} packets from the pod network tried to leave the machine")
    lock.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
