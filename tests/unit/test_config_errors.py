"""Bad input gets one readable message naming each field, and nothing is registered."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, load, parse_perimeter
from tests.conftest import REPO_ROOT, raw_settings

PINNED = "@sha256:" + "a" * 64


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(raw: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node: Any = raw
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if leaf.isdigit():
            node[int(leaf)] = value
        else:
            node[leaf] = value

    return apply


def _too_many_servers(raw: dict[str, Any]) -> None:
    template = raw["mcp_servers"][0]
    raw["mcp_servers"] = [
        {**template, "name": f"server-{i}", "route": f"server-{i}"} for i in range(21)
    ]
    raw["sandboxes"][0]["direct_mcp_access"] = []


def _duplicate_server(raw: dict[str, Any]) -> None:
    raw["mcp_servers"][1]["name"] = raw["mcp_servers"][0]["name"]


def _long_role(raw: dict[str, Any]) -> None:
    raw["mcp_servers"][0]["name"] = "s" * 30
    raw["mcp_servers"][0]["route"] = "tickets"
    raw["sandboxes"][0]["direct_mcp_access"] = []
    raw["mcp_servers"][0]["tools"][0]["name"] = "t" * 30


def _prod_unpinned(raw: dict[str, Any]) -> None:
    raw["tier"] = "prod"


BAD_INPUTS = [
    (
        "uppercase server name",
        _set("mcp_servers.0.name", "Tickets"),
        "mcp_servers[0].name",
        "is not a DNS label",
    ),
    (
        "server name with a quote",
        _set("mcp_servers.0.name", "tick'ets"),
        "mcp_servers[0].name",
        "is not a DNS label",
    ),
    (
        "tool name with a semicolon",
        _set("mcp_servers.0.tools.0.name", "get;drop"),
        "mcp_servers[0].tools[0].name",
        "not a safe SQL identifier",
    ),
    (
        "cyrillic look-alike in a table",
        _set("mcp_servers.0.tools.0.grants.0.table", "support.tick\u0435ts"),
        "mcp_servers[0].tools[0].grants[0].table",
        "not a table written schema.table",
    ),
    (
        "undeclared server in the sandbox allowlist",
        _set("sandboxes.0.direct_mcp_access", ["billing"]),
        "sandboxes[0].direct_mcp_access[0]",
        "'billing' is not a declared MCP server",
    ),
    (
        "duplicate server names",
        _duplicate_server,
        "mcp_servers[1].name",
        "is already used by mcp_servers[0]",
    ),
    ("more than 20 servers", _too_many_servers, "mcp_servers", "at most 20"),
    ("unpinned images in prod", _prod_unpinned, "mcp_servers[0].image", "is not pinned by digest"),
    (
        "unknown key",
        _set("tunnel.replica", 3),
        "tunnel.replica",
        "unknown key; allowed keys here: id, domain, display_name, token_epoch, replicas",
    ),
    (
        "privilege outside the allowlist",
        _set("mcp_servers.0.tools.1.grants.0.privileges", ["TRUNCATE"]),
        "mcp_servers[0].tools[1].grants[0].privileges[0]",
        "'SELECT', 'INSERT', 'UPDATE' or 'DELETE'",
    ),
    (
        "a read tool that writes",
        _set("mcp_servers.0.tools.0.grants.0.privileges", ["SELECT", "DELETE"]),
        "mcp_servers[0].tools[0].grants[0]",
        "a read tool may only hold SELECT, not DELETE",
    ),
    (
        "a write tool that never asks",
        _set("mcp_servers.0.tools.1.permission_policy", "always_allow"),
        "mcp_servers[0].tools[1]",
        "must be always_ask",
    ),
    (
        "metadata address reachable",
        _set("databases.support.cidrs", ["169.254.0.0/16"]),
        "databases.support.cidrs[0]",
        "169.254.169.254",
    ),
    (
        "egress to everything",
        _set("databases.support.cidrs", ["0.0.0.0/0"]),
        "databases.support.cidrs[0]",
        "whole internet",
    ),
    (
        "tunnel id without prefix",
        _set("tunnel.id", "abc123"),
        "tunnel.id",
        "should match pattern '^tnl_",
    ),
    (
        "undeclared database",
        _set("mcp_servers.1.database", "billing"),
        "mcp_servers[1].database",
        "'billing' is not declared under databases",
    ),
    (
        "replica range upside down",
        _set("sandboxes.0.min_replicas", 9),
        "sandboxes[0]",
        "must not exceed max_replicas",
    ),
    (
        "database role longer than PostgreSQL allows",
        _long_role,
        "mcp_servers[0].tools[0].name",
        "PostgreSQL allows 63",
    ),
    (
        "image without tag or digest",
        _set("sandboxes.0.image", "ghcr.io/example/worker"),
        "sandboxes[0].image",
        "is not an image reference with a tag or digest",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_names_the_field(mutate: Callable, field: str, message: str) -> None:
    raw = raw_settings("dev")
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, "Pulumi.dev.yaml")
    problems = dict(caught.value.problems)
    assert field in problems, f"{field} not reported; got {list(problems)}"
    assert message in problems[field]
    assert "nothing was deployed or written" in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    raw = raw_settings("dev")
    raw["tier"] = "prod"
    raw["sandboxes"][0]["direct_mcp_access"] = ["nope"]
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, "x")
    fields = [path for path, _ in caught.value.problems]
    assert "sandboxes[0].direct_mcp_access[0]" in fields
    assert sum("image" in f for f in fields) == 6


def test_pinned_prod_config_is_accepted() -> None:
    raw = raw_settings("dev")
    raw["tier"] = "prod"
    for server in raw["mcp_servers"]:
        server["image"] += PINNED
    for path in ("proxy_image", "cloudflared_image"):
        raw["tunnel"][path] += PINNED
    raw["sandboxes"][0]["image"] += PINNED
    raw["provisioner"]["image"] += PINNED
    config = parse_perimeter(raw, "x")
    assert all(image.pinned for _, image in config.images())


def test_unknown_project_key_in_stack_file(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["agent-perimeter:tunelToken"] = "x"
    path = tmp_path / "Pulumi.typo.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match="agent-perimeter:tunelToken: unknown key"):
        load(config_file=path)


def test_cli_reports_errors_without_traceback_and_writes_nothing(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["agent-perimeter:perimeter"]["mcp_servers"][0]["name"] = "Bad_Name"
    stack_file = tmp_path / "Pulumi.bad.yaml"
    stack_file.write_text(yaml.safe_dump(document))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "infra", "render", "--config", str(stack_file), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode == 2
    assert "mcp_servers[0].name: 'Bad_Name' is not a DNS label" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_old_single_pool_shape_says_what_to_change() -> None:
    raw = raw_settings("dev")
    raw["sandbox"] = raw.pop("sandboxes")[0] | {"mcp_servers": ["tickets"]}
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, "Pulumi.dev.yaml")
    problems = dict(caught.value.problems)
    assert "replaced by `sandboxes:`" in problems["sandbox"]
    assert "direct_mcp_access" in problems["sandbox"]


def test_renamed_pool_allowlist_says_what_to_change() -> None:
    raw = raw_settings("dev")
    raw["sandboxes"][0]["mcp_servers"] = ["tickets"]
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, "Pulumi.dev.yaml")
    assert "renamed `direct_mcp_access`" in dict(caught.value.problems)["sandboxes[0].mcp_servers"]


def test_old_environment_key_secret_says_what_to_change(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["agent-perimeter:environmentKey"] = {"secure": "x"}
    path = tmp_path / "Pulumi.old.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match="replaced by environmentKeys"):
        load(config_file=path)


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [
        (_set("agents.0.sandbox", "billing"), "agents[0].sandbox", "is not a sandbox pool"),
        (
            _set("agents.0.mcp_servers", [{"server": "billing"}]),
            "agents[0].mcp_servers[0].server",
            "is not a declared MCP server",
        ),
        (
            _set("agents.0.mcp_servers", [{"server": "tickets", "tools": ["drop_all"]}]),
            "agents[0].mcp_servers[0].tools[0]",
            "is not a tool of tickets",
        ),
        (
            _set("agents.0.mcp_servers", [{"server": "tickets"}, {"server": "tickets"}]),
            "agents[0].mcp_servers[1].server",
            "is already used",
        ),
        (_set("agents.1.name", "export-ticket-agent"), "agents[1].name", "is already used"),
        (
            _set("platform", {"enabled": False}),
            "tunnel",
            "give the hand-made tunnel's `id` and `domain`",
        ),
        (
            _set("agents.0.system_prompt_file", "prompts/missing.md"),
            "agents[0].system_prompt_file",
            "relative to the stack file",
        ),
    ],
)
def test_agents_and_pools_are_checked(mutate: Callable, field: str, message: str) -> None:
    raw = raw_settings("dev")
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, str(REPO_ROOT / "Pulumi.dev.yaml"))
    problems = dict(caught.value.problems)
    assert field in problems, f"{field} not reported; got {list(problems)}"
    assert message in problems[field]
