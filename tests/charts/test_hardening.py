"""What every chart guarantees, with no values and with the program's values: restricted pods,
the label contract the NetworkPolicies rely on, and credentials referenced only by name."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from infra.pure import naming

from .helm_render import CHARTS, Manifest, render
from .pod_checks import hardening_violations, pod_spec, restricted_violations
from .values_sets import COMMON_LABELS, NAMESPACE, REALISTIC

pytestmark = pytest.mark.helm

VALUE_SETS = ("defaults", "realistic")
CASES = [(chart, which) for chart in CHARTS for which in VALUE_SETS]
EXPECTED_KINDS = {
    "mcp-server": ["Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"],
    "mcp-tunnel": ["ConfigMap", "Deployment", "PodDisruptionBudget", "ServiceAccount"],
    "sandbox-runner": [
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceAccount",
    ],
}
STANDARD_LABELS = {
    "helm.sh/chart",
    naming.LABEL_NAME,
    naming.LABEL_INSTANCE,
    "app.kubernetes.io/version",
    naming.LABEL_COMPONENT,
    naming.LABEL_PART_OF,
    naming.LABEL_MANAGED_BY,
}
# Env vars that carry a credential and so must come from a Secret, never a literal.
SECRET_ENV_MARKERS = ("TOKEN", "PASSWORD", "KEY", "DB_USER_")


@cache
def _rendered(chart: str, which: str) -> tuple[str, tuple[Manifest, ...]]:
    """(release, objects); defaults render under the program's release name as well."""
    release, values = REALISTIC[chart]
    return release, tuple(render(chart, values if which == "realistic" else {}, release, NAMESPACE))


def rendered(chart: str, which: str) -> tuple[str, list[Manifest]]:
    release, objects = _rendered(chart, which)
    return release, list(objects)


def workloads(objects: list[Manifest]) -> list[tuple[Manifest, Manifest]]:
    return [(o, spec) for o in objects if (spec := pod_spec(o)) is not None]


# Objects only some values render: the server's config files.
EXTRA_REALISTIC_KINDS = {"mcp-server": ["ConfigMap"]}


@pytest.mark.parametrize(("chart", "which"), CASES)
def test_renders_exactly_the_listed_objects(chart: str, which: str) -> None:
    _, objects = rendered(chart, which)
    extra = EXTRA_REALISTIC_KINDS.get(chart, []) if which == "realistic" else []
    assert sorted(o["kind"] for o in objects) == sorted(EXPECTED_KINDS[chart] + extra)


@pytest.mark.parametrize(("chart", "which"), CASES)
def test_every_pod_passes_pod_security_restricted(chart: str, which: str) -> None:
    _, objects = rendered(chart, which)
    pods = workloads(objects)
    assert pods
    for obj, spec in pods:
        assert restricted_violations(spec) == [], obj["metadata"]["name"]


@pytest.mark.parametrize(("chart", "which"), CASES)
def test_every_container_is_bounded_probed_and_read_only(chart: str, which: str) -> None:
    """Requests and limits, liveness and readiness probes, read-only root, no API token."""
    _, objects = rendered(chart, which)
    for obj, spec in workloads(objects):
        assert hardening_violations(spec) == [], obj["metadata"]["name"]


@pytest.mark.parametrize(("chart", "which"), CASES)
def test_service_account_never_mounts_a_token(chart: str, which: str) -> None:
    _, objects = rendered(chart, which)
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    for _, spec in workloads(objects):
        assert spec["serviceAccountName"] == account["metadata"]["name"]


@pytest.mark.parametrize(("chart", "which"), CASES)
def test_each_workload_waits_for_its_service_account(chart: str, which: str) -> None:
    """Issue 22 §13: Pulumi's Chart v4 (and kpt, Config Sync) order by this annotation."""
    _, objects = rendered(chart, which)
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    reference = f"/namespaces/{account['metadata']['namespace']}/ServiceAccount/"
    for workload, spec in workloads(objects):
        annotations = workload["metadata"].get("annotations", {})
        wanted = reference + spec["serviceAccountName"]
        assert annotations.get("config.kubernetes.io/depends-on") == wanted


@pytest.mark.parametrize(("chart", "which"), CASES)
def test_selectors_match_the_naming_contract(chart: str, which: str) -> None:
    """The program's NetworkPolicies select exactly naming.selector_labels(chart, release)."""
    release, objects = rendered(chart, which)
    expected = naming.selector_labels(chart, release)
    for obj in objects:
        spec = obj.get("spec") or {}
        if "selector" in spec:
            selector = spec["selector"]
            assert selector.get("matchLabels", selector) == expected, obj["kind"]
    for obj, _ in workloads(objects):
        pod_labels = obj["spec"]["template"]["metadata"]["labels"]
        assert expected.items() <= pod_labels.items()
        assert pod_labels[naming.LABEL_COMPONENT] == chart
        assert pod_labels[naming.LABEL_PART_OF] == naming.PART_OF


@pytest.mark.parametrize(("chart", "which"), CASES)
def test_every_object_carries_the_standard_and_common_labels(chart: str, which: str) -> None:
    release, objects = rendered(chart, which)
    common = COMMON_LABELS if which == "realistic" else {}
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert set(labels) >= STANDARD_LABELS, obj["kind"]
        assert labels[naming.LABEL_NAME] == chart
        assert labels[naming.LABEL_INSTANCE] == release
        assert labels[naming.LABEL_COMPONENT] == chart
        assert labels[naming.LABEL_PART_OF] == "agent-perimeter"
        assert common.items() <= labels.items(), obj["kind"]
        assert obj["metadata"]["namespace"] == NAMESPACE
    for obj, _ in workloads(objects):
        assert common.items() <= obj["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("chart", CHARTS)
def test_pod_labels_and_annotations_reach_the_pods(chart: str) -> None:
    _, objects = rendered(chart, "realistic")
    values = REALISTIC[chart][1]
    for obj, _ in workloads(objects):
        template_meta = obj["spec"]["template"]["metadata"]
        assert values.get("podLabels", {}).items() <= template_meta["labels"].items()
        assert values["podAnnotations"].items() <= template_meta["annotations"].items()
        assert not (values.get("podLabels", {}).keys() & obj["metadata"]["labels"].keys())


def _secret_env(container: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e for e in container.get("env") or [] if any(m in e["name"] for m in SECRET_ENV_MARKERS)
    ]


# Charts whose consumer reads every credential from a file: no Secret reaches them as an
# environment variable (checkov CKV_K8S_35). Exceptions are documented in the chart and README.
FILE_ONLY_CHARTS = ("mcp-server", "mcp-tunnel", "sandbox-runner")


def _secret_volumes(spec: dict[str, Any]) -> list[str]:
    names = [v["secret"]["secretName"] for v in spec.get("volumes") or [] if "secret" in v]
    for volume in spec.get("volumes") or []:
        names += [
            s["secret"]["name"]
            for s in (volume.get("projected") or {}).get("sources") or []
            if "secret" in s
        ]
    return names


@pytest.mark.parametrize(("chart", "which"), CASES)
def test_credentials_are_referenced_by_name_only(chart: str, which: str) -> None:
    """No Secret object and no credential literal: every credential is a Secret reference."""
    _, objects = rendered(chart, which)
    assert not [o for o in objects if o["kind"] == "Secret"]
    found = 0
    for _, spec in workloads(objects):
        found += len(_secret_volumes(spec))
        for container in spec["containers"]:
            for env in _secret_env(container):
                if "valueFrom" not in env:
                    assert env["name"].endswith(("_FILE", "_DIR")), env["name"]
                    assert env["value"].startswith("/"), "only a path, never a credential"
                    continue
                assert chart not in FILE_ONLY_CHARTS, (
                    f"{env['name']} is a Secret in the environment"
                )
                assert set(env["valueFrom"]["secretKeyRef"]) == {"name", "key"}
                found += 1
            assert not [e for e in container.get("envFrom") or [] if "secretRef" in e]
    assert found, "every chart reads at least one credential"


def test_the_restricted_checker_can_fail() -> None:
    """The checkers above would report a privileged, root, host-mounting pod."""
    bad = {
        "hostNetwork": True,
        "securityContext": {"runAsUser": 0, "seccompProfile": {"type": "Unconfined"}},
        "volumes": [{"name": "host", "hostPath": {"path": "/"}}, {"name": "t", "emptyDir": {}}],
        "containers": [
            {
                "name": "c",
                "image": "busybox",
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
            }
        ],
    }
    restricted = " | ".join(restricted_violations(bad))
    for problem in (
        "hostNetwork",
        "hostPath",
        "runAsUser is 0",
        "privileged",
        "allowPrivilegeEscalation",
        "drop does not contain ALL",
        "SYS_ADMIN",
        "hostPort",
        "runAsNonRoot",
        "seccompProfile is Unconfined",
    ):
        assert problem in restricted
    hardening = " | ".join(hardening_violations(bad))
    for problem in (
        "automountServiceAccountToken",
        "readOnlyRootFilesystem",
        "no requests.cpu",
        "no limits.memory",
        "no livenessProbe",
        "no readinessProbe",
        "neither tagged nor pinned",
        "emptyDir without sizeLimit",
        "default ServiceAccount",
    ):
        assert problem in hardening
