"""sandbox-runner: outbound-only workers, autoscaled, holding only the environment key."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from infra import naming

from .helm_render import HelmFailed, Manifest, only, render
from .values_sets import NAMESPACE, SANDBOX, TICKETS, sandbox_runner_values, service_url

pytestmark = pytest.mark.helm

RELEASE = naming.SANDBOX_RELEASE


@cache
def _realistic() -> tuple[Manifest, ...]:
    return tuple(render("sandbox-runner", sandbox_runner_values(), RELEASE, NAMESPACE))


def realistic() -> list[Manifest]:
    return list(_realistic())


def pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    return only(objects, "Deployment")["spec"]["template"]["spec"]


def worker(objects: list[Manifest]) -> dict[str, Any]:
    (container,) = pod_spec(objects)["containers"]
    assert container["name"] == "worker"
    return container


def env_map(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_worker_long_polls_with_the_configured_flags() -> None:
    assert worker(realistic())["command"] == [
        "ant",
        "beta:worker",
        "poll",
        "--max-idle",
        "60s",
        "--log-format",
        "json",
    ]
    assert worker(render("sandbox-runner", {"worker": {"maxIdle": "5m", "logFormat": "text"}}))[
        "command"
    ][-4:] == ["--max-idle", "5m", "--log-format", "text"]


def test_environment_identifies_the_pool_and_reads_only_its_key() -> None:
    env = env_map(worker(realistic()))
    assert env["ANTHROPIC_ENVIRONMENT_ID"] == SANDBOX.environment_id
    assert env["ANTHROPIC_ENVIRONMENT_KEY"] == {
        "secretKeyRef": {"name": "sandbox-runner-environment-key", "key": "key"}
    }
    assert env["SANDBOX_RUN_TIMEOUT_SECONDS"] == "1800"
    assert env["SANDBOX_MAX_TOOL_CALLS"] == "200"
    assert env["SANDBOX_WORKDIR"] == "/workspace"
    assert json.loads(env["MCP_SERVERS"]) == [
        {"name": "tickets", "url": service_url(TICKETS) + TICKETS.path}
    ]
    secrets = [v for v in env.values() if isinstance(v, dict)]
    assert secrets == [env["ANTHROPIC_ENVIRONMENT_KEY"]]


def test_default_key_secret_name_derives_from_the_release() -> None:
    env = env_map(worker(render("sandbox-runner", {}, RELEASE)))
    assert env["ANTHROPIC_ENVIRONMENT_KEY"]["secretKeyRef"]["name"] == (
        "sandbox-runner-environment-key"
    )
    assert json.loads(env["MCP_SERVERS"]) == []


def test_workspace_is_a_bounded_scratch_volume_at_workdir() -> None:
    objects = realistic()
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in worker(objects)["volumeMounts"]}
    assert volumes[mounts["/workspace"]] == {"name": "workspace", "emptyDir": {"sizeLimit": "1Gi"}}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert worker(objects)["securityContext"]["readOnlyRootFilesystem"] is True
    moved = render("sandbox-runner", {"worker": {"workdir": "/home/agent/work"}})
    assert "/home/agent/work" in {m["mountPath"] for m in worker(moved)["volumeMounts"]}
    assert env_map(worker(moved))["SANDBOX_WORKDIR"] == "/home/agent/work"


def test_autoscaler_owns_the_replica_count() -> None:
    """The HPA scales the Deployment; the Deployment sets no replicas a deploy would reset."""
    objects = realistic()
    hpa = only(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": only(objects, "Deployment")["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"] == {
        "name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 70},
    }
    assert "replicas" not in only(objects, "Deployment")["spec"]


def test_min_replicas_above_max_is_refused() -> None:
    with pytest.raises(HelmFailed) as failed:
        render("sandbox-runner", {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}})
    assert "autoscaling.minReplicas (5) must not exceed autoscaling.maxReplicas (2)" in (
        failed.value.stderr
    )


def test_runtime_class_only_when_asked() -> None:
    assert pod_spec(realistic())["runtimeClassName"] == "gvisor"
    assert "runtimeClassName" not in pod_spec(render("sandbox-runner"))


def test_probes_exec_the_configured_command() -> None:
    c = worker(realistic())
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["exec"]["command"] == ["/bin/sh", "-c", "kill -0 1"]
    custom = worker(render("sandbox-runner", {"probes": {"command": ["/usr/bin/true"]}}))
    assert custom["livenessProbe"]["exec"]["command"] == ["/usr/bin/true"]


def test_serves_nothing() -> None:
    objects = realistic()
    assert "ports" not in worker(objects)
    assert not [o for o in objects if o["kind"] in {"Service", "Ingress"}]


def test_scheduling_pass_through() -> None:
    values = {
        "nodeSelector": {"agent-perimeter.io/pool": "sandbox"},
        "tolerations": [{"key": "sandbox", "operator": "Exists", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": naming.sandbox_selector()},
            }
        ],
        "imagePullSecrets": [{"name": "ghcr-pull"}],
    }
    spec = pod_spec(render("sandbox-runner", values, RELEASE))
    for key, value in values.items():
        assert spec[key] == value
    assert not {"nodeSelector", "tolerations", "affinity", "imagePullSecrets"} & set(
        pod_spec(render("sandbox-runner"))
    )
