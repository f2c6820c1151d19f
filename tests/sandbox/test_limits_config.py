"""The pool's limits are checked when the stack file is read, before anything is deployed."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.lib.tools._beta_session_runner import TOOL_TIMEOUT
from pydantic import ValidationError

from infra.engine.components.mcp_tunnel import tunnel_routes
from infra.engine.components.sandbox_pool import sandbox_values
from infra.engine.stack import sandbox_pool_args
from infra.pure.config import SandboxPool, load
from tests.conftest import run_infra


def pool(**fields: Any) -> SandboxPool:
    return SandboxPool.model_validate(
        {
            "name": "support",
            "environment_id": "env_01JTESTsandbox1",
            "image": "ghcr.io/example/w:1",
            **fields,
        }
    )


def problems(**fields: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        pool(**fields)
    return {".".join(map(str, e["loc"])) or "(pool)": e["msg"] for e in caught.value.errors()}


def test_the_warning_threshold_is_the_sdks_own_per_call_timeout() -> None:
    assert SandboxPool.SDK_TOOL_CALL_TIMEOUT_SECONDS == TOOL_TIMEOUT


def test_a_run_timeout_from_ten_seconds_is_accepted_and_below_it_refused() -> None:
    assert pool(run_timeout_seconds=60).run_timeout_seconds == 60
    assert pool(run_timeout_seconds=10).run_timeout_seconds == 10
    found = problems(run_timeout_seconds=5)
    assert list(found) == ["run_timeout_seconds"]
    assert "greater than or equal to 10" in found["run_timeout_seconds"]


def test_a_run_timeout_under_one_tool_call_is_warned_about_once() -> None:
    (warning,) = pool(run_timeout_seconds=60).warnings
    assert warning.startswith("sandboxes.support.run_timeout_seconds: 60s is shorter than")
    assert "150s" in warning and "tool error" in warning
    assert pool(run_timeout_seconds=150).warnings == []


def test_a_grace_period_shorter_than_a_run_plus_the_drain_is_refused() -> None:
    (message,) = problems(
        run_timeout_seconds=600, drain_seconds=30, termination_grace_period_seconds=120
    ).values()
    assert "termination_grace_period_seconds (120) must be at least" in message
    assert "run_timeout_seconds + drain_seconds (630)" in message
    assert (
        pool(run_timeout_seconds=600, termination_grace_period_seconds=630).grace_period_seconds
        == 630
    )


def test_the_grace_period_defaults_to_a_run_plus_the_drain() -> None:
    assert pool().grace_period_seconds == 1800 + 30
    assert pool(run_timeout_seconds=300, drain_seconds=60).grace_period_seconds == 360


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_chart_gets_every_limit_of_the_stack(stack: str) -> None:
    config = load(stack=stack)
    for sandbox in config.sandboxes:
        values = sandbox_values(sandbox_pool_args(config, sandbox, "<key>"))
        assert values["worker"] == {
            "maxIdle": sandbox.max_idle,
            "runTimeoutSeconds": sandbox.run_timeout_seconds,
            "maxToolCalls": sandbox.max_tool_calls,
            "drainSeconds": sandbox.drain_seconds,
        }
        assert values["terminationGracePeriodSeconds"] == sandbox.grace_period_seconds


def test_dev_ships_the_walkthroughs_sixty_second_pool_and_the_render_warns(tmp_path: Any) -> None:
    config = load("dev")
    agent = next(a for a in config.agents if a.name == "export-ticket-agent")
    walkthrough = config.pool(agent.sandbox)
    assert (walkthrough.run_timeout_seconds, walkthrough.max_tool_calls) == (60, 8)
    rendered = run_infra("render", "--stack", "dev", "--out", str(tmp_path / "dev"))
    assert rendered.returncode == 0, rendered.stderr
    warnings = [line for line in rendered.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: {walkthrough.warnings[0]}"]


@pytest.mark.parametrize("tls", [True, False])
def test_a_direct_pool_dials_the_scheme_the_server_serves(tls: bool) -> None:
    """The tunnel's proxy and a direct pool reach a server at one origin: https while it
    serves the managed certificate, http only when `upstream_tls` is off."""
    config = load("dev")
    server = config.mcp_servers[0]
    config = config.model_copy(
        update={"upstream_tls": config.upstream_tls.model_copy(update={"enabled": tls})}
    )
    pool = config.sandboxes[0].model_copy(update={"direct_mcp_access": [server.name]})
    (entry,) = sandbox_values(sandbox_pool_args(config, pool, "<key>"))["mcpServers"]
    origin = tunnel_routes(config.namespace, config.mcp_servers, tls)[server.route_name]
    assert entry == {"name": server.name, "url": origin + server.path}
    assert origin.startswith("https://" if tls else "http://")
