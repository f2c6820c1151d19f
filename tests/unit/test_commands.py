"""The offline commands as a user runs them: output, exit codes, nothing secret printed."""

from __future__ import annotations

import json
import re

from infra.pure.config import load
from tests.conftest import REPO_ROOT, run_infra


def test_agent_config_prints_both_halves_in_agreement() -> None:
    proc = run_infra("agent-config", "--stack", "dev")
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    domain = document["tunnel_domain"]  # a placeholder until the platform assigns it
    agents = {a["name"]: a for a in document["agents"]}
    assert set(agents) == {"export-ticket-agent", "inventory-agent", "invoice-reconciler"}
    exporter = agents["export-ticket-agent"]
    assert exporter["model"] and exporter["system"].startswith(
        "You help support staff with customers' data exports"
    )
    servers = {s["name"]: s["url"] for s in exporter["mcp_servers"]}
    assert servers == {"exports": f"https://exports.{domain}/mcp"}
    assert [t["mcp_server_name"] for t in exporter["tools"]] == list(servers)
    configs = {c["name"]: c for t in exporter["tools"] for c in t["configs"]}
    assert configs["get_latest_export_job"]["permission_policy"] == {"type": "always_allow"}
    assert configs["get_export_download_url"]["permission_policy"] == {"type": "always_allow"}
    assert configs["retry_export_job"]["permission_policy"] == {"type": "always_ask"}
    reconciler = agents["invoice-reconciler"]
    tools = [c["name"] for t in reconciler["tools"] for c in t["configs"]]
    assert tools == ["get_ticket", "lookup_stock", "get_invoice"]  # a subset: reads only


def test_agent_config_accepts_a_stack_file_path() -> None:
    by_path = run_infra("agent-config", "--config", str(REPO_ROOT / "Pulumi.prod.yaml"))
    by_name = run_infra("agent-config", "--stack", "prod")
    assert by_path.returncode == 0 and by_path.stdout == by_name.stdout


def test_db_sql_prints_every_role_without_any_password() -> None:
    proc = run_infra("db-sql", "--stack", "dev")
    assert proc.returncode == 0, proc.stderr
    config = load(stack="dev")
    for server in config.mcp_servers:
        for tool in server.tools:
            role = f"mcp_{server.name}_{tool.name}"
            if server.database is None:  # an HTTP-backed server's tools hold no role
                assert role not in proc.stdout
                continue
            assert f'"{role}"' in proc.stdout or role in proc.stdout
            assert f"VERIFIER_{role.upper()}" in proc.stdout  # bound at run time by the Job
    assert not re.search(r"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]{8,}\$", proc.stdout)
    assert not re.search(r"^\s*GRANT ALL", proc.stdout, re.MULTILINE)
    assert not re.search(r"TO PUBLIC", proc.stdout)


def test_db_sql_rejects_an_unknown_database() -> None:
    proc = run_infra("db-sql", "--stack", "dev", "--database", "billing")
    assert proc.returncode == 2
    assert "'billing' is not used by any MCP server" in proc.stdout + proc.stderr


def test_missing_stack_is_a_clear_error() -> None:
    proc = run_infra("render", "--stack", "qa", "--out", "build/qa")
    assert proc.returncode == 2
    assert "Pulumi.qa.yaml does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
