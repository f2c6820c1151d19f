"""The CrossGuard entry point: `pulumi preview --policy-pack policies` runs this file.

The engine starts it as `python -u -m pulumi.policy <engine> .` from this folder,
so `rules` is importable as a top-level package here. Only wiring lives here:
`PolicyPack` serves gRPC and never returns.
"""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules.crossguard import PACK_NAME, policies

PolicyPack(
    name=PACK_NAME,
    policies=policies(),
    enforcement_level=EnforcementLevel.MANDATORY,
    description="agent-perimeter: no inbound path, no shared or admin credential, hardened pods, "
    "and an agent definition that agrees with its vault credentials and tunnel routes.",
)
