"""The environment's NetworkPolicies: default deny, DNS, and one policy per workload."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi

from infra.engine.kubernetes_object import KubernetesObject
from infra.pure.naming import ANNOTATION_BOUNDARY_RESTORED, ANNOTATION_PATCH_FORCE


@dataclass(frozen=True)
class NetworkBoundaryArgs:
    # The environment's NetworkPolicies, derived by infra/pure/network.py.
    policies: list[dict[str, Any]]
    # NetworkPolicy name -> value of the restore annotation (see infra/engine/boundary_repair.py).
    restore_tokens: Mapping[str, str] = field(default_factory=dict)


class NetworkBoundary(pulumi.ComponentResource):
    """Created before any workload so no pod ever runs outside the boundary."""

    policy_names: list[str]

    def __init__(
        self, name: str, args: NetworkBoundaryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:NetworkBoundary", name, None, opts)
        manifests = args.policies
        self.policies: list[KubernetesObject] = []
        for manifest in manifests:
            meta: Any = dict(manifest["metadata"])
            token = args.restore_tokens.get(meta["name"])
            meta["annotations"] = {
                **meta.get("annotations", {}),
                ANNOTATION_PATCH_FORCE: "true",
                **({ANNOTATION_BOUNDARY_RESTORED: token} if token else {}),
            }
            self.policies.append(
                KubernetesObject(
                    f"{name}-{meta['name']}",
                    {**manifest, "metadata": meta},
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.policy_names = [m["metadata"]["name"] for m in manifests]
        self.register_outputs({"policies": self.policy_names})
