"""Small, independent checkers for rendered pods: Pod Security `restricted`, plus our hardening.

Written from the Pod Security Standards text (baseline + restricted) rather
than by reading the charts, so a chart regression shows up as a named violation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Manifest = dict[str, Any]

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
# What the charts themselves may use: no storage that outlives the pod.
CHART_VOLUME_TYPES = {"configMap", "secret", "emptyDir", "projected"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
SELINUX_TYPES = {
    None,
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
}
MIN_HIGH_UID = 10000


def pod_spec(manifest: Manifest) -> Manifest | None:
    """The pod spec of a Pod or a workload, else None."""
    if manifest.get("kind") == "Pod":
        return manifest.get("spec") or {}
    if manifest.get("kind") in WORKLOAD_KINDS:
        return manifest["spec"]["template"]["spec"]
    if manifest.get("kind") == "CronJob":
        return manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def all_containers(spec: Manifest) -> Iterator[tuple[str, Manifest]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            yield f"{field}[{container.get('name')}]", container


def restricted_violations(spec: Manifest) -> list[str]:
    """Everything that keeps this pod spec from the Pod Security `restricted` level."""
    problems: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{field} is true")
    for volume in spec.get("volumes") or []:
        for kind in set(volume) - {"name"}:
            if kind not in RESTRICTED_VOLUME_TYPES:
                problems.append(f"volume {volume.get('name')}: type {kind} is not allowed")
    for sysctl in pod_sc.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"sysctl {sysctl.get('name')} is not a safe sysctl")
    if pod_sc.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0")
    problems += _selinux("pod", pod_sc)
    if (pod_sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
        problems.append("pod appArmorProfile is Unconfined")
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("pod windowsOptions.hostProcess is true")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"pod seccompProfile is {pod_seccomp}")

    for where, container in all_containers(spec):
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{where}: capabilities.drop does not contain ALL")
        added = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{where}: adds capabilities {sorted(added)}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{where}: hostPort {port['hostPort']}")
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True:
            problems.append(f"{where}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            problems.append(f"{where}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile is {seccomp}, not RuntimeDefault/Localhost")
        if sc.get("procMount") not in (None, "Default"):
            problems.append(f"{where}: procMount is {sc['procMount']}")
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            problems.append(f"{where}: appArmorProfile is Unconfined")
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"{where}: windowsOptions.hostProcess is true")
        problems += _selinux(where, sc)
    return problems


def _selinux(where: str, sc: Manifest) -> list[str]:
    options = sc.get("seLinuxOptions") or {}
    problems = []
    if options.get("type") not in SELINUX_TYPES:
        problems.append(f"{where}: seLinuxOptions.type {options['type']} is not allowed")
    for field in ("user", "role"):
        if options.get(field):
            problems.append(f"{where}: seLinuxOptions.{field} is set")
    return problems


def hardening_violations(spec: Manifest) -> list[str]:
    """Our rules beyond `restricted`: no API token, read-only root, bounded resources, probes."""
    problems: list[str] = []
    pod_sc = spec.get("securityContext") or {}
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken is not false")
    if spec.get("enableServiceLinks") is not False:
        problems.append("enableServiceLinks is not false")
    if not spec.get("serviceAccountName") or spec.get("serviceAccountName") == "default":
        problems.append("runs as the namespace's default ServiceAccount")
    if (pod_sc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("pod seccompProfile is not RuntimeDefault")
    for field in ("runAsUser", "runAsGroup"):
        if int(pod_sc.get(field) or 0) < MIN_HIGH_UID:
            problems.append(f"pod {field} is below {MIN_HIGH_UID}")
    if spec.get("shareProcessNamespace"):
        problems.append("shareProcessNamespace is true")
    for volume in spec.get("volumes") or []:
        for kind in set(volume) - {"name"}:
            if kind not in CHART_VOLUME_TYPES:
                problems.append(f"volume {volume.get('name')}: type {kind} is not one of ours")
        if "emptyDir" in volume and not (volume["emptyDir"] or {}).get("sizeLimit"):
            problems.append(f"volume {volume.get('name')}: emptyDir without sizeLimit")
    for where, container in all_containers(spec):
        sc = container.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        if sc.get("runAsNonRoot") is not True:
            problems.append(f"{where}: runAsNonRoot is not set on the container")
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not (resources.get(section) or {}).get(resource):
                    problems.append(f"{where}: no {section}.{resource}")
        for probe in ("livenessProbe", "readinessProbe"):
            if not container.get(probe):
                problems.append(f"{where}: no {probe}")
        image = str(container.get("image", ""))
        last = image.rsplit("/", 1)[-1]
        if image.endswith(":latest") or (":" not in last and "@" not in image):
            problems.append(f"{where}: image {image!r} is neither tagged nor pinned")
        if not container.get("imagePullPolicy"):
            problems.append(f"{where}: no imagePullPolicy")
    return problems
