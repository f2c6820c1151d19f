"""Hardened pods: Pod Security `restricted`, plus resources, probes and pinned images."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .k8s import (
    BATCH_KINDS,
    WORKLOAD_KINDS,
    containers,
    pod_spec,
    security_context,
)
from .model import ADVISORY, MANDATORY, Resource, Settings, as_list, as_map, resource_rule

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
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@resource_rule(
    "run-as-non-root",
    "Containers run as a non-root user (runAsNonRoot: true, runAsUser not 0).",
    "Set securityContext.runAsNonRoot: true and a non-zero runAsUser at pod level (or on every "
    "container), and build the image with a numeric non-root USER.",
    kinds=WORKLOAD_KINDS,
)
def run_as_non_root(resource: Resource, settings: Settings) -> Iterator[str]:
    spec = pod_spec(resource)
    pod = as_map(spec.get("securityContext"))
    for label, container in containers(spec):
        own = security_context(container)
        non_root = own.get("runAsNonRoot", pod.get("runAsNonRoot"))
        user = own.get("runAsUser", pod.get("runAsUser"))
        if non_root is not True:
            yield f"{label}: runAsNonRoot is not true"
        if user is not None and int(user) == 0:
            yield f"{label}: runAsUser is 0 (root)"


@resource_rule(
    "no-privilege-escalation",
    "Every container sets allowPrivilegeEscalation: false.",
    "Set securityContext.allowPrivilegeEscalation: false on every container, init container "
    "included.",
    kinds=WORKLOAD_KINDS,
)
def no_privilege_escalation(resource: Resource, settings: Settings) -> Iterator[str]:
    for label, container in containers(pod_spec(resource)):
        if security_context(container).get("allowPrivilegeEscalation") is not False:
            yield f"{label}: allowPrivilegeEscalation is not false"


@resource_rule(
    "no-privileged-containers",
    "No container runs privileged.",
    "Remove securityContext.privileged; a privileged container is root on the node.",
    kinds=WORKLOAD_KINDS,
)
def no_privileged_containers(resource: Resource, settings: Settings) -> Iterator[str]:
    for label, container in containers(pod_spec(resource)):
        if security_context(container).get("privileged") is True:
            yield f"{label} runs privileged"


@resource_rule(
    "drop-all-capabilities",
    "Every container drops ALL capabilities and adds back at most NET_BIND_SERVICE.",
    "Set securityContext.capabilities: {drop: [ALL]} and remove any `add` other than "
    "NET_BIND_SERVICE.",
    kinds=WORKLOAD_KINDS,
)
def drop_all_capabilities(resource: Resource, settings: Settings) -> Iterator[str]:
    for label, container in containers(pod_spec(resource)):
        capabilities = as_map(security_context(container).get("capabilities"))
        if "ALL" not in {str(c) for c in as_list(capabilities.get("drop"))}:
            yield f"{label} does not drop ALL capabilities"
        added = sorted(
            {str(c) for c in as_list(capabilities.get("add"))} - ALLOWED_ADDED_CAPABILITIES
        )
        if added:
            yield f"{label} adds capabilities {', '.join(added)}"


@resource_rule(
    "seccomp-runtime-default",
    "Pods run with the RuntimeDefault (or a Localhost) seccomp profile.",
    "Set spec.securityContext.seccompProfile.type: RuntimeDefault in the pod template.",
    kinds=WORKLOAD_KINDS,
)
def seccomp_runtime_default(resource: Resource, settings: Settings) -> Iterator[str]:
    spec = pod_spec(resource)
    pod = as_map(as_map(spec.get("securityContext")).get("seccompProfile")).get("type")
    for label, container in containers(spec):
        own = as_map(security_context(container).get("seccompProfile")).get("type")
        profile = own or pod
        if profile not in ("RuntimeDefault", "Localhost"):
            yield f"{label}: seccomp profile is {profile or 'not set'}"


@resource_rule(
    "read-only-root-filesystem",
    "Every container has a read-only root filesystem.",
    "Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir where the process "
    "must write (/tmp, a workspace).",
    kinds=WORKLOAD_KINDS,
)
def read_only_root_filesystem(resource: Resource, settings: Settings) -> Iterator[str]:
    for label, container in containers(pod_spec(resource)):
        if security_context(container).get("readOnlyRootFilesystem") is not True:
            yield f"{label}: readOnlyRootFilesystem is not true"


@resource_rule(
    "restricted-volume-types",
    "Pods use only the volume types Pod Security `restricted` allows (no hostPath).",
    "Replace the volume with an emptyDir, configMap, secret, projected or persistentVolumeClaim "
    "volume.",
    kinds=WORKLOAD_KINDS,
)
def restricted_volume_types(resource: Resource, settings: Settings) -> Iterator[str]:
    for volume in as_list(pod_spec(resource).get("volumes")):
        volume = as_map(volume)
        for key in volume:
            if key != "name" and key not in ALLOWED_VOLUME_TYPES:
                yield f'volume "{volume.get("name")}" is of type {key}'


@resource_rule(
    "resource-requests-limits",
    "Every container requests and limits CPU and memory.",
    "Set resources.requests and resources.limits (cpu and memory) on every container and init "
    "container.",
    kinds=WORKLOAD_KINDS,
)
def resource_requests_limits(resource: Resource, settings: Settings) -> Iterator[str]:
    for label, container in containers(pod_spec(resource), ("initContainers", "containers")):
        resources = as_map(container.get("resources"))
        missing = [
            f"{section}.{name}"
            for section in ("requests", "limits")
            for name in ("cpu", "memory")
            if as_map(resources.get(section)).get(name) in (None, "")
        ]
        if missing:
            yield f"{label} sets no {', '.join(missing)}"


@resource_rule(
    "liveness-readiness-probes",
    "Long-running containers have liveness and readiness probes.",
    "Add livenessProbe and readinessProbe (an exec, httpGet or tcpSocket check) to each container.",
    kinds=WORKLOAD_KINDS - BATCH_KINDS,
)
def liveness_readiness_probes(resource: Resource, settings: Settings) -> Iterator[str]:
    for label, container in containers(pod_spec(resource), ("containers",)):
        missing = [p for p in ("livenessProbe", "readinessProbe") if container.get(p) is None]
        if missing:
            yield f"{label} has no {' or '.join(missing)}"


@resource_rule(
    "image-pinned-by-digest",
    "Container images are pinned by digest (@sha256:...).",
    "Append @sha256:<digest> to the image reference (in the stack config) so a moved tag cannot "
    "change what runs.",
    kinds=WORKLOAD_KINDS,
    levels={"*": ADVISORY, "prod": MANDATORY},
)
def image_pinned_by_digest(resource: Resource, settings: Settings) -> Iterator[str]:
    for label, container in containers(pod_spec(resource)):
        image = str(container.get("image") or "")
        if not _DIGEST.search(image):
            yield f"{label}: image {image or '(none)'} is not pinned by digest"


RULES = (
    run_as_non_root,
    no_privilege_escalation,
    no_privileged_containers,
    drop_all_capabilities,
    seccomp_runtime_default,
    read_only_root_filesystem,
    restricted_volume_types,
    resource_requests_limits,
    liveness_readiness_probes,
    image_pinned_by_digest,
)
