"""One problem, one finding (issue 19 §4): where a pack rule covers a problem the audit
reports it under the rule's id, once; its own flags are only for what no rule covers."""

from __future__ import annotations

from typing import Any

import pytest

from infra.offline.audit import Audit, audit_manifests
from policies.rules import RULES_BY_ID
from tests.audit.fixtures.perimeter import NS, environment
from tests.audit.helpers import by_name, flag_codes

SECRET = f"Secret/{NS}"


def _exposed(manifests: list[dict[str, Any]]) -> None:
    service = next(m for m in manifests if m["kind"] == "Service")
    service["spec"]["type"] = "NodePort"


def _shared(manifests: list[dict[str, Any]]) -> None:
    inventory = by_name(manifests, "Deployment", "mcp-server-inventory")
    inventory["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "STOLEN", "valueFrom": {"secretKeyRef": {"name": "mcp-tunnel-token", "key": "t"}}}
    )


def _host_network(manifests: list[dict[str, Any]]) -> None:
    by_name(manifests, "Deployment", "sandbox-runner")["spec"]["template"]["spec"][
        "hostNetwork"
    ] = True


def _admin_read(manifests: list[dict[str, Any]]) -> None:
    spec = by_name(manifests, "Deployment", "sandbox-runner")["spec"]["template"]["spec"]
    spec["volumes"] = [
        *spec.get("volumes", []),
        {"name": "admin", "secret": {"secretName": "role-provisioner-support-admin"}},
    ]


CASES = [
    ("service-cluster-ip-only", _exposed),
    ("secret-single-reader", _shared),
    ("no-host-namespaces", _host_network),
    ("database-admin-only-provisioner", _admin_read),
]


def _audit(break_it: Any, policies: bool) -> Audit:
    manifests = environment(2)
    break_it(manifests)
    return audit_manifests(manifests, policies=policies)


@pytest.mark.parametrize(("rule", "break_it"), CASES, ids=[c[0] for c in CASES])
def test_a_problem_a_rule_covers_is_one_finding_under_its_id(rule: str, break_it: Any) -> None:
    assert rule in RULES_BY_ID
    audit = _audit(break_it, policies=True)
    assert rule in {v.rule_id for v in audit.policy.violations}
    assert rule not in flag_codes(audit), "reported twice: as a rule finding and as a flag"


@pytest.mark.parametrize(("rule", "break_it"), CASES, ids=[c[0] for c in CASES])
def test_without_the_pack_the_audit_flags_it_under_the_same_id(rule: str, break_it: Any) -> None:
    audit = _audit(break_it, policies=False)
    assert rule in flag_codes(audit)


def test_what_no_rule_covers_stays_a_flag_beside_the_pack() -> None:
    manifests = environment(2)
    manifests = [
        m
        for m in manifests
        if m["metadata"]["name"] != "sandbox-runner" or m["kind"] != "Deployment"
    ]
    audit = audit_manifests(manifests, policies=True)
    assert "secret-unread" not in RULES_BY_ID
    assert flag_codes(audit, f"{SECRET}/sandbox-runner-environment-key") >= {"secret-unread"}
