"""The platform side under Pulumi mocks and offline: inputs, secrets, platform.json, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra.offline.mocked import PLATFORM_TYPE_PREFIX, RecordingMocks, synthesize
from infra.pure.config import PerimeterConfig, load_pulumi
from tests.conftest import REPO_ROOT, raw_settings

SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _platform(config: PerimeterConfig, kind: str) -> list[Any]:
    return [r for r in synthesize(config).resources if r.type == f"{PLATFORM_TYPE_PREFIX}{kind}"]


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) is not None


def test_tokens_and_the_api_key_reach_the_engine_only_as_secrets(
    dev_config: PerimeterConfig,
) -> None:
    resources = synthesize(dev_config).resources
    platform = [r for r in resources if r.type.startswith(PLATFORM_TYPE_PREFIX)]
    for resource in platform:
        if "connection" in resource.raw_inputs:
            assert _is_secret(resource.raw_inputs["connection"]), resource.name
    credentials = [r for r in platform if r.type.endswith(":VaultCredential")]
    assert credentials and all(_is_secret(r.raw_inputs["token"]) for r in credentials)


def test_one_url_feeds_credential_agent_and_route(dev_config: PerimeterConfig) -> None:
    synthesis = synthesize(dev_config)
    by_type: dict[str, list[Any]] = {}
    for r in synthesis.resources:
        by_type.setdefault(r.type.rsplit(":", 1)[-1], []).append(r.inputs)
    credential_urls = {c["display_name"]: c["mcp_server_url"] for c in by_type["VaultCredential"]}
    agent_urls = {s["url"] for a in by_type["Agent"] for s in a["mcp_servers"]}
    assert agent_urls == set(credential_urls.values())
    (tunnel,) = [c for c in synthesis.resources if c.name == "mcp-tunnel"]
    domain = tunnel.inputs["values"]["tunnel"]["domain"]
    routes = tunnel.inputs["values"]["routes"]
    assert {f"https://{route}.{domain}/mcp" for route in routes} == agent_urls


def test_agents_carry_name_model_prompt_and_their_allowlist(dev_config: PerimeterConfig) -> None:
    agents = {r.inputs["name"]: r.inputs for r in _platform(dev_config, "Agent")}
    reconciler = agents["invoice-reconciler"]
    assert reconciler["model"] == "claude-opus-5"
    assert reconciler["system"].startswith("You reconcile invoices")
    assert [s["name"] for s in reconciler["mcp_servers"]] == ["tickets", "inventory", "billing"]
    assert reconciler["metadata"]["sandbox_pool"] == "support"


def test_one_environment_per_pool(shipped_config: PerimeterConfig) -> None:
    names = sorted(r.inputs["name"] for r in _platform(shipped_config, "Environment"))
    expected = sorted(
        f"agent-perimeter-{shipped_config.environment}-{p.name}" for p in shipped_config.sandboxes
    )
    assert names == expected


def test_render_writes_platform_json_without_key_or_secret(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "infra", "render", "--stack", "staging", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={"PATH": str(REPO_ROOT / ".tools/bin") + ":/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads((tmp_path / "platform.json").read_text())
    assert document["managed"] is True
    assert len(document["environments"]) == 2 and len(document["agents"]) == 3
    credentials = document["vault_credentials"]
    assert {c["token"] for c in credentials} == {"<redacted>"}
    assert {c["mcp_server_url"] for c in credentials} == {
        s["url"] for a in document["agents"] for s in a["mcp_servers"]
    }
    text = (tmp_path / "platform.json").read_text()
    assert "<secret:" not in text and "__provider" not in text and 'api_key": "<' not in text
    assert "platform.json" in proc.stdout
    check = subprocess.run(
        [sys.executable, "-m", "infra", "check", str(tmp_path), "--tier", "staging"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr  # platform.json is not a manifest


def test_disabled_platform_keeps_the_outputs_only_mode(tmp_path: Path) -> None:
    raw = raw_settings("dev")
    raw["platform"] = {"enabled": False}
    raw["tunnel"].update(id="tnl_01JDEVexample7Q", domain="mcp-dev.example.com")
    for i, pool in enumerate(raw["sandboxes"]):
        pool["environment_id"] = f"env_01JDEVsandbox{i}X"
    document = {"config": {"agent-perimeter:perimeter": raw}}
    stack = tmp_path / "Pulumi.handmade.yaml"
    stack.write_text(yaml.safe_dump(document))
    (tmp_path / "prompts").symlink_to(REPO_ROOT / "prompts")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "infra", "render", "--config", str(stack), "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    platform = json.loads((out / "platform.json").read_text())
    assert platform["managed"] is False
    urls = {c["mcp_server_url"] for c in platform["vault_credentials"]}
    assert urls == {
        "https://exports.mcp-dev.example.com/mcp",
        "https://tickets.mcp-dev.example.com/mcp",
        "https://inventory.mcp-dev.example.com/mcp",
        "https://billing.mcp-dev.example.com/mcp",
    }
    assert {c["token"] for c in platform["vault_credentials"]} == {"<redacted>"}


@pytest.fixture
def stack_config() -> Any:
    def configure(secrets: dict[str, Any]) -> None:
        values = {"agent-perimeter:perimeter": json.dumps(raw_settings("dev"))}
        values.update(
            {
                f"agent-perimeter:{k}": json.dumps(v) if isinstance(v, dict) else v
                for k, v in secrets.items()
            }
        )
        pulumi.runtime.set_all_config(values, [f"agent-perimeter:{k}" for k in secrets])

    yield configure
    pulumi.runtime.set_all_config({})


def test_up_without_the_api_key_names_it(stack_config: Any) -> None:
    pulumi.runtime.set_mocks(RecordingMocks(), project="agent-perimeter", stack="dev")
    stack_config(
        {
            "tunnelTlsCert": "c",
            "tunnelTlsKey": "k",
            "tunnelCaCert": "ca",
            "environmentKeys": {"support": "e"},
            "databaseAdminPasswords": {"support": "p"},
        }
    )
    with pytest.raises(pulumi.RunError) as caught:
        load_pulumi()
    text = str(caught.value)
    assert "agent-perimeter:platformApiKey: missing" in text
    assert "nothing was deployed or written" in text
