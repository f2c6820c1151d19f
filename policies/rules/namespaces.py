"""The perimeter namespace keeps its own guards: Pod Security `restricted` and its quota."""

from __future__ import annotations

from collections.abc import Iterator

from .inventory import Inventory
from .model import Resource, Settings, Target, resource_rule, stack_rule

PSA_LABEL = "pod-security.kubernetes.io/{}"


@resource_rule(
    "namespace-pod-security-restricted",
    "Every namespace enforces Pod Security `restricted`, and audits and warns at no weaker level.",
    "Label the namespace pod-security.kubernetes.io/enforce: restricted (and audit, warn: "
    "restricted); the admission controller then refuses any pod the profile forbids.",
    kinds={"Namespace"},
)
def namespace_pod_security_restricted(resource: Resource, settings: Settings) -> Iterator[str]:
    enforce = resource.labels.get(PSA_LABEL.format("enforce"))
    if enforce != "restricted":
        yield f"{PSA_LABEL.format('enforce')} is {enforce or 'not set'}, not restricted"
    for mode in ("audit", "warn"):
        value = resource.labels.get(PSA_LABEL.format(mode))
        if value is not None and value != "restricted":
            yield f"{PSA_LABEL.format(mode)} is {value}, weaker than restricted"


@stack_rule(
    "namespace-resource-quota",
    "Every namespace keeps a ResourceQuota (it caps pods and refuses NodePorts and LoadBalancers).",
    "Keep the namespace's ResourceQuota in the set; removing it lifts the caps on what the "
    "namespace can run and expose.",
)
def namespace_resource_quota(
    inventory: Inventory, settings: Settings
) -> Iterator[tuple[Target, str]]:
    quotas = {q.effective_namespace for q in inventory.kind("ResourceQuota")}
    for namespace in inventory.kind("Namespace"):
        if namespace.object_name not in quotas:
            yield namespace, f"namespace {namespace.object_name} has no ResourceQuota"


RULES = (namespace_pod_security_restricted, namespace_resource_quota)
