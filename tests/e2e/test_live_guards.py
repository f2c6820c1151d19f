"""After `pulumi up`: what kubectl may no longer do (admission), and what the live audit sees.

One dev deployment for the module; each test injects one change and removes it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.harness.perimeter import Perimeter, live_audit
from tests.e2e.harness.tools import REPO

STACK = "live-guards"


@pytest.fixture(scope="module")
def dev(workspace, cluster, proxy_tls, platform_api) -> Iterator[Perimeter]:
    perimeter = Perimeter.prepare(
        workspace, cluster, STACK, proxy_tls, platform_api, stack_file=REPO / "Pulumi.dev.yaml"
    )
    try:
        perimeter.stack.up()
        yield perimeter
    finally:
        perimeter.stack.destroy(check=False)
        perimeter.stack.remove()


def apply(dev: Perimeter, manifest: dict) -> subprocess.CompletedProcess[str]:
    return dev.cluster.kubectl(
        "apply", "-n", dev.namespace, "-f", "-", stdin=yaml.safe_dump(manifest), check=False
    )


def delete(dev: Perimeter, manifest: dict) -> None:
    dev.cluster.kubectl(
        "delete",
        "-n",
        dev.namespace,
        "--ignore-not-found",
        "-f",
        "-",
        stdin=yaml.safe_dump(manifest),
        check=False,
    )


def hardened_pod(
    labels: dict[str, str], ports: list | None = None, env: list | None = None, **extra: object
) -> dict:
    return {
        "metadata": {"labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "c",
                    "image": "registry.example.com/x:1",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "readOnlyRootFilesystem": True,
                    },
                    **({"ports": ports} if ports else {}),
                    **({"env": env} if env else {}),
                }
            ],
            **extra,
        },
    }


def deployment(name: str, pod: dict) -> dict:
    labels = pod["metadata"]["labels"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": pod},
    }


def network_policy(name: str, spec: dict) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {"podSelector": {}, **spec},
    }


DENIED = {
    "service-cluster-ip-only": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "example.com"},
    },
    "no-ingress": {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "ing"},
        "spec": {"defaultBackend": {"service": {"name": "x", "port": {"number": 80}}}},
    },
    "no-host-ports": deployment(
        "host-port", hardened_pod({"e2e": "hp"}, ports=[{"containerPort": 8080, "hostPort": 8080}])
    ),
    "no-host-namespaces": deployment("host-net", hardened_pod({"e2e": "hn"}, hostNetwork=True)),
    "no-plaintext-credential": deployment(
        "url-password",
        hardened_pod(
            {"e2e": "pw"},
            env=[{"name": "UPSTREAM", "value": "postgres://app:" + "pw1234@db.internal/x"}],
        ),
    ),
    "ingress-from-scoped-sources": network_policy(
        "from-anywhere", {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}
    ),
    "egress-only-to-allowed-cidrs": network_policy(
        "to-everything", {"policyTypes": ["Egress"], "egress": [{}]}
    ),
    "no-privileged-role-binding": {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "escalate"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "cluster-admin",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "x"}],
    },
}


@pytest.mark.parametrize("rule", sorted(DENIED))
def test_admission_denies_what_the_pack_forbids(dev: Perimeter, rule: str) -> None:
    manifest = DENIED[rule]
    try:
        result = apply(dev, manifest)
        assert result.returncode != 0, f"{manifest['kind']} was admitted"
        assert f"[{rule}]" in result.stderr, result.stderr
    finally:
        delete(dev, manifest)


def test_the_bundles_own_objects_pass_admission_and_the_live_audit(dev: Perimeter) -> None:
    policies = dev.kube("get", "validatingadmissionpolicybindings")["items"]
    bound = [p for p in policies if dev.namespace in json.dumps(p["spec"])]
    assert len(bound) >= 9
    audit = live_audit(dev)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-2000:]


def _sandbox_labels(dev: Perimeter) -> dict[str, str]:
    (runner,) = [
        d for d in dev.objects("deployments") if "sandbox-runner" in d["metadata"]["name"]
    ][:1]
    return runner["spec"]["selector"]["matchLabels"]


def _tool_secret(dev: Perimeter) -> str:
    return next(
        s["metadata"]["name"]
        for s in dev.objects("secrets")
        if s["metadata"].get("labels", {}).get("agent-perimeter.io/credential") == "database-role"
    )


@pytest.mark.parametrize(
    "drift", ["service-to-sandbox", "second-secret-reader", "egress-everywhere"]
)
def test_live_audit_reports_injected_drift(dev: Perimeter, drift: str) -> None:
    if drift == "service-to-sandbox":
        manifest = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "peek"},
            "spec": {"selector": _sandbox_labels(dev), "ports": [{"port": 8080}]},
        }
        expect = "no-service-for-outbound-workloads"
    elif drift == "second-secret-reader":
        secret = _tool_secret(dev)
        pod = hardened_pod(
            {"e2e": "reader"}, volumes=[{"name": "s", "secret": {"secretName": secret}}]
        )
        manifest = deployment("reader", pod)
        expect = "unexpected-reader"
    else:
        manifest = network_policy(
            "everywhere",
            {"policyTypes": ["Egress"], "egress": [{"to": [{"namespaceSelector": {}}]}]},
        )
        expect = f"NetworkPolicy/{dev.namespace}/everywhere"
    try:
        created = apply(dev, manifest)
        assert created.returncode == 0, created.stderr
        audit = live_audit(dev)
        assert audit.returncode == 1, audit.stdout[-3000:] + audit.stderr[-2000:]
        assert expect in audit.stdout
    finally:
        delete(dev, manifest)
    assert live_audit(dev).returncode == 0


def test_a_hand_edit_of_a_managed_network_policy_is_caught_and_undone(dev: Perimeter) -> None:
    policies = {p["metadata"]["name"]: p for p in dev.objects("networkpolicies")}
    name = next(n for n, p in sorted(policies.items()) if n.startswith("mcp-server-"))
    before = policies[name]["spec"]
    widened = json.dumps(
        [{"op": "add", "path": "/spec/egress/-", "value": {"to": [{"podSelector": {}}]}}]
    )
    dev.cluster.kubectl(
        "patch", "networkpolicy", name, "-n", dev.namespace, "--type=json", "-p", widened
    )
    caught = live_audit(dev)
    assert caught.returncode == 1
    assert f"NetworkPolicy/{dev.namespace}/{name}" in caught.stdout

    up = dev.stack.up()
    assert f"NetworkPolicy {dev.namespace}/{name} was changed outside the program" in up.output
    restored = dev.kube("get", "networkpolicy", name, "-n", dev.namespace)["spec"]
    assert restored["egress"] == before["egress"]
    assert live_audit(dev).returncode == 0
    dev.stack.preview("--expect-no-changes")
