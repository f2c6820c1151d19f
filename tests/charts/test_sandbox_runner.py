"""sandbox-runner: outbound-only workers, autoscaled, holding only the environment key."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from infra.pure import naming

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


def container(objects: list[Manifest], name: str) -> dict[str, Any]:
    containers = {c["name"]: c for c in pod_spec(objects)["containers"]}
    assert set(containers) == {"worker", "tools"}
    return containers[name]


def worker(objects: list[Manifest]) -> dict[str, Any]:
    return container(objects, "worker")


def tools(objects: list[Manifest]) -> dict[str, Any]:
    return container(objects, "tools")


def env_map(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def flags(container: dict[str, Any]) -> dict[str, list[str]]:
    """The worker's args as flag -> values (a flag may repeat)."""
    args = container["args"]
    out: dict[str, list[str]] = {}
    for name, value in zip(args[::2], args[1::2], strict=True):
        assert name.startswith("--"), args
        out.setdefault(name, []).append(value)
    return out


def test_worker_runs_the_bundles_worker_with_every_limit_as_a_flag() -> None:
    c = worker(realistic())
    assert c["command"] == ["python", "-m", "sandbox"]
    assert flags(c) == {
        "--environment-id": [SANDBOX.environment_id],
        "--environment-key-file": ["/var/run/secrets/agent-perimeter/environment-key/key"],
        "--tool-socket": ["/run/agent-perimeter/tools/tools.sock"],
        "--run-timeout-seconds": ["1800"],
        "--max-tool-calls": ["200"],
        "--max-idle": ["60s"],
        "--log-format": ["json"],
        "--health-port": ["8080"],
        "--readiness-window-seconds": ["60"],
        "--scratch-dir": ["/tmp"],
        "--tool-env": ["MCP_SERVERS"],
    }
    custom = worker(
        render(
            "sandbox-runner",
            {
                "worker": {
                    "command": ["/venv/bin/python", "-m", "sandbox"],
                    "maxIdle": "5m",
                    "logFormat": "text",
                    "runTimeoutSeconds": 600,
                    "maxToolCalls": 12,
                },
                "terminationGracePeriodSeconds": 630,
            },
        )
    )
    assert custom["command"] == ["/venv/bin/python", "-m", "sandbox"]
    assert {
        k: v
        for k, v in flags(custom).items()
        if k in {"--max-idle", "--log-format", "--run-timeout-seconds", "--max-tool-calls"}
    } == {
        "--max-idle": ["5m"],
        "--log-format": ["text"],
        "--run-timeout-seconds": ["600"],
        "--max-tool-calls": ["12"],
    }


def test_the_sandbox_env_vars_are_gone() -> None:
    env = env_map(worker(realistic()))
    assert not [name for name in env if name.startswith("SANDBOX_")]
    assert set(env) == {"MCP_SERVERS", "HOME", "TMPDIR"}
    assert json.loads(env["MCP_SERVERS"]) == [
        {"name": "tickets", "url": service_url(TICKETS) + TICKETS.path}
    ]


def key_volume(objects: list[Manifest]) -> dict[str, Any]:
    (volume,) = [v for v in pod_spec(objects)["volumes"] if "secret" in v]
    return volume


def test_the_key_is_a_read_only_file_never_an_env_var() -> None:
    objects = realistic()
    c = worker(objects)
    assert not [e for e in c["env"] if "valueFrom" in e or "KEY" in e["name"]]
    volume = key_volume(objects)
    assert volume["secret"] == {
        "secretName": naming.environment_key_secret_name(SANDBOX.name),
        "items": [{"key": "key", "path": "key"}],
        "defaultMode": 0o440,
    }
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == volume["name"]]
    assert mount == {
        "name": volume["name"],
        "mountPath": "/var/run/secrets/agent-perimeter/environment-key",
        "readOnly": True,
    }
    assert flags(c)["--environment-key-file"] == [mount["mountPath"] + "/key"]


def test_default_key_secret_name_derives_from_the_release() -> None:
    objects = render("sandbox-runner", {}, RELEASE)
    assert key_volume(objects)["secret"]["secretName"] == "sandbox-runner-environment-key"
    assert json.loads(env_map(worker(objects))["MCP_SERVERS"]) == []


def test_workspace_is_a_bounded_scratch_volume_at_workdir() -> None:
    objects = realistic()
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in worker(objects)["volumeMounts"]}
    assert volumes[mounts["/workspace"]] == {"name": "workspace", "emptyDir": {"sizeLimit": "1Gi"}}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert worker(objects)["securityContext"]["readOnlyRootFilesystem"] is True
    moved = render("sandbox-runner", {"worker": {"workdir": "/home/agent/work"}})
    assert "/home/agent/work" in {m["mountPath"] for m in worker(moved)["volumeMounts"]}
    assert "/home/agent/work" in {m["mountPath"] for m in tools(moved)["volumeMounts"]}
    assert flags(tools(moved))["--workspace"] == ["/home/agent/work"]


def test_tools_run_in_their_own_container_as_another_user_with_no_key() -> None:
    objects = realistic()
    spec = pod_spec(objects)
    t = tools(objects)
    assert t["command"] == ["python", "-m", "sandbox.toolhost"]
    assert t["image"] == worker(objects)["image"]
    socket = "/run/agent-perimeter/tools/tools.sock"
    assert flags(t) == {
        "--socket": [socket],
        "--workspace": ["/workspace"],
        "--scratch-dir": ["/tmp"],
    }
    assert flags(worker(objects))["--tool-socket"] == [socket]
    # Another user than the one the key file is readable by, and no way into the worker.
    assert t["securityContext"]["runAsUser"] == 65533 != spec["securityContext"]["runAsUser"]
    assert not spec.get("shareProcessNamespace")
    assert spec["automountServiceAccountToken"] is False
    key = key_volume(objects)["name"]
    assert key not in {m["name"] for m in t["volumeMounts"]}
    assert not [e for e in t.get("env", []) if "valueFrom" in e]
    # The worker and the tools share the workspace and the socket, not their /tmp.
    mounts = {
        c["name"]: {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        for c in spec["containers"]
    }
    assert mounts["tools"]["/workspace"] == mounts["worker"]["/workspace"]
    assert (
        mounts["tools"]["/run/agent-perimeter/tools"]
        == mounts["worker"]["/run/agent-perimeter/tools"]
    )
    assert mounts["tools"]["/tmp"] != mounts["worker"]["/tmp"]
    assert t["securityContext"]["readOnlyRootFilesystem"] is True
    # The pool's declared resources go where the agent's work runs.
    assert t["resources"] == SANDBOX.resources.chart_values()
    assert worker(objects)["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}


def test_tools_as_the_workers_own_user_are_refused() -> None:
    with pytest.raises(HelmFailed) as failed:
        render("sandbox-runner", {"tools": {"runAsUser": 65532}})
    assert (
        "tools.runAsUser (65532) must differ from podSecurityContext.runAsUser"
        in failed.value.stderr
    )


def test_grace_period_covers_a_whole_run_plus_the_drain() -> None:
    assert pod_spec(realistic())["terminationGracePeriodSeconds"] == 1830
    assert pod_spec(render("sandbox-runner"))["terminationGracePeriodSeconds"] == 1830
    longer = {"worker": {"runTimeoutSeconds": 3600, "drainSeconds": 60}}
    with pytest.raises(HelmFailed) as failed:
        render("sandbox-runner", longer)
    assert "terminationGracePeriodSeconds (1830) must be at least" in failed.value.stderr
    assert "(3660)" in failed.value.stderr
    spec = pod_spec(render("sandbox-runner", {**longer, "terminationGracePeriodSeconds": 3660}))
    assert spec["terminationGracePeriodSeconds"] == 3660


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


def test_autoscaler_scales_down_one_runner_at_a_time() -> None:
    """It cannot tell busy runners from idle ones; slow scale-down plus the drain keeps runs whole."""
    behavior = only(realistic(), "HorizontalPodAutoscaler")["spec"]["behavior"]
    assert behavior == {
        "scaleDown": {
            "stabilizationWindowSeconds": 600,
            "selectPolicy": "Min",
            "policies": [{"type": "Pods", "value": 1, "periodSeconds": 600}],
        }
    }
    custom = {
        "autoscaling": {
            "scaleDown": {"stabilizationWindowSeconds": 0, "podsPerPeriod": 2, "periodSeconds": 60}
        }
    }
    behavior = only(render("sandbox-runner", custom), "HorizontalPodAutoscaler")["spec"]["behavior"]
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 2, "periodSeconds": 60}]


def test_min_replicas_above_max_is_refused() -> None:
    with pytest.raises(HelmFailed) as failed:
        render("sandbox-runner", {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}})
    assert "autoscaling.minReplicas (5) must not exceed autoscaling.maxReplicas (2)" in (
        failed.value.stderr
    )


def test_runtime_class_only_when_asked() -> None:
    assert pod_spec(realistic())["runtimeClassName"] == "gvisor"
    assert "runtimeClassName" not in pod_spec(render("sandbox-runner"))


def test_probes_ask_the_worker_over_http() -> None:
    c = worker(realistic())
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": 8080}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert flags(c)["--health-port"] == ["8080"]
    moved = worker(
        render("sandbox-runner", {"health": {"port": 9090, "readinessWindowSeconds": 30}})
    )
    assert moved["livenessProbe"]["httpGet"]["port"] == 9090
    assert flags(moved)["--health-port"] == ["9090"]
    assert flags(moved)["--readiness-window-seconds"] == ["30"]


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
