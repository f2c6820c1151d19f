"""One environment: the whole schema, and the derivations every consumer reads from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

from infra.pure import naming
from infra.pure.config import cross_references
from infra.pure.config.agent import AgentSpec, Vault
from infra.pure.config.cluster import CidrPrefixLimits, ClusterNetwork, Metrics, NamespaceQuota
from infra.pure.config.database import DatabaseEndpoint, Provisioner
from infra.pure.config.platform import PlatformEndpoints
from infra.pure.config.sandbox import SandboxPool
from infra.pure.config.server import McpServer
from infra.pure.config.tls import UpstreamTls
from infra.pure.config.tunnel import Tunnel
from infra.pure.config.types import (
    MAX_MCP_SERVERS,
    Epoch,
    Identifier,
    NamespaceName,
    Section,
    ShortName,
    Tier,
    raise_cross_reference,
)

# Shown offline and in previews when the platform has not assigned the tunnel domain yet.
PENDING_TUNNEL_DOMAIN = "tunnel-domain.pending.invalid"


class PerimeterConfig(Section):
    """One environment: everything `pulumi up --stack <env>` creates."""

    environment: ShortName
    tier: Annotated[Tier, Field(strict=False)]  # a YAML string naming the enum member
    namespace: NamespaceName
    rotation_epoch: Epoch = 0
    min_cidr_prefix: CidrPrefixLimits = CidrPrefixLimits()
    platform: PlatformEndpoints = PlatformEndpoints()
    cluster: ClusterNetwork = ClusterNetwork()
    quota: NamespaceQuota = NamespaceQuota()
    tunnel: Tunnel
    databases: dict[Identifier, DatabaseEndpoint] = {}
    mcp_servers: list[McpServer] = Field(min_length=1, max_length=MAX_MCP_SERVERS)
    sandboxes: list[SandboxPool] = Field(min_length=1)
    agents: list[AgentSpec] = []
    vault: Vault = Vault()
    provisioner: Provisioner
    upstream_tls: UpstreamTls = UpstreamTls()
    metrics: Metrics | None = None  # off: nothing may reach the tunnel's metrics ports
    _prompts: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _old_shape(cls, raw: Any) -> Any:
        """Stack files written for the single-pool shape get told exactly what to change."""
        if not isinstance(raw, Mapping):
            return raw
        problems = []
        if "sandbox" in raw:
            problems.append(
                "sandbox: replaced by `sandboxes:`, a list with one pool per trust boundary; "
                "write `sandboxes: [{name: <pool>, ...the same settings...}]` and rename its "
                "`mcp_servers` to `direct_mcp_access`"
            )
        for i, pool in enumerate(raw.get("sandboxes") or []):
            if isinstance(pool, Mapping) and "mcp_servers" in pool:
                problems.append(
                    f"sandboxes[{i}].mcp_servers: renamed `direct_mcp_access` (it bypasses the "
                    "platform's approval gate; list servers only when a pool needs that)"
                )
        if problems:
            raise PydanticCustomError("cross_reference", "\n".join(problems))
        return raw

    @model_validator(mode="after")
    def _cross_references(self) -> PerimeterConfig:
        raise_cross_reference(cross_references.problems(self))
        return self

    @property
    def warnings(self) -> list[str]:
        """Every warning the render and `pulumi preview`/`up` print, in one list."""
        return [w for pool in self.sandboxes for w in pool.warnings]

    def server(self, name: str) -> McpServer:
        return next(s for s in self.mcp_servers if s.name == name)

    def pool(self, name: str) -> SandboxPool:
        return next(p for p in self.sandboxes if p.name == name)

    @property
    def tunnel_domain(self) -> str:
        """The domain known before `up`: configured, or a placeholder until the platform assigns it."""
        return self.tunnel.domain or PENDING_TUNNEL_DOMAIN

    def mcp_url(self, server: McpServer, domain: str | None = None) -> str:
        """The exact URL the platform dials and the vault credential is bound to.

        `domain` is the tunnel's, as the platform assigned it; every URL derives from it.
        """
        return naming.mcp_url(server, domain or self.tunnel_domain)

    def system_prompt(self, agent: AgentSpec) -> str:
        return self._prompts.get(agent.name, "")
