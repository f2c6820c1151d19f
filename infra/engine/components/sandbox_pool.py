"""The self-hosted sandbox runner pool: workers that long-poll the platform, never dialled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.engine.credentials import credential_secret
from infra.offline.tools import chart_path
from infra.pure.config import SandboxPool as PoolConfig
from infra.pure.naming import (
    CREDENTIAL_ENVIRONMENT_KEY,
    LABEL_ENVIRONMENT,
    Placement,
    environment_key_secret_name,
    sandbox_release,
)

CHART = chart_path("sandbox-runner")


@dataclass(frozen=True)
class SandboxPoolArgs:
    placement: Placement
    pool: PoolConfig
    environment_key: pulumi.Input[str]
    # The platform environment this pool's workers poll: created by the program, or configured.
    environment_id: pulumi.Input[str] | None = None
    # Server name -> its in-cluster URL, for each server `pool.direct_mcp_access` lists.
    direct_mcp_urls: dict[str, str] = field(default_factory=dict)


def sandbox_values(args: SandboxPoolArgs) -> dict[str, Any]:
    pool, environment_id = args.pool, args.environment_id
    values: dict[str, Any] = {
        "commonLabels": {LABEL_ENVIRONMENT: args.placement.environment},
        "image": pool.image.chart_values(),
        "environment": {
            "id": environment_id if environment_id is not None else pool.environment_id,
            "keySecretName": environment_key_secret_name(pool.name),
        },
        "worker": {
            "maxIdle": pool.max_idle,
            "runTimeoutSeconds": pool.run_timeout_seconds,
            "maxToolCalls": pool.max_tool_calls,
            "drainSeconds": pool.drain_seconds,
        },
        "terminationGracePeriodSeconds": pool.grace_period_seconds,
        "autoscaling": {"minReplicas": pool.min_replicas, "maxReplicas": pool.max_replicas},
        "workspace": {"sizeLimit": pool.workspace_size},
        "mcpServers": [
            {"name": name, "url": args.direct_mcp_urls[name]} for name in pool.direct_mcp_access
        ],
        "resources": pool.resources.chart_values(),
    }
    if pool.runtime_class_name:
        values["runtimeClassName"] = pool.runtime_class_name
    return values


class SandboxPool(pulumi.ComponentResource):
    """One pool per trust boundary: the environment key is read by these pods only."""

    def __init__(
        self, name: str, args: SandboxPoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("agent-perimeter:index:SandboxPool", name, None, opts)
        pool = args.pool
        release = sandbox_release(pool.name)
        key = credential_secret(
            f"{name}-environment-key",
            placement=args.placement,
            name=environment_key_secret_name(pool.name),
            credential=CREDENTIAL_ENVIRONMENT_KEY,
            reader=release,
            data={"key": args.environment_key},
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.helm.v4.Chart(
            release,
            name=release,
            chart=CHART,
            namespace=args.placement.namespace,
            values=sandbox_values(args),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[key]),
        )
        self.register_outputs({"environment_id": args.environment_id})
