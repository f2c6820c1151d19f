"""`audit --probe`'s plan, offline: which flows it tries and what the matrix says of each.

The live tier (tests/live) runs the plan on a real node; here the expectations are held to
the policies themselves, so a policy change moves them and nothing is hard-coded.
"""

from __future__ import annotations

import copy

import pytest

from infra.offline.audit.inventory import object_ref
from infra.offline.audit.probe import (
    DEFAULT_FORBIDDEN,
    Check,
    Target,
    config_targets,
    plan,
    probe_audit,
    probe_pod,
)
from infra.offline.commands.source import load_stack_source
from infra.offline.manifests import Manifest
from infra.pure.config import PerimeterConfig
from tests.charts.pod_checks import restricted_violations
from tests.conftest import run_infra

NS = "agent-perimeter-dev"
METADATA = Target.parse(DEFAULT_FORBIDDEN[0])
API = ("198.51.100.30", 6443, "10.96.0.1")


def _plan(manifests: list[Manifest], config: PerimeterConfig, udp: bool = True) -> list[Check]:
    return plan(
        probe_audit(manifests, config),
        manifests,
        config.namespace,
        [*config_targets(config), METADATA],
        dns_ref=object_ref("Deployment", config.cluster.dns_namespace, "kube-dns"),
        apiserver=API,
        udp_echo=udp,
    ).checks


@pytest.fixture(scope="module")
def dev() -> tuple[list[Manifest], PerimeterConfig]:
    source = load_stack_source("dev")
    assert source.config is not None
    return source.manifests, source.config


def _find(
    checks: list[Check], source: str, destination: str, port: int, proto: str = "TCP"
) -> Check:
    found = [
        c
        for c in checks
        if c.source.endswith("/" + source)
        and destination in c.destination
        and c.port == port
        and c.protocol == proto
    ]
    assert len(found) == 1, (source, destination, port, [c.destination for c in checks])
    return found[0]


def test_the_plan_follows_the_boundaries_table(dev: tuple[list[Manifest], PerimeterConfig]) -> None:
    checks = _plan(*dev)
    assert _find(checks, "mcp-tunnel", "mcp-server-tickets", 8080).expected
    assert not _find(checks, "mcp-server-billing", "mcp-server-tickets", 8080).expected
    assert _find(checks, "mcp-server-inventory", "database support 10.20.0.15", 5432).expected
    assert not _find(checks, "mcp-server-billing", "database support", 5432).expected
    assert _find(
        checks, "mcp-server-billing", "backend billing/billing-api 10.30.4.1", 443
    ).expected
    assert _find(checks, "mcp-tunnel", "tunnel edge", 7844, "UDP").expected
    assert not _find(checks, "sandbox-runner-support", "tunnel edge", 7844, "UDP").expected
    assert not _find(checks, "sandbox-runner-support", "169.254.169.254", 80).expected
    assert not _find(checks, "mcp-tunnel", "kube-apiserver", 443).expected
    for c in checks:
        if c.destination == "kube-dns":
            assert c.expected, c  # every workload resolves names, through kube-dns only
    # Every workload is a source, and probes every other one's ports.
    workloads = {
        ref for ref, w in probe_audit(*dev).network.workloads.items() if w.workload.namespace == NS
    }
    assert {c.source for c in checks} == workloads
    # ... and every workload that listens (sandbox runners and the Job listen on nothing).
    listening = {c.destination_ref for c in checks if c.destination_ref}
    assert {r.rsplit("/", 1)[1] for r in listening} == {
        "mcp-tunnel",
        "mcp-server-exports",
        "mcp-server-tickets",
        "mcp-server-inventory",
        "mcp-server-billing",
    }
    assert all(c.host or c.destination_ref or c.mode == "dns" for c in checks)


def test_expectations_move_with_the_policies(dev: tuple[list[Manifest], PerimeterConfig]) -> None:
    manifests, config = dev
    widened = copy.deepcopy(manifests)
    policy = next(
        m
        for m in widened
        if m["kind"] == "NetworkPolicy" and m["metadata"]["name"] == "sandbox-runner-support"
    )
    policy["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "169.254.0.0/16"}}]})
    before = _find(_plan(manifests, config), "sandbox-runner-support", "169.254.169.254", 80)
    after = _find(_plan(widened, config), "sandbox-runner-support", "169.254.169.254", 80)
    assert (before.expected, after.expected) == (False, True)
    carved = copy.deepcopy(widened)
    rule = next(m for m in carved if m["metadata"]["name"] == "sandbox-runner-support")["spec"][
        "egress"
    ][-1]
    rule["to"][0]["ipBlock"]["except"] = ["169.254.169.254/32"]
    assert not _find(
        _plan(carved, config), "sandbox-runner-support", "169.254.169.254", 80
    ).expected


def test_udp_to_outside_is_probed_only_where_something_echoes(
    dev: tuple[list[Manifest], PerimeterConfig],
) -> None:
    quiet = _plan(*dev, udp=False)
    assert not [c for c in quiet if c.protocol == "UDP" and c.host and c.destination != "kube-dns"]
    assert [c for c in _plan(*dev) if c.protocol == "UDP" and "tunnel edge" in c.destination]


def test_config_targets_are_the_declared_endpoints(
    dev: tuple[list[Manifest], PerimeterConfig],
) -> None:
    targets = {(t.name, t.address, t.protocol, t.port) for t in config_targets(dev[1])}
    assert ("database support", "10.20.0.15", "TCP", 5432) in targets
    assert ("backend inventory/warehouse-api", "10.30.8.20", "TCP", 8443) in targets
    # A backend named by DNS is probed at its range's first address.
    assert ("backend billing/billing-api", "10.30.4.1", "TCP", 443) in targets
    assert {("tunnel edge", "198.41.192.1", p, 7844) for p in ("TCP", "UDP")} <= targets
    assert all(":" not in t[1] for t in targets)  # IPv4 only: the probe is single-stack


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("169.254.169.254", "needs a port"),
        ("metadata:80", "is not an IP address"),
        ("10.0.0.1:80/ICMP", "is not TCP or UDP"),
        ("10.0.0.1:70000", "needs a port"),
    ],
)
def test_a_bad_forbidden_address_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Target.parse(text)
    assert f"--forbidden {text}" in str(caught.value)


def test_probe_pods_are_restricted_and_hold_nothing() -> None:
    for role, ports in (("listener", [("TCP", 80), ("UDP", 7844)]), ("checker", [])):
        pod = probe_pod("p", NS, {"app": "x"}, "run1", role, "probe:1", ["check", "[]"], ports)
        assert restricted_violations(pod["spec"]) == []
        spec = pod["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert "volumes" not in spec and "volumeMounts" not in spec["containers"][0]
        assert "env" not in spec["containers"][0] and "envFrom" not in spec["containers"][0]
        assert spec["activeDeadlineSeconds"] > 0
        assert pod["metadata"]["labels"]["agent-perimeter.io/probe"] == "run1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--probe", "--stack", "dev"], "--probe needs --probe-image"),
        (
            ["--probe", "--stack", "dev", "--probe-image", "p", "--forbidden", "x:1"],
            "--forbidden x:1",
        ),
        (["--stack", "dev", "--probe-image", "p"], "apply with --probe"),
        (["--probe", "--probe-image", "p"], "--probe needs --stack"),
    ],
)
def test_probe_usage_errors_name_the_option(args: list[str], message: str) -> None:
    done = run_infra("audit", *args)
    assert done.returncode == 2, done.stdout
    assert message in done.stderr
