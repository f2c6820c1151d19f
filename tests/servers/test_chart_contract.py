"""The chart and the runtime read one contract: every variable the chart sets for a server of a
shipped stack is one the runtime reads, MCP_TOOLS is the stack's tools, the probes are its paths."""

from __future__ import annotations

import re

import pytest

from infra.offline.mocked import render_environment
from infra.pure import naming
from infra.pure.config import load
from servers.runtime import app, contract
from tests.conftest import SHIPPED_STACKS

pytestmark = pytest.mark.helm

READ_BY_RUNTIME = {
    value
    for name, value in vars(contract).items()
    if name.isupper() and isinstance(value, str) and re.fullmatch(r"(MCP|DATABASE)_[A-Z_]+", value)
}
BACKEND = re.compile(r"^BACKEND_[A-Z0-9_]+_(HOST|PORT|TLS|CREDENTIAL_FILE)$")


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_server_gets_exactly_the_contract(stack: str) -> None:
    config = load(stack)
    deployments = {
        m["metadata"]["name"]: m for m in render_environment(config) if m["kind"] == "Deployment"
    }
    for server in config.mcp_servers:
        (container,) = deployments[naming.mcp_release(server)]["spec"]["template"]["spec"][
            "containers"
        ]
        env = {e["name"]: e.get("value") for e in container["env"]}
        contract_env = {name for name in env if name not in server.env}
        unknown = sorted(
            n for n in contract_env if n not in READ_BY_RUNTIME and not BACKEND.match(n)
        )
        assert not unknown, (
            f"{stack}/{server.name}: the chart sets {unknown}, which the runtime never reads"
        )
        assert env[contract.TOOLS].split(",") == [t.name for t in server.tools]
        prefixes = tuple(f"BACKEND_{contract.backend_key(b.name)}_" for b in server.backends)
        assert all(n.startswith(prefixes) for n in contract_env if BACKEND.match(n))
        assert container["livenessProbe"]["httpGet"]["path"] == app.LIVEZ
        assert container["readinessProbe"]["httpGet"]["path"] == app.READYZ
        assert all("valueFrom" not in e for e in container["env"]), "credentials are files"
