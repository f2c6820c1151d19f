"""The `sandboxes` section: one pool of self-hosted sandbox runners per trust boundary."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from infra.pure.config.resources import Resources, default_resources
from infra.pure.config.types import DnsLabel, Duration, Image, Quantity, Section, ShortName, invalid
from infra.pure.platform_ids import ENVIRONMENT_ID


class SandboxPool(Section):
    """One runner pool: one trust boundary, with its own environment, key and egress.
    The limits are enforced by the `sandbox` worker the chart runs."""

    # The SDK's own bound on one tool call (`TOOL_TIMEOUT` in
    # anthropic.lib.tools._beta_session_runner, 2.10.0); a test holds the two equal. Not
    # imported: the SDK takes seconds to import and every offline command loads this module.
    SDK_TOOL_CALL_TIMEOUT_SECONDS: ClassVar[int] = 150

    name: ShortName
    # With the platform enabled: adopts this environment (else one is created).
    # With it disabled: required, the environment created by hand.
    environment_id: str | None = Field(default=None, pattern=ENVIRONMENT_ID)
    description: str | None = None
    image: Image
    min_replicas: int = Field(default=1, ge=1, le=100)
    max_replicas: int = Field(default=4, ge=1, le=100)
    runtime_class_name: DnsLabel | None = None
    # From 10 s up: a deadline shorter than the SDK's per-call bound is the team's call (warned).
    run_timeout_seconds: int = Field(default=1800, ge=10, le=86400)
    max_tool_calls: int = Field(default=200, ge=1, le=10000)
    # Reserved after the run timeout for winding a session down: the tool call in flight is
    # cancelled, bash torn down, the force-stop sent, the workspace emptied.
    drain_seconds: int = Field(default=30, ge=5, le=600)
    # Unset: run_timeout_seconds + drain_seconds, so a scaled-down runner can always finish.
    termination_grace_period_seconds: int | None = Field(default=None, ge=1, le=90000)
    max_idle: Duration = "60s"
    # Servers this pool's code may call directly, bypassing the platform's approval gate.
    # Empty by default; each entry is flagged by the audit and warned about by the policies.
    direct_mcp_access: list[ShortName] = []
    workspace_size: Quantity = "2Gi"
    resources: Resources = default_resources("250m", "512Mi", "1", "1Gi")

    @property
    def warnings(self) -> list[str]:
        """What the team should know but may choose: a run timeout under the SDK's per-call
        bound cuts off a call the SDK would still allow (the agent gets a tool error)."""
        floor = self.SDK_TOOL_CALL_TIMEOUT_SECONDS
        if self.run_timeout_seconds >= floor:
            return []
        return [
            f"sandboxes.{self.name}.run_timeout_seconds: {self.run_timeout_seconds}s is shorter "
            f"than the {floor}s the SDK allows one tool call; a call still running at the "
            "deadline is cancelled, the agent gets a tool error and the session ends"
        ]

    @model_validator(mode="after")
    def _replica_range(self) -> SandboxPool:
        if self.min_replicas > self.max_replicas:
            raise invalid(
                "replicas",
                f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})",
            )
        return self

    @model_validator(mode="after")
    def _grace_covers_a_run(self) -> SandboxPool:
        needed = self.run_timeout_seconds + self.drain_seconds
        grace = self.termination_grace_period_seconds
        if grace is not None and grace < needed:
            raise invalid(
                "termination_grace",
                f"termination_grace_period_seconds ({grace}) must be at least "
                f"run_timeout_seconds + drain_seconds ({needed}): a runner scaled down mid-run "
                "would be killed before its session ends or is stopped",
            )
        return self

    @property
    def grace_period_seconds(self) -> int:
        return self.termination_grace_period_seconds or (
            self.run_timeout_seconds + self.drain_seconds
        )
