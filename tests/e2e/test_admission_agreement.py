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

from policies.rules import evaluate
from policies.rules.model import Resource
from tests.e2e.harness.control_plane import ControlPlane, ExternalCluster
from tests.e2e.harness.tools import REPO

NAMESPACE = "e2e-admission-agreement"
RULE = "metadata-endpoint-unreachable"
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


def network_policy(cidr: str, excepts: list[str]) -> dict[str, Any]:
    block: dict[str, Any] = {"cidr": cidr, **({"except": excepts} if excepts else {})}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "probe", "namespace": NAMESPACE},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": block}]}],
        },
    }


def _rendered_policy(out: Path) -> list[dict[str, Any]]:
    """The dev stack's policy and binding for RULE, renamed and bound to NAMESPACE."""
    subprocess.run(
        [sys.executable, "-m", "infra", "render", "--stack", "dev", "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    found = []
    for path in sorted(out.glob(f"validatingadmissionpolicy*-{RULE}.yaml")):
        doc = yaml.safe_load(path.read_text())
        doc["metadata"] = {"name": f"e2e-agreement-{RULE}"}
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            doc["spec"]["policyName"] = f"e2e-agreement-{RULE}"
            doc["spec"]["matchResources"] = {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}
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
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *_rendered_policy(tmp_path_factory.mktemp("render")),
    ]
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    cluster.kubectl("apply", "-f", "-", stdin=listing)
    try:
        # A binding takes effect once the API server's policy informer has it.
        probe = json.dumps(network_policy("169.254.169.254/32", []))
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


@pytest.mark.parametrize(("cidr", "excepts"), BLOCKS, ids=[f"{c}-{len(e)}" for c, e in BLOCKS])
def test_admission_and_check_agree(
    bound: ControlPlane | ExternalCluster, cidr: str, excepts: list[str]
) -> None:
    manifest = network_policy(cidr, excepts)
    offline = evaluate([Resource.from_manifest(manifest)], only=[RULE])
    admitted = bound.kubectl(
        "apply", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest), check=False
    )
    assert (admitted.returncode == 0) == (offline == []), (
        f"check: {[v.message for v in offline] or 'passes'}; admission: "
        f"{(admitted.stdout + admitted.stderr).strip()}"
    )
    if admitted.returncode != 0:
        assert f"[{RULE}]" in admitted.stderr, admitted.stderr
