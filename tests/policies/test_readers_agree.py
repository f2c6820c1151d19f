"""The policy pack and the audit read manifests the same way: who reads a Secret, and what a
label selector selects. Where they differed, `secret-single-reader` and the audit's shared
credential, or a rule and the audit's network matrix, gave two answers on one object."""

from __future__ import annotations

from typing import Any

import pytest

from infra.contract.manifests import secret_uses
from infra.offline.audit.selectors import Selector
from infra.offline.manifests import ManifestError
from policies.rules import evaluate
from policies.rules.k8s import secret_references, selector_matches
from tests.policies import perimeter_fixtures as fx

CONTAINER = {"name": "c", "image": "i"}
PODS: dict[str, dict[str, Any]] = {
    "env": {
        "containers": [
            {**CONTAINER, "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "a"}}}]}
        ]
    },
    "envFrom": {"containers": [{**CONTAINER, "envFrom": [{"secretRef": {"name": "a"}}]}]},
    "an init container": {
        "containers": [CONTAINER],
        "initContainers": [{**CONTAINER, "envFrom": [{"secretRef": {"name": "a"}}]}],
    },
    "a volume": {
        "containers": [CONTAINER],
        "volumes": [{"name": "v", "secret": {"secretName": "a"}}],
    },
    "a projected volume": {
        "containers": [CONTAINER],
        "volumes": [{"name": "v", "projected": {"sources": [{"secret": {"name": "a"}}]}}],
    },
    "image pull": {"containers": [CONTAINER], "imagePullSecrets": [{"name": "a"}]},
}


@pytest.mark.parametrize("how", PODS)
def test_both_count_the_same_secret_readers(how: str) -> None:
    pod = PODS[how]
    assert secret_references(pod) == {use.secret for use in secret_uses(pod)} == {"a"}


def test_a_pull_secret_shared_by_two_workloads_is_a_shared_credential() -> None:
    manifests = fx.environment()
    for name in ("mcp-server-tickets", "mcp-tunnel"):
        fx.pod_spec(fx.find(manifests, "Deployment", name))["imagePullSecrets"] = [
            {"name": "registry"}
        ]
    manifests.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "registry", "namespace": fx.NS},
            "type": "kubernetes.io/dockerconfigjson",
        }
    )
    found = evaluate(fx.resources(manifests), tier="prod", only=["secret-single-reader"])
    assert {v.resource for v in found} == {f"Secret/{fx.NS}/registry"}


LABELS = [{}, {"app": "db"}, {"app": "web"}, {"app": "db", "tier": "cache"}]
SELECTORS = {
    "In": {"key": "app", "operator": "In", "values": ["db"]},
    "NotIn": {"key": "app", "operator": "NotIn", "values": ["db"]},
    "Exists": {"key": "tier", "operator": "Exists"},
    "DoesNotExist": {"key": "tier", "operator": "DoesNotExist"},
    "an unknown operator": {"key": "app", "operator": "Equals", "values": ["db"]},
    "In without values": {"key": "app", "operator": "In", "values": []},
    "NotIn without values": {"key": "app", "operator": "NotIn"},
    "Exists with values": {"key": "app", "operator": "Exists", "values": ["db"]},
}
REFUSED_BY_THE_API = {
    "an unknown operator",
    "In without values",
    "NotIn without values",
    "Exists with values",
}


def _audit_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """The audit refuses what the API server refuses: it selects nothing."""
    try:
        return Selector.parse(selector).matches(labels)
    except ManifestError:
        return False


@pytest.mark.parametrize("expression", SELECTORS)
def test_both_select_the_same_pods(expression: str) -> None:
    selector = {"matchExpressions": [SELECTORS[expression]]}
    pack = [selector_matches(selector, labels) for labels in LABELS]
    assert pack == [_audit_matches(selector, labels) for labels in LABELS]
    if expression in REFUSED_BY_THE_API:
        assert pack == [False] * len(LABELS), "an expression the API refuses selected pods"
    else:
        assert True in pack and False in pack
