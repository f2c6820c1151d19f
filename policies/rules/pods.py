"""Hardened pods: Pod Security `restricted` (every control of the official profile), plus
a read-only root filesystem, resources, probes and pinned images.

Each control follows `k8s.io/pod-security-admission` (latest policy version), including
its exceptions: Windows pods skip the Linux-only controls, and pods in a user namespace
(`hostUsers: false`) may run as UID 0. tests/policies/test_psa_judge.py compares these
verdicts with the official implementation on a corpus of pods.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from .inventory import Inventory
from .k8s import PodView, containers, is_batch, pod_views, security_context, where
from .model import (
    ADVISORY,
    MANDATORY,
    Resource,
    Settings,
    Target,
    as_list,
    as_map,
    resource_rule,
    stack_rule,
)

ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
# Pod Security's "safe" sysctls (policy version 1.32 and later).
SAFE_SYSCTLS = frozenset(
    {
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
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _pods(resource: Resource) -> Iterator[tuple[str, PodView]]:
    for pod in pod_views(resource):
        yield where(resource, pod), pod


def _windows(spec: Mapping[str, Any]) -> bool:
    return as_map(spec.get("os")).get("name") == "windows"


def _user_namespace(spec: Mapping[str, Any]) -> bool:
    return spec.get("hostUsers") is False


def _pod_context(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(spec.get("securityContext"))


@resource_rule(
    "run-as-non-root",
    "Containers run as a non-root user (runAsNonRoot: true, runAsUser not 0).",
    "Set securityContext.runAsNonRoot: true and a non-zero runAsUser at pod level (or on every "
    "container), and build the image with a numeric non-root USER.",
)
def run_as_non_root(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        if _user_namespace(pod.spec):
            continue  # UID 0 inside a user namespace is not root on the node
        context = _pod_context(pod.spec)
        pod_non_root = context.get("runAsNonRoot")
        if pod_non_root is False:
            yield f"{at}pod sets runAsNonRoot: false"
        if context.get("runAsUser") is not None and int(context["runAsUser"]) == 0:
            yield f"{at}pod sets runAsUser: 0 (root)"
        for label, container in containers(pod.spec):
            own = security_context(container)
            non_root = own.get("runAsNonRoot")
            if non_root is False or (non_root is None and pod_non_root is not True):
                yield f"{at}{label}: runAsNonRoot is not true"
            if own.get("runAsUser") is not None and int(own["runAsUser"]) == 0:
                yield f"{at}{label}: runAsUser is 0 (root)"


@resource_rule(
    "no-privilege-escalation",
    "Every container sets allowPrivilegeEscalation: false.",
    "Set securityContext.allowPrivilegeEscalation: false on every container, init container "
    "included.",
)
def no_privilege_escalation(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        if _windows(pod.spec):
            continue
        for label, container in containers(pod.spec):
            if security_context(container).get("allowPrivilegeEscalation") is not False:
                yield f"{at}{label}: allowPrivilegeEscalation is not false"


@resource_rule(
    "no-privileged-containers",
    "No container runs privileged, and no Windows pod runs as a HostProcess.",
    "Remove securityContext.privileged and windowsOptions.hostProcess; either is root on the node.",
)
def no_privileged_containers(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        if as_map(_pod_context(pod.spec).get("windowsOptions")).get("hostProcess") is True:
            yield f"{at}pod runs as a Windows HostProcess"
        for label, container in containers(pod.spec):
            own = security_context(container)
            if own.get("privileged") is True:
                yield f"{at}{label} runs privileged"
            if as_map(own.get("windowsOptions")).get("hostProcess") is True:
                yield f"{at}{label} runs as a Windows HostProcess"


@resource_rule(
    "drop-all-capabilities",
    "Every container drops ALL capabilities and adds back at most NET_BIND_SERVICE.",
    "Set securityContext.capabilities: {drop: [ALL]} and remove any `add` other than "
    "NET_BIND_SERVICE.",
)
def drop_all_capabilities(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        if _windows(pod.spec):
            continue
        for label, container in containers(pod.spec):
            capabilities = as_map(security_context(container).get("capabilities"))
            if "ALL" not in {str(c) for c in as_list(capabilities.get("drop"))}:
                yield f"{at}{label} does not drop ALL capabilities"
            added = sorted(
                {str(c) for c in as_list(capabilities.get("add"))} - ALLOWED_ADDED_CAPABILITIES
            )
            if added:
                yield f"{at}{label} adds capabilities {', '.join(added)}"


@resource_rule(
    "seccomp-runtime-default",
    "Pods run with the RuntimeDefault (or a Localhost) seccomp profile.",
    "Set spec.securityContext.seccompProfile.type: RuntimeDefault in the pod template.",
)
def seccomp_runtime_default(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        if _windows(pod.spec):
            continue
        profile = as_map(_pod_context(pod.spec).get("seccompProfile")).get("type")
        if profile is not None and profile not in SECCOMP_TYPES:
            yield f"{at}pod seccomp profile is {profile}"
        for label, container in containers(pod.spec):
            own = as_map(security_context(container).get("seccompProfile")).get("type")
            if own is not None and own not in SECCOMP_TYPES:
                yield f"{at}{label}: seccomp profile is {own}"
            elif own is None and profile not in SECCOMP_TYPES:
                yield f"{at}{label}: seccomp profile is not set"


@resource_rule(
    "apparmor-profile-allowed",
    "No pod or container overrides the runtime's default AppArmor profile with Unconfined.",
    "Remove the AppArmor override, or set appArmorProfile.type: RuntimeDefault (or Localhost).",
)
def apparmor_profile_allowed(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        for key, value in pod.annotations.items():
            if str(key).startswith(APPARMOR_ANNOTATION):
                text = str(value or "")
                if text and text != "runtime/default" and not text.startswith("localhost/"):
                    yield f"{at}annotation {key} is {text}"
        kind = as_map(_pod_context(pod.spec).get("appArmorProfile")).get("type")
        if kind is not None and kind not in APPARMOR_TYPES:
            yield f"{at}pod AppArmor profile is {kind}"
        for label, container in containers(pod.spec):
            kind = as_map(security_context(container).get("appArmorProfile")).get("type")
            if kind is not None and kind not in APPARMOR_TYPES:
                yield f"{at}{label}: AppArmor profile is {kind}"


def _selinux_problems(options: Mapping[str, Any]) -> Iterator[str]:
    if str(options.get("type") or "") not in SELINUX_TYPES:
        yield f"type {options.get('type')}"
    for field in ("user", "role"):
        if options.get(field):
            yield f"{field} {options.get(field)}"


@resource_rule(
    "selinux-options-restricted",
    "SELinux options only pick a container type (container_t and kin), never a user or role.",
    "Remove seLinuxOptions.user and .role, and leave .type unset or one of container_t, "
    "container_init_t, container_kvm_t, container_engine_t.",
)
def selinux_options_restricted(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        for problem in _selinux_problems(as_map(_pod_context(pod.spec).get("seLinuxOptions"))):
            yield f"{at}pod SELinux {problem} is not allowed"
        for label, container in containers(pod.spec):
            options = as_map(security_context(container).get("seLinuxOptions"))
            for problem in _selinux_problems(options):
                yield f"{at}{label}: SELinux {problem} is not allowed"


@resource_rule(
    "proc-mount-default",
    "Containers keep the default (masked) /proc mount.",
    "Remove securityContext.procMount (or set it to Default).",
)
def proc_mount_default(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        for label, container in containers(pod.spec):
            mount = security_context(container).get("procMount")
            if mount is not None and mount != "Default":
                yield f"{at}{label}: procMount is {mount}"


@resource_rule(
    "safe-sysctls",
    "Pods set only the sysctls Pod Security counts as safe (namespaced, isolated).",
    "Remove the sysctl from spec.securityContext.sysctls, or set it on the node instead.",
)
def safe_sysctls(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        for sysctl in as_list(_pod_context(pod.spec).get("sysctls")):
            name = str(as_map(sysctl).get("name"))
            if name not in SAFE_SYSCTLS:
                yield f"{at}sysctl {name} is not a safe sysctl"


@resource_rule(
    "no-host-probes",
    "Probes and lifecycle hooks never name a host: they check the pod itself.",
    "Remove `host` from httpGet/tcpSocket probes and lifecycle handlers.",
)
def no_host_probes(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        for label, container in containers(pod.spec):
            handlers = [(p, as_map(container.get(p))) for p in _PROBES]
            lifecycle = as_map(container.get("lifecycle"))
            handlers += [
                (f"lifecycle.{h}", as_map(lifecycle.get(h))) for h in ("postStart", "preStop")
            ]
            for name, handler in handlers:
                for action in ("httpGet", "tcpSocket"):
                    host = as_map(handler.get(action)).get("host")
                    if host:
                        yield f"{at}{label}: {name}.{action}.host is {host}"


@resource_rule(
    "read-only-root-filesystem",
    "Every container has a read-only root filesystem.",
    "Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the process "
    "must write (/tmp, a workspace).",
)
def read_only_root_filesystem(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        for label, container in containers(pod.spec):
            if security_context(container).get("readOnlyRootFilesystem") is not True:
                yield f"{at}{label}: readOnlyRootFilesystem is not true"


@resource_rule(
    "restricted-volume-types",
    "Pods use only the volume types Pod Security `restricted` allows (no hostPath).",
    "Replace the volume with an emptyDir, configMap, secret, projected or persistentVolumeClaim "
    "volume.",
)
def restricted_volume_types(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        for volume in as_list(pod.spec.get("volumes")):
            volume = as_map(volume)
            for key, value in volume.items():
                if key != "name" and key not in ALLOWED_VOLUME_TYPES and value is not None:
                    yield f'{at}volume "{volume.get("name")}" is of type {key}'


@resource_rule(
    "resource-requests-limits",
    "Every container requests and limits CPU and memory.",
    "Set resources.requests and resources.limits (cpu and memory) on every container and init "
    "container.",
)
def resource_requests_limits(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        for label, container in containers(pod.spec, ("initContainers", "containers")):
            resources = as_map(container.get("resources"))
            limits = as_map(resources.get("limits"))
            # Kubernetes defaults an unset request to the limit.
            requests = {**limits, **as_map(resources.get("requests"))}
            missing = [
                f"{section}.{name}"
                for section, values in (("requests", requests), ("limits", limits))
                for name in ("cpu", "memory")
                if values.get(name) in (None, "")
            ]
            if missing:
                yield f"{at}{label} sets no {', '.join(missing)}"


@resource_rule(
    "liveness-readiness-probes",
    "Long-running containers have liveness and readiness probes.",
    "Add livenessProbe and readinessProbe (an exec, httpGet or tcpSocket check) to each container.",
)
def liveness_readiness_probes(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        if is_batch(resource, pod):
            continue
        for label, container in containers(pod.spec, ("containers",)):
            missing = [p for p in ("livenessProbe", "readinessProbe") if container.get(p) is None]
            if missing:
                yield f"{at}{label} has no {' or '.join(missing)}"


@resource_rule(
    "image-pinned-by-digest",
    "Container images are pinned by digest (@sha256:...).",
    "Append @sha256:<digest> to the image reference (in the stack config) so a moved tag cannot "
    "change what runs.",
    levels={"*": ADVISORY, "prod": MANDATORY},
)
def image_pinned_by_digest(resource: Resource, settings: Settings) -> Iterator[str]:
    for at, pod in _pods(resource):
        for label, container in containers(pod.spec):
            image = str(container.get("image") or "")
            if not _DIGEST.search(image):
                yield f"{at}{label}: image {image or '(none)'} is not pinned by digest"


_NODE_VOLUME_TYPES = ("hostPath", "local")


def _claims(workload: Resource) -> Iterator[tuple[str, str | None, str | None]]:
    """(description, claim name, storage class) of every claim a workload's pods can mount."""
    for pod in pod_views(workload):
        for volume in as_list(pod.spec.get("volumes")):
            volume = as_map(volume)
            claim = as_map(volume.get("persistentVolumeClaim")).get("claimName")
            if claim:
                yield f'volume "{volume.get("name")}"', str(claim), None
            template = as_map(as_map(volume.get("ephemeral")).get("volumeClaimTemplate"))
            if template:
                spec = as_map(template.get("spec"))
                yield f'ephemeral volume "{volume.get("name")}"', None, spec.get("storageClassName")
    for template in as_list(workload.spec.get("volumeClaimTemplates")):
        template = as_map(template)
        name = as_map(template.get("metadata")).get("name")
        spec = as_map(template.get("spec"))
        yield f'volumeClaimTemplate "{name}"', None, spec.get("storageClassName")


@stack_rule(
    "no-host-path-persistent-volumes",
    "No pod reaches a node's filesystem through a claim bound to a hostPath or local "
    "PersistentVolume.",
    "Back the claim with a network or CSI volume; hostPath and local PersistentVolumes expose "
    "the node's disk, which Pod Security forbids as a hostPath volume.",
)
def no_host_path_persistent_volumes(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    node_volumes = [
        (pv, kind)
        for pv in inventory.kind("PersistentVolume")
        for kind in _NODE_VOLUME_TYPES
        if pv.spec.get(kind) is not None
    ]
    if not node_volumes:
        return
    claims = {
        (c.effective_namespace, c.object_name): c for c in inventory.kind("PersistentVolumeClaim")
    }
    for workload in inventory.workloads:
        namespace = workload.effective_namespace
        for label, claim_name, storage_class in _claims(workload):
            claim = claims.get((namespace, claim_name)) if claim_name else None
            if claim is not None:
                storage_class = claim.spec.get("storageClassName")
            for pv, kind in node_volumes:
                ref = as_map(pv.spec.get("claimRef"))
                bound = claim is not None and (
                    claim.spec.get("volumeName") == pv.object_name
                    or (ref.get("name") == claim_name and ref.get("namespace") in (None, namespace))
                )
                # an unclaimed volume of the same class is free for any claim of that class
                free = (
                    not ref
                    and not (claim is not None and claim.spec.get("volumeName"))
                    and (
                        storage_class is not None
                        and pv.spec.get("storageClassName") == storage_class
                    )
                )
                if bound or free:
                    yield workload, f"{label} can mount {pv.ref}, a {kind} PersistentVolume"


RULES = (
    run_as_non_root,
    no_privilege_escalation,
    no_privileged_containers,
    drop_all_capabilities,
    seccomp_runtime_default,
    apparmor_profile_allowed,
    selinux_options_restricted,
    proc_mount_default,
    safe_sysctls,
    no_host_probes,
    read_only_root_filesystem,
    restricted_volume_types,
    no_host_path_persistent_volumes,
    resource_requests_limits,
    liveness_readiness_probes,
    image_pinned_by_digest,
)
