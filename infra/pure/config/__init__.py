"""The one place configuration is read and validated.

A stack's structured settings live under the `agent-perimeter:perimeter` key of
`Pulumi.<stack>.yaml`; its secrets under their own keys (`tunnelToken`, ...).
Everything is checked here, every problem reported at once with its field
path, before a single resource is registered or a file written.

The schema (`types` and one module per section, `perimeter`, `cross_references`) is
apart from its two sources, `stack_file` and `pulumi_source`, as pydantic-settings keeps
settings sources apart from the model.
"""

from infra.contract.names import role_name
from infra.offline.errors import ConfigError
from infra.pure.config.agent import AgentServer, AgentSpec, Vault
from infra.pure.config.cluster import CidrPrefixLimits, ClusterNetwork, Metrics, NamespaceQuota
from infra.pure.config.database import DatabaseEndpoint, Provisioner, TableGrant
from infra.pure.config.keys import PERIMETER_KEY, PROJECT, SECRET_KEYS
from infra.pure.config.perimeter import PENDING_TUNNEL_DOMAIN, PerimeterConfig
from infra.pure.config.platform import PlatformEndpoints
from infra.pure.config.pulumi_source import (
    PerimeterSecrets,
    as_secret,
    backend_credential_keys,
    load_pulumi,
    offline_secrets,
    required_secrets,
)
from infra.pure.config.resources import ResourceList, Resources
from infra.pure.config.sandbox import SandboxPool
from infra.pure.config.server import Backend, McpServer, Tool
from infra.pure.config.stack_file import (
    MAX_PROMPT_BYTES,
    load,
    load_stack_file,
    parse_perimeter,
    read_prompt,
    read_stack_file,
    stack_file,
)
from infra.pure.config.tls import UpstreamTls
from infra.pure.config.tunnel import Tunnel
from infra.pure.config.types import MAX_EPOCH, MAX_MCP_SERVERS, ImageRef, Tier, quantity_value

__all__ = [
    "MAX_EPOCH",
    "MAX_MCP_SERVERS",
    "MAX_PROMPT_BYTES",
    "PENDING_TUNNEL_DOMAIN",
    "PERIMETER_KEY",
    "PROJECT",
    "SECRET_KEYS",
    "AgentServer",
    "AgentSpec",
    "Backend",
    "CidrPrefixLimits",
    "ClusterNetwork",
    "ConfigError",
    "DatabaseEndpoint",
    "ImageRef",
    "McpServer",
    "Metrics",
    "NamespaceQuota",
    "PerimeterConfig",
    "PerimeterSecrets",
    "PlatformEndpoints",
    "Provisioner",
    "ResourceList",
    "Resources",
    "SandboxPool",
    "TableGrant",
    "Tier",
    "Tool",
    "Tunnel",
    "UpstreamTls",
    "Vault",
    "as_secret",
    "backend_credential_keys",
    "load",
    "load_pulumi",
    "load_stack_file",
    "offline_secrets",
    "parse_perimeter",
    "quantity_value",
    "read_prompt",
    "read_stack_file",
    "required_secrets",
    "role_name",
    "stack_file",
]
