"""The contract's reader of manifests (contract/manifests.py) over the rules' `Resource`:
each object's pods are found once and remembered, and reports name a pod by where it sits.
Rules ask `pod_views` and never look at the kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .contract.kinds import BATCH_KINDS, WORKLOAD_KINDS
from .contract.manifests import (
    PodView,
    containers,
    find_pods,
    labels_match,
    secret_references,
    security_context,
    selector_expression_refused,
    selector_is_empty,
    selector_matches,
)
from .model import Resource

__all__ = [
    "WORKLOAD_KINDS",
    "PodView",
    "containers",
    "labels_match",
    "secret_references",
    "security_context",
    "selector_expression_refused",
    "selector_is_empty",
    "selector_matches",
]

# Where the built-in kinds keep their template: reports name other places explicitly.
_USUAL_PATHS = frozenset({"", "spec.template", "spec.jobTemplate.spec.template"})


def pod_views(resource: Resource) -> list[PodView]:
    """Every pod an object runs (most have one; some custom resources several)."""
    result: list[PodView] = resource.memo(
        "pods", lambda: find_pods(resource.kind, resource.group, resource.props)
    )
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


def all_secret_references(resource: Resource) -> set[str]:
    return {name for pod in pod_views(resource) for name in secret_references(pod.spec)}
