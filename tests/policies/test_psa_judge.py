"""The pack's Pod Security verdicts against the official implementation.

`scripts/build-psa-judge.sh` builds a small Go program on `k8s.io/pod-security-admission`
(tests/policies/psa_judge) once into the user's cache; here every pod of a corpus of
variants goes through both, and for each pod the controls that fail must be the same.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from policies.rules import Resource, evaluate

REPO = Path(__file__).resolve().parents[2]

# Official check id -> the pack rule that holds the same control.
CHECK_RULES = {
    "allowPrivilegeEscalation": "no-privilege-escalation",
    "appArmorProfile": "apparmor-profile-allowed",
    "capabilities_restricted": "drop-all-capabilities",
    "capabilities_baseline": "drop-all-capabilities",
    "hostNamespaces": "no-host-namespaces",
    "hostPathVolumes": "restricted-volume-types",
    "restrictedVolumes": "restricted-volume-types",
    "hostPorts": "no-host-ports",
    "hostProbesAndHostLifecycle": "no-host-probes",
    "privileged": "no-privileged-containers",
    "windowsHostProcess": "no-privileged-containers",
    "procMount": "proc-mount-default",
    "procMount_restricted": "proc-mount-default",
    "runAsNonRoot": "run-as-non-root",
    "runAsUser": "run-as-non-root",
    "seLinuxOptions": "selinux-options-restricted",
    "seccompProfile_baseline": "seccomp-runtime-default",
    "seccompProfile_restricted": "seccomp-runtime-default",
    "sysctls": "safe-sysctls",
}
PSA_RULES = sorted(set(CHECK_RULES.values()))


def _container(name: str = "app") -> dict[str, Any]:
    return {
        "name": name,
        "image": "registry.example/app:1",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _base() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "judge"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [_container()],
            "initContainers": [_container("init")],
        },
    }


Change = Callable[[dict[str, Any]], None]


def spec(**fields: Any) -> Change:
    return lambda pod: pod["spec"].update(fields)


def pod_context(**fields: Any) -> Change:
    return lambda pod: pod["spec"]["securityContext"].update(fields)


def context(container: int = 0, init: bool = False, **fields: Any) -> Change:
    key = "initContainers" if init else "containers"
    return lambda pod: pod["spec"][key][container]["securityContext"].update(fields)


def field(**fields: Any) -> Change:
    return lambda pod: pod["spec"]["containers"][0].update(fields)


def both(*changes: Change) -> Change:
    def apply(pod: dict[str, Any]) -> None:
        for change in changes:
            change(pod)

    return apply


def drop(*path: str) -> Change:
    def apply(pod: dict[str, Any]) -> None:
        target = pod
        for key in path[:-1]:
            target = target[key]
        target.pop(path[-1])

    return apply


def volume(**source: Any) -> Change:
    return lambda pod: pod["spec"].setdefault("volumes", []).append({"name": "v", **source})


def annotate(**annotations: str) -> Change:
    return lambda pod: pod["metadata"].setdefault("annotations", {}).update(annotations)


APPARMOR = "container.apparmor.security.beta.kubernetes.io/app"
CORPUS: dict[str, Change] = {
    "hardened": lambda pod: None,
    "hostNetwork": spec(hostNetwork=True),
    "hostPID": spec(hostPID=True),
    "hostIPC": spec(hostIPC=True),
    "hostNetwork false": spec(hostNetwork=False),
    "privileged": context(privileged=True),
    "privileged init": context(init=True, privileged=True),
    "privileged false": context(privileged=False),
    "host process on pod": pod_context(windowsOptions={"hostProcess": True}),
    "host process on container": context(windowsOptions={"hostProcess": True}),
    "cap add SYS_ADMIN": context(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
    "cap add NET_BIND_SERVICE": context(
        capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    ),
    "cap drop NET_RAW only": context(capabilities={"drop": ["NET_RAW"]}),
    "cap drop lowercase all": context(capabilities={"drop": ["all"]}),
    "no capabilities on init": drop("spec", "initContainers", 0, "securityContext", "capabilities"),
    "hostPath volume": volume(hostPath={"path": "/etc"}),
    "nfs volume": volume(nfs={"server": "s", "path": "/"}),
    "iscsi volume": volume(iscsi={"targetPortal": "t", "iqn": "i", "lun": 0}),
    "emptyDir volume": volume(emptyDir={}),
    "projected volume": volume(projected={"sources": []}),
    "csi volume": volume(csi={"driver": "d"}),
    "ephemeral volume": volume(ephemeral={"volumeClaimTemplate": {"spec": {}}}),
    "hostPort": field(ports=[{"containerPort": 80, "hostPort": 8080}]),
    "hostPort 0": field(ports=[{"containerPort": 80, "hostPort": 0}]),
    "apparmor annotation unconfined": annotate(**{APPARMOR: "unconfined"}),
    "apparmor annotation runtime/default": annotate(**{APPARMOR: "runtime/default"}),
    "apparmor annotation localhost": annotate(**{APPARMOR: "localhost/profile"}),
    "apparmor field Unconfined": context(appArmorProfile={"type": "Unconfined"}),
    "apparmor pod field Unconfined": pod_context(appArmorProfile={"type": "Unconfined"}),
    "apparmor field RuntimeDefault": context(appArmorProfile={"type": "RuntimeDefault"}),
    "selinux type spc_t": context(seLinuxOptions={"type": "spc_t"}),
    "selinux type container_engine_t": context(seLinuxOptions={"type": "container_engine_t"}),
    "selinux user": pod_context(seLinuxOptions={"user": "system_u"}),
    "selinux role": context(seLinuxOptions={"role": "sysadm_r"}),
    "selinux level only": context(seLinuxOptions={"level": "s0:c1"}),
    "procMount Unmasked": context(procMount="Unmasked"),
    "procMount Default": context(procMount="Default"),
    "procMount Unmasked in a user namespace": both(
        spec(hostUsers=False), context(procMount="Unmasked")
    ),
    "seccomp unset": drop("spec", "securityContext", "seccompProfile"),
    "seccomp per container only": both(
        drop("spec", "securityContext", "seccompProfile"),
        context(seccompProfile={"type": "RuntimeDefault"}),
        context(init=True, seccompProfile={"type": "Localhost", "localhostProfile": "p"}),
    ),
    "seccomp container Unconfined": context(seccompProfile={"type": "Unconfined"}),
    "seccomp pod Unconfined containers set": both(
        pod_context(seccompProfile={"type": "Unconfined"}),
        context(seccompProfile={"type": "RuntimeDefault"}),
        context(init=True, seccompProfile={"type": "RuntimeDefault"}),
    ),
    "sysctl unsafe": pod_context(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    "sysctl safe": pod_context(sysctls=[{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]),
    "allowPrivilegeEscalation unset": drop(
        "spec", "containers", 0, "securityContext", "allowPrivilegeEscalation"
    ),
    "allowPrivilegeEscalation true": context(allowPrivilegeEscalation=True),
    "runAsNonRoot unset": drop("spec", "securityContext", "runAsNonRoot"),
    "runAsNonRoot per container": both(
        drop("spec", "securityContext", "runAsNonRoot"),
        context(runAsNonRoot=True),
        context(init=True, runAsNonRoot=True),
    ),
    "runAsNonRoot false on container": context(runAsNonRoot=False),
    "runAsNonRoot false on pod": pod_context(runAsNonRoot=False),
    "runAsUser 0 on pod": pod_context(runAsUser=0),
    "runAsUser 0 on container": context(runAsUser=0),
    "runAsUser 1000": pod_context(runAsUser=1000),
    "root in a user namespace": both(
        spec(hostUsers=False), pod_context(runAsUser=0, runAsNonRoot=False)
    ),
    "probe host": field(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}),
    "lifecycle tcp host": field(lifecycle={"preStop": {"tcpSocket": {"host": "x", "port": 1}}}),
    "probe without host": field(readinessProbe={"tcpSocket": {"port": 80}}),
    "windows pod without linux fields": both(
        spec(os={"name": "windows"}),
        drop("spec", "securityContext", "seccompProfile"),
        drop("spec", "containers", 0, "securityContext", "capabilities"),
        drop("spec", "containers", 0, "securityContext", "allowPrivilegeEscalation"),
    ),
    "ephemeral container unhardened": spec(
        ephemeralContainers=[{"name": "debug", "image": "busybox"}]
    ),
    "ephemeral container privileged": spec(
        ephemeralContainers=[
            {
                **_container("debug"),
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                    "privileged": True,
                },
            }
        ]
    ),
}


def corpus() -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for name, change in CORPUS.items():
        pod = copy.deepcopy(_base())
        change(pod)
        pod["metadata"]["name"] = name.replace(" ", "-").lower()
        pods.append((name, pod))
    return pods


@cache
def official_verdicts() -> dict[str, set[str]]:
    """Pod name -> the pack rules the official checks that failed correspond to."""
    build = subprocess.run(
        ["bash", str(REPO / "scripts" / "build-psa-judge.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, f"cannot build the Pod Security judge (needs Go):\n{build.stderr}"
    judge = build.stdout.strip().splitlines()[-1]
    payload = json.dumps([{"name": name, "pod": pod} for name, pod in corpus()])
    run = subprocess.run([judge], input=payload, capture_output=True, text=True, check=True)
    found: dict[str, set[str]] = {}
    for verdict in json.loads(run.stdout):
        checks = {f["check"] for f in verdict["forbidden"]}
        unknown = checks - set(CHECK_RULES)
        assert not unknown, f"the official profile has checks the pack does not map: {unknown}"
        found[verdict["name"]] = {CHECK_RULES[c] for c in checks}
    return found


def pack_verdict(pod: dict[str, Any]) -> set[str]:
    return {v.rule_id for v in evaluate([Resource.from_manifest(pod)], only=PSA_RULES)}


@pytest.mark.parametrize(("name", "pod"), corpus(), ids=[n for n, _ in corpus()])
def test_pack_agrees_with_pod_security_admission(name: str, pod: dict[str, Any]) -> None:
    assert pack_verdict(pod) == official_verdicts()[name]


def test_corpus_has_both_verdicts() -> None:
    verdicts = official_verdicts()
    assert sum(not v for v in verdicts.values()) >= 10
    assert sum(bool(v) for v in verdicts.values()) >= 30
