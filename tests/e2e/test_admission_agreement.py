"""The in-cluster admission policy and the offline rule that share an id give one verdict:
the pack's own ValidatingAdmissionPolicy, bound to a namespace of this test's, admits
exactly the NetworkPolicies that `check`'s rule passes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.contract.names import NAMESPACE_NAME_LABEL
from infra.offline.manifests import MANIFESTS_DIR
from infra.pure.config import load
from infra.pure.network import allowed_egress_cidrs
from policies.rules import evaluate
from policies.rules.model import Resource
from tests.e2e.harness.control_plane import ControlPlane, ExternalCluster
from tests.e2e.harness.tools import REPO

METADATA = "metadata-endpoint-unreachable"
EGRESS = "egress-only-to-allowed-cidrs"
# (cidr, except): public blocks with and without their metadata holes, every provider's
# address, the IPv4-compatible and NAT64 spellings.
BLOCKS: list[tuple[str, list[str]]] = [
    ("169.254.169.254/32", []),
    ("169.254.170.2/32", []),
    ("169.254.170.23/32", []),
    ("168.63.129.16/32", []),
    ("100.100.100.200/32", []),
    ("fd00:ec2::254/128", []),
    ("fd00:ec2::23/128", []),
    ("fd20:ce::254/128", []),
    ("64:ff9b::/96", []),
    ("::/96", []),
    ("0.0.0.0/0", ["169.254.0.0/16"]),
    ("0.0.0.0/0", ["169.254.0.0/16", "168.63.129.16/32", "100.100.100.200/32"]),
    ("160.79.104.0/23", []),
    ("fd00:ec2::/64", ["fd00:ec2::254/128"]),
    ("fd00:ec2::/64", ["fd00:ec2::254/128", "fd00:ec2::23/128"]),
]
# Egress breadth against dev's declaration (issue 22 §2): a private /8, the pod range and
# another private host are refused, its own database and platform ranges admitted.
EGRESS_BLOCKS: list[tuple[str, list[str]]] = [
    ("10.0.0.0/8", []),
    ("10.244.0.0/16", []),
    ("10.20.0.16/32", []),
    ("fd00::/8", []),
    ("10.20.0.15/32", []),
    ("160.79.104.0/24", []),
    ("0.0.0.0/0", ["169.254.0.0/16"]),
]
CASES = [(METADATA, c, e) for c, e in BLOCKS] + [(EGRESS, c, e) for c, e in EGRESS_BLOCKS]


def namespace_of(rule: str) -> str:
    return f"e2e-agreement-{rule}"[:63]


def network_policy(cidr: str, excepts: list[str], namespace: str) -> dict[str, Any]:
    block: dict[str, Any] = {"cidr": cidr, **({"except": excepts} if excepts else {})}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": block}]}],
        },
    }


def _rendered_policy(out: Path, rule: str) -> list[dict[str, Any]]:
    """The dev stack's policy and binding for `rule`, renamed and bound to its own namespace
    (one rule per namespace, so each verdict is that rule's alone)."""
    found = []
    for path in sorted((out / MANIFESTS_DIR).glob(f"*-validatingadmissionpolicy*-{rule}.yaml")):
        doc = yaml.safe_load(path.read_text())
        doc["metadata"] = {"name": f"e2e-agreement-{rule}"}
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            doc["spec"]["policyName"] = f"e2e-agreement-{rule}"
            doc["spec"]["matchResources"] = {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace_of(rule)}}
            }
        found.append(doc)
    assert sorted(d["kind"] for d in found) == [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    return found


@pytest.fixture(scope="module")
def bound(
    cluster: ControlPlane | ExternalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane | ExternalCluster]:
    out = tmp_path_factory.mktemp("render")
    subprocess.run(
        [sys.executable, "-m", "infra", "render", "--stack", "dev", "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    docs = [
        doc
        for rule in (METADATA, EGRESS)
        for doc in (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace_of(rule)}},
            *_rendered_policy(out, rule),
        )
    ]
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    cluster.kubectl("apply", "-f", "-", stdin=listing)
    try:
        # A binding takes effect once the API server's policy informer has it.
        for rule in (METADATA, EGRESS):
            probe = json.dumps(network_policy("169.254.169.254/32", [], namespace_of(rule)))
            for _ in range(60):
                tried = cluster.kubectl(
                    "apply", "--dry-run=server", "-f", "-", stdin=probe, check=False
                )
                if tried.returncode != 0:
                    break
                time.sleep(0.5)
        yield cluster
    finally:
        cluster.kubectl("delete", "-f", "-", "--wait=false", stdin=listing, check=False)


@pytest.mark.parametrize(
    ("rule", "cidr", "excepts"), CASES, ids=[f"{r}-{c}-{len(e)}" for r, c, e in CASES]
)
def test_admission_and_check_agree(
    bound: ControlPlane | ExternalCluster, rule: str, cidr: str, excepts: list[str]
) -> None:
    """`check --stack dev` (the environment's whole declaration) and dev's deployed admission
    policy give the same verdict."""
    manifest = network_policy(cidr, excepts, namespace_of(rule))
    offline = evaluate(
        [Resource.from_manifest(manifest)],
        only=[rule],
        allowed_egress_cidrs=allowed_egress_cidrs(load(stack="dev")),
        declared_only=True,
    )
    admitted = bound.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest), check=False
    )
    assert (admitted.returncode == 0) == (offline == []), (
        f"check: {[v.message for v in offline] or 'passes'}; admission: "
        f"{(admitted.stdout + admitted.stderr).strip()}"
    )
    if admitted.returncode != 0:
        assert f"[{rule}]" in admitted.stderr, admitted.stderr
