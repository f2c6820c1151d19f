"""The live tier: a real node on this host (real pods, enforced NetworkPolicies, images
built here), contained so that nothing sent from the pod network leaves the machine.

The session (harness/session.py) starts the containment, then the node, and always tears
both down, also when a test fails or the run is interrupted. The host's state is captured
before and compared after: anything left is an error, and so is a non-zero count of
dropped would-be-outbound packets.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.live.harness.session import Live, LiveLeftovers, live_session


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/live/" in str(item.fspath):
            item.add_marker(pytest.mark.live)


@pytest.fixture(scope="session")
def live() -> Iterator[Live]:
    running: Live | None = None
    try:
        with live_session() as running:
            print(
                "\nlive node: " + ", ".join(f"{k} {v:.1f} s" for k, v in running.report.items()),
                file=sys.stderr,
            )
            yield running
    except LiveLeftovers as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        if running is not None:
            report = running.report
            print(
                f"\nlive tier: dropped would-be-outbound packets: {report.get('dropped', 0):.0f}; "
                f"teardown {report.get('teardown', 0):.1f} s",
                file=sys.stderr,
            )
