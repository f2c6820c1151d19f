"""The node itself: real pods under Pod Security `restricted`, the containment in force."""

from __future__ import annotations

import json
import time

from infra.offline.audit.probe import probe_pod
from tests.live.harness.session import Live

NS = "ap-live-smoke"


def _pod_phase(live: Live, name: str) -> str:
    out = live.node.kubectl("-n", NS, "get", "pod", name, "-o", "json", check=False)
    return json.loads(out.stdout)["status"].get("phase", "") if out.returncode == 0 else ""


def _wait_phase(live: Live, name: str, phases: tuple[str, ...], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = _pod_phase(live, name)
        if phase in phases:
            return phase
        time.sleep(0.3)
    raise AssertionError(
        f"pod {name} not {phases} in {timeout:.0f} s (now {_pod_phase(live, name)!r})"
    )


def test_containment_holds_with_the_node_running(live: Live) -> None:
    live.containment.verify()  # raises naming the fence that does not hold
    assert live.containment.dropped() == 0


def test_restricted_pods_run_for_real_and_reach_each_other(live: Live) -> None:
    node = live.node
    node.restricted_namespace(NS)
    try:
        root_pod = probe_pod("as-root", NS, {}, "smoke", "listener", live.probe_image, ["listen"])
        root_pod["spec"]["securityContext"] = {"runAsUser": 0}
        refused = node.kubectl("apply", "-f", "-", stdin=json.dumps(root_pod), check=False)
        assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr

        server = probe_pod(
            "server", NS, {"app": "server"}, "smoke", "listener", live.probe_image,
            ["listen", "tcp/8080"],
        )  # fmt: skip
        node.kubectl("apply", "-f", "-", stdin=json.dumps(server))
        assert _wait_phase(live, "server", ("Running",)) == "Running"
        pod = json.loads(node.kubectl("-n", NS, "get", "pod", "server", "-o", "json").stdout)
        ip = pod["status"]["podIP"]
        checks = [{"id": "x", "proto": "TCP", "host": ip, "port": 8080, "mode": "banner"}]
        client = probe_pod(
            "client", NS, {"app": "client"}, "smoke", "checker", live.probe_image,
            ["check", json.dumps(checks)],
        )  # fmt: skip
        node.kubectl("apply", "-f", "-", stdin=json.dumps(client))
        assert _wait_phase(live, "client", ("Succeeded", "Failed")) == "Succeeded"
        result = json.loads(node.kubectl("-n", NS, "logs", "client").stdout.splitlines()[-1])
        assert result["reached"], result
        assert "tcp from " in node.kubectl("-n", NS, "logs", "server").stdout
    finally:
        node.kubectl("delete", "namespace", NS, "--wait=false", check=False)
