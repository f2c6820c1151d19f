"""`audit --tools`: a running server's tools/list against the stack's grants and allowlists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.pure.config import PERIMETER_KEY
from tests.conftest import REPO_ROOT, raw_settings, run_infra
from tests.servers.conftest import SERVER
from tests.servers.harness import RunningServer

pytestmark = pytest.mark.postgres


def _ask(
    running: RunningServer, tmp_path: Path, *source: str, token: str | None = None
) -> tuple[int, str, str]:
    bearer, ca = tmp_path / "bearer", tmp_path / "ca.pem"
    bearer.write_text(running.files.token if token is None else token)
    ca.write_text(running.files.ca_pem)
    proc = run_infra(
        "audit", *source, "--tools", f"{SERVER}={running.url}",
        "--bearer-file", str(bearer), "--ca-file", str(ca), timeout=120,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def test_the_dev_export_server_advertises_exactly_its_tools(
    running: RunningServer, tmp_path: Path
) -> None:
    code, out, err = _ask(running, tmp_path, "--stack", "dev")
    assert code == 0, err
    assert "Every tool is granted, allowlisted and advertised." in out
    for tool in ("get_latest_export_job", "retry_export_job", "get_export_download_url"):
        assert f"| {tool} | yes | yes | yes |" in out
    assert running.files.token not in out + err


def test_a_tool_granted_but_not_served_is_a_mismatch(
    running: RunningServer, tmp_path: Path
) -> None:
    raw = raw_settings("dev")
    exports = next(s for s in raw["mcp_servers"] if s["name"] == SERVER)
    exports["tools"].append(
        {"name": "cancel_export_job", "access": "write", "tenant_column": "tenant_id",
         "grants": [{"table": "exports.jobs", "privileges": ["SELECT"], "columns": ["id", "tenant_id"]}]}
    )  # fmt: skip
    for agent in raw["agents"]:  # the prompts stay where the shipped stack keeps them
        agent["system_prompt_file"] = str(REPO_ROOT / agent["system_prompt_file"])
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text(yaml.safe_dump({"config": {PERIMETER_KEY: raw}}))
    code, out, err = _ask(running, tmp_path, "--config", str(stack), "--format", "json")
    assert code == 1, err
    problems = json.loads(out)["problems"]
    # The export-ticket-agent allows all of the server's tools, the new one too.
    assert problems == ["exports: granted but not advertised: cancel_export_job"]


def test_a_server_that_refuses_the_bearer_is_named_not_guessed(
    running: RunningServer, tmp_path: Path
) -> None:
    code, out, err = _ask(running, tmp_path, "--stack", "dev", token="not-the-token")
    assert code == 2 and not out
    assert f"error: {running.url}: could not list its tools" in err
    assert "not-the-token" not in err


def test_usage_errors_name_the_option(tmp_path: Path) -> None:
    proc = run_infra(
        "audit",
        "--stack",
        "dev",
        "--tools",
        "payroll=https://x/mcp",
        "--bearer-file",
        str(tmp_path / "b"),
    )
    assert (
        proc.returncode == 2
        and "--tools: 'payroll' is not an MCP server of the stack" in proc.stderr
    )
    proc = run_infra("audit", "--stack", "dev", "--bearer-file", "x")
    assert proc.returncode == 2 and "--bearer-file and --ca-file apply with --tools" in proc.stderr
