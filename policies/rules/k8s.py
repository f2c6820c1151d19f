"""Reading pods, containers and secret references out of any workload kind."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .model import Resource, as_list, as_map, dig

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


def _pod_template(resource: Resource) -> Mapping[str, Any] | None:
    if resource.kind not in WORKLOAD_KINDS:
        return None
    if resource.kind == "Pod":
        return resource.props
    spec = resource.spec
    if resource.kind == "CronJob":
        return as_map(dig(spec, "jobTemplate", "spec", "template"))
    return as_map(spec.get("template"))


def pod_template(resource: Resource) -> Mapping[str, Any] | None:
    """The pod (metadata + spec) a workload runs, whatever its kind."""
    result: Mapping[str, Any] | None = resource.memo("pod", lambda: _pod_template(resource))
    return result


def pod_spec(resource: Resource) -> Mapping[str, Any]:
    result: Mapping[str, Any] = resource.memo(
        "pod_spec", lambda: as_map((pod_template(resource) or {}).get("spec"))
    )
    return result


def pod_labels(resource: Resource) -> Mapping[str, Any]:
    result: Mapping[str, Any] = resource.memo(
        "pod_labels", lambda: as_map(dig(pod_template(resource) or {}, "metadata", "labels"))
    )
    return result


def containers(
    spec: Mapping[str, Any], fields: tuple[str, ...] = CONTAINER_FIELDS
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(description, container) for every container of a pod spec, init and ephemeral ones too."""
    for field_name in fields:
        for container in as_list(spec.get(field_name)):
            container = as_map(container)
            kind = {
                "initContainers": "init container",
                "ephemeralContainers": "ephemeral container",
            }
            label = kind.get(field_name, "container")
            yield f'{label} "{container.get("name", "?")}"', container


def security_context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_map(container.get("securityContext"))


def secret_references(spec: Mapping[str, Any]) -> set[str]:
    """Every Secret a pod reads: env, envFrom, secret volumes and projected volumes."""
    names: set[str] = set()
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


def selector_is_empty(selector: Any) -> bool:
    """An empty label selector selects everything (and an absent one, for a podSelector, too)."""
    selector = as_map(selector)
    return not as_map(selector.get("matchLabels")) and not as_list(selector.get("matchExpressions"))


def labels_match(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """A Service-style selector (plain map) matches when every pair is among the labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
