"""A test-only program: one LoadBalancer Service in the perimeter's namespace.

`pulumi preview --policy-pack policies` must stop it, naming the rule; nothing is created.
"""

import pulumi
import pulumi_kubernetes as k8s

namespace = pulumi.Config().require("namespace")
k8s.core.v1.Service(
    "exposed",
    metadata={"name": "exposed", "namespace": namespace},
    spec={"type": "LoadBalancer", "ports": [{"port": 443}], "selector": {"app": "x"}},
)
