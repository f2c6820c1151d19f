"""Each component on its own under Pulumi mocks: what it registers, and that it owns it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from pulumi.runtime.settings import SETTINGS

from infra.engine.components.agent_definition import AgentDefinition
from infra.engine.components.mcp_credentials import McpServerCredentials, McpServerCredentialsArgs
from infra.engine.components.mcp_server import McpServer, McpServerArgs
from infra.engine.components.mcp_tunnel import McpTunnel
from infra.engine.components.namespace import PerimeterNamespace, PerimeterNamespaceArgs
from infra.engine.components.network_boundary import NetworkBoundary, NetworkBoundaryArgs
from infra.engine.components.platform_vault import PlatformVault, PlatformVaultArgs
from infra.engine.components.role_provisioner import RoleProvisioner
from infra.engine.components.sandbox_environment import SandboxEnvironment, SandboxEnvironmentArgs
from infra.engine.components.sandbox_pool import SandboxPool
from infra.engine.stack import agent_args, role_provisioner_args, sandbox_pool_args, tunnel_args
from infra.offline.mocked import CHART_TYPE, PLATFORM_TYPE_PREFIX, RecordingMocks, plain
from infra.offline.tools import REPO_ROOT
from infra.pure.config import PROJECT, PerimeterConfig, offline_secrets
from infra.pure.naming import Placement
from infra.pure.network import network_policies

K8S = "kubernetes:core/v1:"
DYNAMIC = PLATFORM_TYPE_PREFIX


def _placement(c: PerimeterConfig) -> Placement:
    return Placement(c.namespace, c.environment)


def _namespace(c: PerimeterConfig) -> Any:
    return PerimeterNamespace("ns", PerimeterNamespaceArgs(_placement(c), c.quota))


def _network(c: PerimeterConfig) -> Any:
    return NetworkBoundary("net", NetworkBoundaryArgs(network_policies(c)))


def _credentials(c: PerimeterConfig) -> Any:
    server = c.server("tickets")  # database tools, no backend credential
    return McpServerCredentials(
        "creds", McpServerCredentialsArgs(_placement(c), server, 0, c.mcp_url(server))
    )


def _provisioner(c: PerimeterConfig) -> Any:
    verifiers = {
        f"mcp_{s.name}_{t.name}": pulumi.Output.secret("SCRAM-SHA-256$4096:x$y:z")
        for s in c.mcp_servers
        for t in s.tools
    }
    return RoleProvisioner(
        "roles",
        role_provisioner_args(c, "support", pulumi.Output.secret("admin"), verifiers),
    )


def _server(c: PerimeterConfig) -> Any:
    server = c.mcp_servers[0]
    tool_secrets = {t.name: f"secret-{t.name}" for t in server.tools}
    return McpServer("mcp", McpServerArgs(_placement(c), server, tool_secrets, "token-secret"))


CONNECTION = {"api_key": pulumi.Output.secret("sk-test"), "base_url": None, "workspace_id": None}


def _tunnel(c: PerimeterConfig) -> Any:
    return McpTunnel("tunnel", tunnel_args(c, offline_secrets(c), CONNECTION))


def _sandbox(c: PerimeterConfig) -> Any:
    pool = c.sandboxes[0]
    return SandboxPool("sandbox", sandbox_pool_args(c, pool, "<key>", "env_pending1234"))


def _environment(c: PerimeterConfig) -> Any:
    return SandboxEnvironment(
        "env", SandboxEnvironmentArgs(c.environment, c.sandboxes[0], CONNECTION)
    )


def _vault(c: PerimeterConfig) -> Any:
    names = [s.name for s in c.mcp_servers]
    return PlatformVault(
        "platform",
        PlatformVaultArgs(
            c.environment,
            c.vault,
            c.mcp_servers,
            CONNECTION,
            urls={n: c.mcp_url(c.server(n)) for n in names},
            tokens={n: pulumi.Output.secret(f"token-{n}") for n in names},
            after={},
        ),
    )


def _agent(c: PerimeterConfig) -> Any:
    return AgentDefinition("agent", agent_args(c, c.agents[0], c.tunnel_domain, CONNECTION))


CASES: list[tuple[str, Callable[[PerimeterConfig], Any], str, dict[str, int]]] = [
    (
        "namespace",
        _namespace,
        "PerimeterNamespace",
        {f"{K8S}Namespace": 1, f"{K8S}ResourceQuota": 1, f"{K8S}LimitRange": 1},
    ),
    ("network", _network, "NetworkBoundary", {"kubernetes:networking.k8s.io/v1:NetworkPolicy": 10}),
    (
        "credentials",
        _credentials,
        "McpServerCredentials",
        {
            f"{K8S}Secret": 3,
            "random:index/randomPassword:RandomPassword": 2,  # the token slots
            "random:index/randomBytes:RandomBytes": 1,  # the key the tools' passwords come from
            f"{DYNAMIC}TokenRotation": 1,
        },
    ),
    (
        "provisioner",
        _provisioner,
        "RoleProvisioner",
        {
            f"{K8S}Secret": 2,
            f"{K8S}ConfigMap": 1,
            f"{K8S}ServiceAccount": 1,
            "kubernetes:batch/v1:Job": 1,
        },
    ),
    ("server", _server, "McpServer", {CHART_TYPE: 1}),
    (
        "tunnel",
        _tunnel,
        "McpTunnel",
        {f"{K8S}Secret": 2, CHART_TYPE: 1, f"{DYNAMIC}Tunnel": 1, f"{DYNAMIC}TunnelCertificate": 1},
    ),
    ("sandbox", _sandbox, "SandboxPool", {f"{K8S}Secret": 1, CHART_TYPE: 1}),
    ("environment", _environment, "SandboxEnvironment", {f"{DYNAMIC}Environment": 1}),
    ("vault", _vault, "PlatformVault", {f"{DYNAMIC}Vault": 1, f"{DYNAMIC}VaultCredential": 4}),
    ("agent", _agent, "AgentDefinition", {f"{K8S}ConfigMap": 1, f"{DYNAMIC}Agent": 1}),
]


def _register_alone(
    make: Callable[[PerimeterConfig], Any], config: PerimeterConfig
) -> RecordingMocks:
    """Construct one component with nothing else around it, under fresh mocks."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="dev", preview=False)

    @pulumi.runtime.test
    def run() -> pulumi.Output:
        return make(config).urn

    run()
    return mocks


@pytest.mark.parametrize(
    ("make", "component", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_component_registers_its_children_under_itself(
    dev_config: PerimeterConfig, make: Callable, component: str, expected: dict[str, int]
) -> None:
    mocks = _register_alone(make, dev_config)
    custom = [r for r in mocks.resources if not r.type.startswith("agent-perimeter:")]
    assert Counter(r.type for r in custom) == expected
    urns = [u for u in SETTINGS.monitor.resources if "$" in u.split("::")[2]]
    children = [u for u in urns if not u.split("::")[2].endswith(component)]
    assert len(children) == len(custom)
    assert all(f"agent-perimeter:index:{component}$" in u for u in children)


def test_server_chart_gets_secret_names_never_values(dev_config: PerimeterConfig) -> None:
    mocks = _register_alone(_server, dev_config)
    (chart,) = [r for r in mocks.resources if r.type == CHART_TYPE]
    values = plain(chart.inputs["values"])
    assert chart.inputs["chart"] == str(REPO_ROOT / "charts" / "mcp-server")
    assert chart.inputs["namespace"] == dev_config.namespace
    server = dev_config.mcp_servers[0]
    assert [c["secretName"] for c in values["toolCredentials"]] == [
        f"secret-{t.name}" for t in server.tools
    ]
    assert values["platformToken"] == {"secretName": "token-secret"}
    assert values["image"]["repository"] == server.image.repository
