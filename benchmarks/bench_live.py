"""Benchmark: the live tier's costs on this machine (printed, not a timed test).

Reports the node parts' and images' builds (cold, as recorded when each was built; warm,
a cached run timed now), node start to Ready and to a ready cluster, dev's
`audit --probe` (time and flow count), teardown, and the peak memory of everything the
session runs (control plane, containerd and its shims, kubelet, kube-proxy, policy
agent, containers). Needs root, like the tier.

    .venv/bin/python benchmarks/bench_live.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_e2e import descendants, rss_kib  # noqa: E402
from infra.offline.commands.source import load_stack_source  # noqa: E402
from tests.e2e.harness.tools import BUILD_SCRIPT  # noqa: E402
from tests.live.harness.session import FORBIDDEN, live_session  # noqa: E402

CACHE = Path(os.environ.get("AP_CACHE", Path.home() / ".cache" / "agent-perimeter"))
LIVE_PARTS = ("kubernetes-node", "coredns", "kube-network-policies", "image-")


def main() -> int:
    print("node parts and images (cold: recorded when built; warm: a cached run now)")
    for done in sorted(CACHE.glob("*/.build-seconds")):
        if done.parent.name.startswith(LIVE_PARTS):
            print(f"  cold {done.parent.name:<44} {int(done.read_text()):5d} s")
    begin = time.monotonic()
    subprocess.run(["bash", str(BUILD_SCRIPT), "live"], check=True, capture_output=True)
    print(f"  warm (every part cached)                     {time.monotonic() - begin:7.1f} s")

    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(descendants(os.getpid())))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    with live_session() as live:
        for step, seconds in live.node.timings.items():
            print(f"start: {step:<20} {seconds:6.1f} s")
        items = [
            m
            for m in load_stack_source("dev").manifests
            if m["kind"] in ("Namespace", "NetworkPolicy")
        ]
        live.node.kubectl(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        probe_began = time.monotonic()
        done = subprocess.run(
            [
                sys.executable, "-m", "infra", "audit", "--probe", "--stack", "dev",
                "--kubeconfig", str(live.node.kubeconfig), "--probe-image", live.probe_image,
                "--udp-echo", "--format", "json",
                *(f"--forbidden={t.address}:{t.port}/{t.protocol}" for t in FORBIDDEN),
            ],
            cwd=REPO, capture_output=True, text=True, check=False,
        )  # fmt: skip
        probed = time.monotonic() - probe_began
        flows = json.loads(done.stdout)["flows"] if done.stdout.startswith("{") else []
        bad = sum(1 for f in flows if not f["agrees"])
        print(f"dev audit --probe: {len(flows)} flows, {bad} disagreements in {probed:.1f} s")
    stop.set()
    sampler.join()
    print(
        f"teardown {live.report['teardown']:.1f} s; dropped would-be-outbound packets "
        f"{live.report['dropped']:.0f}; whole session {time.monotonic() - began:.1f} s"
    )
    print(f"peak RSS of the session's processes: {peak[0] / 1024:.0f} MiB")
    return 0 if flows and not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
