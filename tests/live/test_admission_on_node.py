"""Admission on the real node's API server (issue 18 §5): dev's rendered guards refuse what
the pack forbids before anything reaches the kubelet, naming the rule; what they allow is
admitted. The cases are the e2e tier's own, so both clusters are tried with the same objects."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from infra.contract.names import NAMESPACE_NAME_LABEL
from infra.offline.commands.source import load_stack_source
from tests.e2e.test_live_guards import DENIED
from tests.live.harness.session import Live

NS = "ap-live-admission"
SUFFIX = "-live"
POLICY_LOADED_SECONDS = 30  # the API server starts enforcing a new binding within seconds


def _guards(namespace: str) -> list[dict[str, Any]]:
    """dev's ValidatingAdmissionPolicies and bindings as rendered, renamed for this test and
    bound to `namespace` (they bind by namespace name, as they do dev's)."""
    found = []
    for manifest in load_stack_source("dev").manifests:
        meta = manifest["metadata"] | {"name": manifest["metadata"]["name"] + SUFFIX}
        if manifest["kind"] == "ValidatingAdmissionPolicy":
            found.append(manifest | {"metadata": meta})
        elif manifest["kind"] == "ValidatingAdmissionPolicyBinding":
            spec = manifest["spec"]
            scope = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}
            spec = spec | {
                "policyName": spec["policyName"] + SUFFIX,
                "matchResources": spec["matchResources"] | scope,
            }
            found.append(manifest | {"metadata": meta, "spec": spec})
    return found


@pytest.fixture(scope="module")
def guarded(live: Live) -> Iterator[Live]:
    guards = _guards(NS)
    assert len(guards) >= 18, "dev renders a policy and a binding per CEL rule"
    live.node.restricted_namespace(NS)
    try:
        live.node.apply(guards)
        yield live
    finally:
        for guard in reversed(guards):
            name = guard["metadata"]["name"]
            live.node.kubectl(
                "delete", guard["kind"].lower(), name, "--ignore-not-found", check=False
            )
        live.node.kubectl("delete", "namespace", NS, "--wait=false", check=False)


def _apply(live: Live, manifest: dict[str, Any]) -> Any:
    return live.node.kubectl(
        "apply", "-n", NS, "-f", "-", stdin=yaml.safe_dump(manifest), check=False
    )


def _delete(live: Live, manifest: dict[str, Any]) -> None:
    live.node.kubectl(
        "delete", "-n", NS, "--ignore-not-found", "-f", "-", stdin=yaml.safe_dump(manifest),
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("rule", sorted(DENIED))
def test_the_node_refuses_what_the_pack_forbids(guarded: Live, rule: str) -> None:
    manifest = DENIED[rule]
    deadline = time.monotonic() + POLICY_LOADED_SECONDS
    try:
        while (result := _apply(guarded, manifest)).returncode == 0:
            _delete(guarded, manifest)  # admitted before the binding was loaded: try again
            assert time.monotonic() < deadline, f"{manifest['kind']} was admitted"
            time.sleep(1)
        assert f"[{rule}]" in result.stderr, result.stderr
        pods = json.loads(guarded.node.kubectl("-n", NS, "get", "pods", "-o", "json").stdout)
        assert pods["items"] == [], "a refused workload reached the node"
    finally:
        _delete(guarded, manifest)


def test_what_the_pack_allows_is_admitted(guarded: Live) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "inside"},
        "spec": {"selector": {"app": "inside"}, "ports": [{"port": 8080}]},
    }
    try:
        result = _apply(guarded, service)
        assert result.returncode == 0, result.stderr
    finally:
        _delete(guarded, service)
