"""Admission-time enforcement: the pack's CEL-expressible rules as ValidatingAdmissionPolicies.

Built into the API server (no third-party controller): after `pulumi up`, anyone with
kubectl access to the namespace is held to the same rules a preview applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from infra.engine.kubernetes_object import KubernetesObject
from infra.pure.naming import Placement, common_labels
from policies.rules import RULES_BY_ID
from policies.rules.admission import admission_manifests


@dataclass(frozen=True)
class AdmissionPoliciesArgs:
    placement: Placement
    # Every range the environment declares; egress anywhere else is denied at admission.
    allowed_egress_cidrs: list[str]


class AdmissionPolicies(pulumi.ComponentResource):
    """Cluster-scoped objects, bound to this environment's namespace only."""

    names: list[str]

    def __init__(
        self, name: str, args: AdmissionPoliciesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:AdmissionPolicies", name, None, opts)
        place = args.placement
        manifests = admission_manifests(
            RULES_BY_ID,
            namespace=place.namespace,
            environment=place.environment,
            allowed_egress_cidrs=args.allowed_egress_cidrs,
            labels=common_labels("admission-policy", place.namespace, place.environment),
        )
        policies: dict[str, pulumi.Resource] = {}
        for manifest in manifests:
            kind, meta = manifest["kind"], manifest["metadata"]
            depends = [policies[meta["name"]]] if kind.endswith("Binding") else []
            resource = KubernetesObject(
                f"{name}-{meta['name']}{'-binding' if depends else ''}",
                manifest,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
            )
            if not depends:
                policies[meta["name"]] = resource
        self.names = list(policies)
        self.register_outputs({"policies": self.names})
