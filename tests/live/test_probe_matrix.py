"""`audit --probe` on the live node: the stack's NetworkPolicies in force, probe pods standing
in for every workload, the observed matrix equal to the audit's flow for flow; and a
policy widened by hand is caught, then closed again."""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import run_infra
from tests.live.harness.session import FORBIDDEN, INTERNET, LIVE_STACKS, Live, stack_fences


def _probe(live: Live, stack: str, *extra: str) -> tuple[int, str, str]:
    assert live.node.kubeconfig is not None
    args = [
        "audit", "--probe", "--stack", stack, "--kubeconfig", str(live.node.kubeconfig),
        "--probe-image", live.probe_image, "--udp-echo",
        *(f"--forbidden={t.address}:{t.port}/{t.protocol}" for t in FORBIDDEN),
        *extra,
    ]  # fmt: skip
    done = run_infra(*args, timeout=600)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module", params=LIVE_STACKS)
def fenced(live: Live, request: pytest.FixtureRequest) -> str:
    live.node.apply(stack_fences(request.param))
    return request.param


def test_probed_matrix_equals_the_audit(live: Live, fenced: str) -> None:
    seen_before = len(live.containment.seen())
    code, out, err = _probe(live, fenced, "--format", "json")
    assert code in (0, 1), err
    report = json.loads(out)
    flows = report["flows"]
    bad = [f for f in flows if not f["agrees"]]
    print(f"\n{fenced}: {len(flows)} flows probed, {len(bad)} disagreements")
    for f in sorted(flows, key=lambda f: (f["source"], f["destination"])):
        print(
            f"  {f['source'].rsplit('/', 1)[-1]:<34} -> {f['destination']:<44} "
            f"{f['protocol']}/{f['port']:<5} {f['matrix']:<5} {f['observed']}"
        )
    assert not bad, "\n".join(json.dumps(f) for f in bad)
    kinds = {f["destination"].split()[0] for f in flows}
    assert {"kube-dns", "kube-apiserver", "forbidden", "database", "backend"} <= kinds
    assert {t.address for t in FORBIDDEN} <= {f["destination"].split()[-1] for f in flows}
    assert any(f["protocol"] == "UDP" and f["matrix"] == "allow" for f in flows)
    assert any(f["matrix"] == "allow" for f in flows) and any(f["matrix"] == "deny" for f in flows)
    # A leak is seen by a listener: the stand-ins heard pod traffic exactly where the
    # matrix allows it, and never at a forbidden address.
    heard = live.containment.heard_from_pods(since=seen_before)
    forbidden = {(t.address, t.port, t.protocol) for t in FORBIDDEN}
    assert not heard & forbidden, heard & forbidden
    allowed_outside = {
        (f["destination"].rsplit(" ", 1)[-1], f["port"], f["protocol"])
        for f in flows
        if f["matrix"] == "allow"
        and f["destination"].split()[0] in ("database", "backend", "platform", "tunnel")
    }
    assert allowed_outside and allowed_outside <= heard, allowed_outside - heard
    assert live.containment.dropped() == 0


def test_a_widened_policy_is_caught_then_closed(live: Live, fenced: str) -> None:
    manifests = stack_fences(fenced)
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    victim = next(m for m in policies if "sandbox" in m["metadata"]["name"])
    widened = copy.deepcopy(victim)
    widened["spec"]["egress"].append(
        {
            "to": [{"ipBlock": {"cidr": f"{INTERNET.address}/32"}}],
            "ports": [{"protocol": "TCP", "port": INTERNET.port}],
        }
    )
    live.node.apply([widened])
    code, out, _ = _probe(live, fenced)
    print(out)
    assert code == 1
    rows = [line for line in out.splitlines() if "DISAGREES" in line]
    assert rows and all(INTERNET.address in r and "| deny | reached |" in r for r in rows), rows
    live.node.apply([victim])
    code, out, _ = _probe(live, fenced)
    assert code == 0, out
    assert "0 disagreements" in out.splitlines()[0]
