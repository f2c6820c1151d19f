"""The self-hosted sandbox runner pool: workers that long-poll the platform, never dialled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import PerimeterConfig, PerimeterSecrets
from infra.credentials import credential_secret
from infra.naming import (
    CREDENTIAL_ENVIRONMENT_KEY,
    LABEL_ENVIRONMENT,
    SANDBOX_RELEASE,
    mcp_release,
)
from infra.tools import chart_path

CHART = chart_path("sandbox-runner")
KEY_SECRET = f"{SANDBOX_RELEASE}-environment-key"


@dataclass(frozen=True)
class SandboxPoolArgs:
    config: PerimeterConfig
    secrets: PerimeterSecrets


def sandbox_values(config: PerimeterConfig) -> dict[str, Any]:
    pool = config.sandbox
    values: dict[str, Any] = {
        "commonLabels": {LABEL_ENVIRONMENT: config.environment},
        "image": pool.image.chart_values(),
        "environment": {"id": pool.environment_id, "keySecretName": KEY_SECRET},
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
            {
                "name": name,
                "url": f"http://{mcp_release(name)}.{config.namespace}.svc.cluster.local:"
                f"{config.server(name).port}{config.server(name).path}",
            }
            for name in pool.mcp_servers
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
        config = args.config
        key = credential_secret(
            f"{name}-environment-key",
            config=config,
            name=KEY_SECRET,
            credential=CREDENTIAL_ENVIRONMENT_KEY,
            reader=SANDBOX_RELEASE,
            data={"key": args.secrets.environment_key},
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.helm.v4.Chart(
            SANDBOX_RELEASE,
            name=SANDBOX_RELEASE,
            chart=CHART,
            namespace=config.namespace,
            values=sandbox_values(config),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[key]),
        )
        self.register_outputs({"environment_id": config.sandbox.environment_id})
