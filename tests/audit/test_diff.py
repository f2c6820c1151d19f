"""`--diff`: what a promotion changes in reachability and credentials."""

from __future__ import annotations

from infra.offline.audit import audit_manifests, diff_audits, render_diff_markdown
from tests.audit.fixtures.perimeter import environment


def _audit(label: str, **kwargs):
    ns = f"agent-perimeter-{label}"
    return audit_manifests(environment(ns=ns, **kwargs), label=label, policies=False)


def test_the_same_environment_in_another_namespace_differs_in_nothing() -> None:
    diff = diff_audits(_audit("staging", servers=2), _audit("prod", servers=2))
    assert diff.changes == []
    assert "No difference in reachability or credentials." in render_diff_markdown(diff)


def test_a_new_server_and_a_withdrawn_sandbox_grant_show_up() -> None:
    diff = diff_audits(
        _audit("staging", servers=2, sandbox_servers=1),
        _audit("prod", servers=3, sandbox_servers=0),
    )
    found = {(c.area, c.subject, c.what): (c.a, c.b) for c in diff.changes}
    assert found[("workload", "Deployment/mcp-server-srv02", "exists")] == ("—", "yes")
    assert found[("ingress", "Deployment/mcp-server-tickets", "Deployment/sandbox-runner")] == (
        "TCP/8080",
        "—",
    )
    assert found[
        ("flow", "Deployment/sandbox-runner → Deployment/mcp-server-tickets", "ports")
    ] == ("TCP/8080", "—")
    assert found[("credential", "Secret/mcp-server-srv02-platform-token", "grants")] == (
        "—",
        "platform credential bound to https://srv02.mcp.example.com/mcp",
    )
    md = render_diff_markdown(diff)
    assert md.startswith("## Boundary diff: staging → prod\n")
    assert "### Flows between workloads" in md


def test_a_widened_policy_shows_as_a_reachability_change_and_a_new_flag() -> None:
    staging = environment(ns="agent-perimeter-staging")
    prod = environment(ns="agent-perimeter-prod")
    policy = next(
        m
        for m in prod
        if m["metadata"]["name"] == "mcp-server-tickets" and m["kind"] == "NetworkPolicy"
    )
    policy["spec"]["ingress"].append({"from": [{"namespaceSelector": {}}]})
    diff = diff_audits(
        audit_manifests(staging, label="staging", policies=False),
        audit_manifests(prod, label="prod", policies=False),
    )
    areas = {(c.area, c.what) for c in diff.changes}
    assert ("ingress", "all pods in every namespace") in areas
    assert ("flag", "ingress-all-namespaces") in areas
