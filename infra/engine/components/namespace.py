"""The environment's namespace: Pod Security `restricted`, a quota and default limits."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.engine.kubernetes_object import KubernetesObject, object_meta
from infra.pure.config import NamespaceQuota
from infra.pure.naming import Placement, common_labels

PSA_VERSION = "latest"


@dataclass(frozen=True)
class PerimeterNamespaceArgs:
    placement: Placement
    quota: NamespaceQuota


class PerimeterNamespace(pulumi.ComponentResource):
    """Admission rejects any pod weaker than `restricted`, whatever a chart says."""

    name: pulumi.Output[str]

    def __init__(
        self, name: str, args: PerimeterNamespaceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:PerimeterNamespace", name, None, opts)
        place = args.placement
        child = pulumi.ResourceOptions(parent=self)
        labels = common_labels("namespace", place.namespace, place.environment)
        psa = {
            f"pod-security.kubernetes.io/{mode}{suffix}": value
            for mode in ("enforce", "audit", "warn")
            for suffix, value in (("", "restricted"), ("-version", PSA_VERSION))
        }
        namespace = KubernetesObject(
            f"{name}-namespace",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": object_meta(place.namespace, labels={**labels, **psa}),
            },
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        quota = args.quota
        KubernetesObject(
            f"{name}-quota",
            {
                "apiVersion": "v1",
                "kind": "ResourceQuota",
                "metadata": object_meta("perimeter-quota", place.namespace, labels),
                "spec": {
                    "hard": {
                        "pods": str(quota.pods),
                        "requests.cpu": quota.requests_cpu,
                        "requests.memory": quota.requests_memory,
                        "limits.cpu": quota.limits_cpu,
                        "limits.memory": quota.limits_memory,
                        "services.nodeports": "0",
                        "services.loadbalancers": "0",
                    }
                },
            },
            opts=in_namespace,
        )
        KubernetesObject(
            f"{name}-limits",
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": object_meta("perimeter-limits", place.namespace, labels),
                "spec": {
                    "limits": [
                        {
                            "type": "Container",
                            "default": {"cpu": "500m", "memory": "256Mi"},
                            "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
                            "max": {"cpu": "4", "memory": "8Gi"},
                        }
                    ]
                },
            },
            opts=in_namespace,
        )
        self.name: pulumi.Output[str] = namespace.metadata["name"]
        self.register_outputs({"name": self.name})
