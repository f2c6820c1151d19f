"""The platform's `self_hosted` environment of one sandbox pool (one per trust boundary)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from infra.platform_api.environment import Environment, EnvironmentArgs
from infra.pure.config import SandboxPool as PoolConfig


def environment_name(environment: str, pool: PoolConfig) -> str:
    return f"agent-perimeter-{environment}-{pool.name}"


@dataclass(frozen=True)
class SandboxEnvironmentArgs:
    environment: str
    pool: PoolConfig
    connection: pulumi.Input[dict[str, Any]]


class SandboxEnvironment(pulumi.ComponentResource):
    """The key its workers use is the operator's (`environmentKeys.<pool>`): the API mints none."""

    environment_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: SandboxEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:SandboxEnvironment", name, None, opts)
        pool = args.pool
        environment = Environment(
            f"{name}-environment",
            EnvironmentArgs(
                connection=args.connection,
                name=environment_name(args.environment, pool),
                description=pool.description,
                metadata={"environment": args.environment, "sandbox_pool": pool.name},
                adopt_id=pool.environment_id,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.environment_id = environment.id
        self.register_outputs({"environment_id": self.environment_id})
