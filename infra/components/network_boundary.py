"""The environment's NetworkPolicies: default deny, DNS, and one policy per workload."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.config import PerimeterConfig
from infra.network import network_policies


@dataclass(frozen=True)
class NetworkBoundaryArgs:
    config: PerimeterConfig


class NetworkBoundary(pulumi.ComponentResource):
    """Created before any workload so no pod ever runs outside the boundary."""

    policy_names: list[str]

    def __init__(
        self, name: str, args: NetworkBoundaryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:NetworkBoundary", name, None, opts)
        manifests = network_policies(args.config)
        self.policies: list[k8s.networking.v1.NetworkPolicy] = []
        for manifest in manifests:
            meta = manifest["metadata"]
            self.policies.append(
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-{meta['name']}",
                    metadata=meta,
                    spec=manifest["spec"],
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.policy_names = [m["metadata"]["name"] for m in manifests]
        self.register_outputs({"policies": self.policy_names})
