"""Reading pods, containers and secret references out of any object that runs pods.

A workload is any object that carries a pod template, whatever its kind: the
built-in controllers, and custom resources that embed a template (or a bare pod
spec) anywhere in their body. Rules ask `pod_views` and never look at the kind.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Resource, as_list, as_map, dig

# The built-in kinds that run pods (the audit's inventory and reports use this list).
WORKLOAD_KINDS = frozenset(
    {
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    }
)
# Pods that run to completion: probes make no sense for them.
BATCH_KINDS = frozenset({"Job", "CronJob"})
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")
# Kinds that never carry a pod, skipped without reading their bodies (fast, and under
# preview an unknown ConfigMap value then stops no pod rule).
_PODLESS_KINDS = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Namespace",
        "Service",
        "Endpoints",
        "EndpointSlice",
        "NetworkPolicy",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ResourceQuota",
        "LimitRange",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "Ingress",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
)
_BUILTIN_GROUPS = frozenset(
    {
        "core",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "discovery.k8s.io",
        "apiextensions.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "policy",
        "autoscaling",
    }
)
_MAX_DEPTH = 16
# Where the built-in kinds keep their template: reports name other places explicitly.
_USUAL_PATHS = frozenset({"", "spec.template", "spec.jobTemplate.spec.template"})


@dataclass(frozen=True)
class PodView:
    """One pod an object runs: where it sits in the object, its metadata and its spec."""

    path: str
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]

    @property
    def labels(self) -> Mapping[str, Any]:
        return as_map(self.metadata.get("labels"))

    @property
    def annotations(self) -> Mapping[str, Any]:
        return as_map(self.metadata.get("annotations"))


def _is_pod_spec(value: Mapping[str, Any]) -> bool:
    """A mapping holding a non-empty `containers` list of container-like mappings."""
    found = as_list(value.get("containers"))
    return bool(found) and all(
        isinstance(c, Mapping) and ("image" in c or "name" in c) for c in found
    )


def _walk(value: Any, path: str, depth: int, out: list[PodView]) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        spec = value.get("spec")
        if isinstance(spec, Mapping) and _is_pod_spec(spec):
            out.append(PodView(path, as_map(value.get("metadata")), spec))
            return
        if _is_pod_spec(value):  # a bare pod spec embedded without a template
            out.append(PodView(path, {}, value))
            return
        for key, child in value.items():
            if key not in ("metadata", "status"):
                _walk(child, f"{path}.{key}" if path else str(key), depth + 1, out)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        for i, child in enumerate(value):
            _walk(child, f"{path}[{i}]", depth + 1, out)


def _find_pods(resource: Resource) -> list[PodView]:
    if resource.kind in _PODLESS_KINDS and resource.group in _BUILTIN_GROUPS:
        return []
    if resource.kind == "Pod" and resource.group == "core":
        return [PodView("", resource.metadata, resource.spec)]
    found: list[PodView] = []
    for key, child in resource.props.items():
        if key not in ("metadata", "status", "apiVersion", "kind"):
            _walk(child, str(key), 1, found)
    return found


def pod_views(resource: Resource) -> list[PodView]:
    """Every pod an object runs (most have one; some custom resources several)."""
    result: list[PodView] = resource.memo("pods", lambda: _find_pods(resource))
    return result


def is_workload(resource: Resource) -> bool:
    return bool(pod_views(resource))


def where(resource: Resource, pod: PodView) -> str:
    """A prefix naming the pod inside the object, when it is not where the kind usually has it."""
    if pod.path in _USUAL_PATHS and len(pod_views(resource)) == 1:
        return ""
    return f"pod at {pod.path}: "


def pod_template(resource: Resource) -> Mapping[str, Any] | None:
    """The first pod (metadata + spec) an object runs, None when it runs none."""
    pods = pod_views(resource)
    return {"metadata": pods[0].metadata, "spec": pods[0].spec} if pods else None


def pod_spec(resource: Resource) -> Mapping[str, Any]:
    pods = pod_views(resource)
    return pods[0].spec if pods else {}


def pod_labels(resource: Resource) -> Mapping[str, Any]:
    pods = pod_views(resource)
    return pods[0].labels if pods else {}


def is_batch(resource: Resource, pod: PodView) -> bool:
    """A pod that runs to completion: a Job's, a CronJob's, or a bare pod that never restarts."""
    if resource.kind in BATCH_KINDS:
        return True
    return pod.spec.get("restartPolicy") in ("Never", "OnFailure")


def containers(
    spec: Mapping[str, Any], fields: tuple[str, ...] = CONTAINER_FIELDS
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(description, container) for every container of a pod spec, init and ephemeral ones too."""
    kind = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}
    for field_name in fields:
        for container in as_list(spec.get(field_name)):
            container = as_map(container)
            label = kind.get(field_name, "container")
            yield f'{label} "{container.get("name", "?")}"', container


def security_context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(container.get("securityContext"))


def secret_references(spec: Mapping[str, Any]) -> set[str]:
    """Every Secret a pod reads: env, envFrom, secret volumes, projected volumes and its image
    pull Secrets (the kubelet reads those for the pod: a registry credential is a credential)."""
    names: set[str] = {
        str(pull["name"])
        for pull in as_list(spec.get("imagePullSecrets"))
        if isinstance(pull, Mapping) and pull.get("name")
    }
    for _, container in containers(spec):
        for env in as_list(container.get("env")):
            name = dig(env, "valueFrom", "secretKeyRef", "name")
            if name:
                names.add(str(name))
        for source in as_list(container.get("envFrom")):
            name = dig(source, "secretRef", "name")
            if name:
                names.add(str(name))
    for volume in as_list(spec.get("volumes")):
        name = dig(volume, "secret", "secretName")
        if name:
            names.add(str(name))
        for source in as_list(dig(volume, "projected", "sources")):
            name = dig(source, "secret", "name")
            if name:
                names.add(str(name))
    return names


def all_secret_references(resource: Resource) -> set[str]:
    return {name for pod in pod_views(resource) for name in secret_references(pod.spec)}


def selector_is_empty(selector: Any) -> bool:
    """An empty label selector selects everything (and an absent one, for a podSelector, too)."""
    selector = as_map(selector)
    return not as_map(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions"))


def labels_match(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A Service-style selector (plain map) matches when every pair is among the labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# A label selector's operators; the API server refuses any other.
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def selector_expression_refused(operator: Any, values: Collection[Any]) -> str | None:
    """Why the API server refuses one matchExpressions entry (an unknown operator, In/NotIn
    without values, Exists/DoesNotExist with some), or None when it accepts it."""
    if operator not in SELECTOR_OPERATORS:
        return f"operator {operator!r} is not one of {', '.join(SELECTOR_OPERATORS)}"
    if (operator in ("In", "NotIn")) != bool(values):
        need = "needs values" if operator in ("In", "NotIn") else "takes no values"
        return f"operator {operator} {need}"
    return None


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """A full label selector (matchLabels + matchExpressions) against a set of labels. An
    expression the API server would refuse (an unknown operator, In/NotIn without values,
    Exists/DoesNotExist with some) matches nothing, never everything."""
    selector = as_map(selector)
    for key, value in as_map(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expression in as_list(selector.get("matchExpressions")):
        expression = as_map(expression)
        key = str(expression.get("key"))
        operator = expression.get("operator")
        values = {str(v) for v in as_list(expression.get("values"))}
        if selector_expression_refused(operator, values) is not None:
            return False
        present = key in labels
        if operator == "In" and not (present and str(labels[key]) in values):
            return False
        if operator == "NotIn" and present and str(labels[key]) in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
