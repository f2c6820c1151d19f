"""Bad input gets one readable message naming each field, and nothing is registered."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.offline.mocked import render_environment
from infra.pure.config import MAX_EPOCH, MAX_PROMPT_BYTES, ConfigError, load, parse_perimeter
from infra.pure.config.cross_references import config_images
from infra.pure.naming import generated_secret_names
from tests.conftest import REPO_ROOT, assert_refused, raw_settings

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
    template = raw["mcp_servers"][1]
    raw["mcp_servers"] = [
        {**template, "name": f"server-{i}", "route": f"server-{i}"} for i in range(21)
    ]
    raw["sandboxes"][0]["direct_mcp_access"] = []


def _duplicate_server(raw: dict[str, Any]) -> None:
    raw["mcp_servers"][2]["name"] = raw["mcp_servers"][1]["name"]


def _long_role(raw: dict[str, Any]) -> None:
    raw["mcp_servers"][1]["name"] = "s" * 30
    raw["mcp_servers"][1]["route"] = "tickets"
    raw["sandboxes"][0]["direct_mcp_access"] = []
    raw["mcp_servers"][1]["tools"][0]["name"] = "t" * 30


def _prod_unpinned(raw: dict[str, Any]) -> None:
    raw["tier"] = "prod"


BAD_INPUTS = [
    (
        "uppercase server name",
        _set("mcp_servers.1.name", "Tickets"),
        "mcp_servers[1].name",
        "is not a DNS label",
    ),
    (
        "server name with a quote",
        _set("mcp_servers.1.name", "tick'ets"),
        "mcp_servers[1].name",
        "is not a DNS label",
    ),
    (
        "tool name with a semicolon",
        _set("mcp_servers.1.tools.0.name", "get;drop"),
        "mcp_servers[1].tools[0].name",
        "not a safe SQL identifier",
    ),
    (
        "cyrillic look-alike in a table",
        _set("mcp_servers.1.tools.0.grants.0.table", "support.tick\u0435ts"),
        "mcp_servers[1].tools[0].grants[0].table",
        "not a table written schema.table",
    ),
    (
        "undeclared server in the sandbox allowlist",
        _set("sandboxes.0.direct_mcp_access", ["payroll"]),
        "sandboxes[0].direct_mcp_access[0]",
        "'payroll' is not a declared MCP server",
    ),
    (
        "duplicate server names",
        _duplicate_server,
        "mcp_servers[2].name",
        "is already used by mcp_servers[1]",
    ),
    ("more than 20 servers", _too_many_servers, "mcp_servers", "at most 20"),
    ("unpinned images in prod", _prod_unpinned, "mcp_servers[1].image", "is not pinned by digest"),
    (
        "unknown key",
        _set("tunnel.replica", 3),
        "tunnel.replica",
        "unknown key; allowed keys here: id, domain, display_name, token_epoch, replicas",
    ),
    (
        "privilege outside the allowlist",
        _set("mcp_servers.1.tools.1.grants.0.privileges", ["TRUNCATE"]),
        "mcp_servers[1].tools[1].grants[0].privileges[0]",
        "'SELECT', 'INSERT', 'UPDATE' or 'DELETE'",
    ),
    (
        "a read tool that writes",
        _set("mcp_servers.1.tools.0.grants.0.privileges", ["SELECT", "DELETE"]),
        "mcp_servers[1].tools[0].grants[0]",
        "a read tool may only hold SELECT, not DELETE",
    ),
    (
        "a write tool that never asks",
        _set("mcp_servers.1.tools.1.permission_policy", "always_allow"),
        "mcp_servers[1].tools[1]",
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
        _set("mcp_servers.2.database", "billing"),
        "mcp_servers[2].database",
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
        "mcp_servers[1].tools[0].name",
        "PostgreSQL allows 63",
    ),
    (
        "image without tag or digest",
        _set("sandboxes.0.image", "ghcr.io/example/worker"),
        "sandboxes[0].image",
        "is not an image reference with a tag or digest",
    ),
]


def _secret_collision(raw: dict[str, Any]) -> None:
    """Tool `get_db_x` of server `tickets` and tool `x` of server `tickets-db-get` would both
    own Secret mcp-server-tickets-db-get-db-x ('_' becomes '-'), with distinct roles."""
    raw["mcp_servers"][2]["name"] = "tickets-db-get"
    raw["mcp_servers"][2]["route"] = "inventory"
    raw["mcp_servers"][2]["tools"][0]["name"] = "x"
    raw["mcp_servers"][1]["tools"][0]["name"] = "get_db_x"


def _role_collision(raw: dict[str, Any]) -> None:
    raw["mcp_servers"][2]["name"] = "tickets-get"
    raw["mcp_servers"][2]["tools"][0]["name"] = "ticket"
    raw["mcp_servers"][1]["tools"][0]["name"] = "get_ticket"


def _verify_full_without_ca(raw: dict[str, Any]) -> None:
    raw["databases"]["support"]["sslmode"] = "verify-full"


def _ca_with_key(raw: dict[str, Any]) -> None:
    raw["databases"]["support"]["sslmode"] = "verify-ca"
    raw["databases"]["support"]["ca_certificate"] = (
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )


def _columns_without_tenant(raw: dict[str, Any]) -> None:
    raw["mcp_servers"][1]["tools"][0]["grants"][0]["columns"] = ["id", "subject"]


# One class per block: strict types (no coercion), then each cross-field check.
STRICT_AND_CROSS_CHECKED = [
    ("port as a string", _set("mcp_servers.1.port", "8080"), "mcp_servers[1].port", "valid integer"),
    ("replicas as a boolean", _set("tunnel.replicas", True), "tunnel.replicas", "valid integer"),
    ("replicas as a float", _set("mcp_servers.1.replicas", 1.0), "mcp_servers[1].replicas", "valid integer"),
    ("epoch as a string", _set("rotation_epoch", "0"), "rotation_epoch", "valid integer"),
    ("cpu as a number", _set("sandboxes.0.resources", {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}), "sandboxes[0].resources.requests.cpu", "valid string"),
    ("label value as a boolean", _set("cluster.dns_pod_labels", {"k8s-app": True}), "cluster.dns_pod_labels.k8s-app", "valid string"),
    ("tier as a number", _set("tier", 1), "tier", "'dev', 'staging' or 'prod'"),
    ("host outside its cidrs", _set("databases.support.host", "10.20.0.16"), "databases.support.host", "outside cidrs (10.20.0.15/32)"),
    ("tenant column not granted", _columns_without_tenant, "mcp_servers[1].tools[0].grants[0].columns", "tenant column 'tenant_id' is not among the columns granted on support.tickets"),
    ("empty column list", _set("mcp_servers.2.tools.0.grants.0.columns", []), "mcp_servers[2].tools[0].grants[0].columns", "at least 1 item"),
    ("column named twice", _set("mcp_servers.2.tools.0.grants.0.columns", ["sku", "sku"]), "mcp_servers[2].tools[0].grants[0].columns", "column 'sku' is declared twice"),
    ("pg_catalog table", _set("mcp_servers.1.tools.0.grants.0.table", "pg_catalog.pg_authid"), "mcp_servers[1].tools[0].grants[0].table", "system schema 'pg_catalog'"),
    ("information_schema table", _set("mcp_servers.1.tools.0.grants.0.table", "information_schema.tables"), "mcp_servers[1].tools[0].grants[0].table", "system schema 'information_schema'"),
    ("pg_toast table", _set("mcp_servers.1.tools.0.grants.0.table", "pg_toast.pg_toast_1"), "mcp_servers[1].tools[0].grants[0].table", "system schema 'pg_toast'"),
    ("two tools, one Secret", _secret_collision, "mcp_servers[2].tools[0].name", "would also be the Secret of mcp_servers[1].tools[0].name"),
    ("two tools, one role", _role_collision, "mcp_servers[2].tools[0].name", "database role 'mcp_tickets_get_ticket' would also belong to"),
    ("namespace kube-system", _set("namespace", "kube-system"), "namespace", "reserved for the cluster"),
    ("namespace default", _set("namespace", "default"), "namespace", "reserved for the cluster"),
    ("namespace kube-node-lease", _set("namespace", "kube-node-lease"), "namespace", "reserved for the cluster"),
    ("cpu limit below request", _set("mcp_servers.1.resources", {"requests": {"cpu": "1", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}), "mcp_servers[1].resources.limits.cpu", "'500m' is below requests.cpu '1'"),
    ("memory limit below request", _set("sandboxes.0.resources", {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1000Mi"}}), "sandboxes[0].resources.limits.memory", "below requests.memory"),
    ("quota limit below request", _set("quota", {"requests_cpu": "8", "limits_cpu": "4"}), "quota.limits_cpu", "below requests_cpu"),
    ("tunnel domain as an IPv4 address", _set("tunnel.domain", "203.0.113.7"), "tunnel.domain", "is an IP address"),
    ("tunnel domain as an IPv6 address", _set("tunnel.domain", "2001:db8::1"), "tunnel.domain", "is an IP address"),
    ("path climbing out", _set("mcp_servers.1.path", "/mcp/../admin"), "mcp_servers[1].path", "not a normalised path"),
    ("path with an empty segment", _set("mcp_servers.1.path", "/mcp//v1"), "mcp_servers[1].path", "write '/mcp/v1'"),
    ("path with a dot segment", _set("mcp_servers.1.path", "/./mcp"), "mcp_servers[1].path", "not a normalised path"),
    ("path with a trailing slash", _set("mcp_servers.1.path", "/mcp/"), "mcp_servers[1].path", "write '/mcp'"),
    ("database cidr too broad", _set("databases.support.cidrs", ["10.0.0.0/8"]), "databases.support.cidrs[0]", "broader than /12"),
    ("ipv6 platform cidr too broad", _set("platform", {"api_cidrs": ["2600::/16"]}), "platform.api_cidrs[0]", "broader than /32"),
    ("configured prefix is honoured", lambda raw: raw.update(min_cidr_prefix={"ipv4": 24}), "cluster.service_cidrs[0]", "broader than /24"),
    ("verify-full without a CA", _verify_full_without_ca, "databases.support.ca_certificate", "give the CA's PEM certificate"),
    ("a private key as the CA", _ca_with_key, "databases.support.ca_certificate", "holds a private key"),
    ("a CA nobody checks", _set("databases.support.ca_certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "databases.support.ca_certificate", "never checks it"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "field", "message"),
    [case[1:] for case in [*BAD_INPUTS, *STRICT_AND_CROSS_CHECKED]],
    ids=[case[0] for case in [*BAD_INPUTS, *STRICT_AND_CROSS_CHECKED]],
)
def test_bad_input_names_the_field(mutate: Callable, field: str, message: str) -> None:
    assert_refused(mutate, field, message)


def test_every_problem_is_reported_at_once() -> None:
    raw = raw_settings("dev")
    raw["tier"] = "prod"
    raw["sandboxes"][0]["direct_mcp_access"] = ["nope"]
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, "x")
    fields = [path for path, _ in caught.value.problems]
    assert "sandboxes[0].direct_mcp_access[0]" in fields
    # every server and pool, the proxy, cloudflared and the provisioner
    assert sum("image" in f for f in fields) == len(raw["mcp_servers"]) + len(raw["sandboxes"]) + 3


def test_pinned_prod_config_is_accepted() -> None:
    raw = raw_settings("dev")
    raw["tier"] = "prod"
    for server in raw["mcp_servers"]:
        server["image"] += PINNED
    for path in ("proxy_image", "cloudflared_image"):
        raw["tunnel"][path] += PINNED
    for pool in raw["sandboxes"]:
        pool["image"] += PINNED
    raw["provisioner"]["image"] += PINNED
    config = parse_perimeter(raw, "x")
    assert all(image.pinned for _, image in config_images(config))


def test_unknown_project_key_in_stack_file(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["agent-perimeter:tunelToken"] = "x"
    path = tmp_path / "Pulumi.typo.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match="agent-perimeter:tunelToken: unknown key"):
        load(config_file=path)


def test_cli_reports_errors_without_traceback_and_writes_nothing(tmp_path: Path) -> None:
    document = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())
    document["config"]["agent-perimeter:perimeter"]["mcp_servers"][1]["name"] = "Bad_Name"
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
    assert "mcp_servers[1].name: 'Bad_Name' is not a DNS label" in proc.stderr
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
            _set("agents.0.mcp_servers", [{"server": "payroll"}]),
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


# --- the stack file itself: encoding, syntax, duplicate keys, secrets in plain text ------------

TOKEN = "tok_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
DEV_TEXT = (REPO_ROOT / "Pulumi.dev.yaml").read_text()


REPLICAS_LINE = DEV_TEXT.splitlines().index("      replicas: 1") + 1


def _with_secret_lines(*lines: str) -> str:
    return DEV_TEXT + "".join(f"  {line}\n" for line in lines)


def _dev_bytes_replacing(old: str, new: str) -> str:
    assert old in DEV_TEXT
    return DEV_TEXT.replace(old, new, 1)


# (case, file bytes, field path, message part)
BAD_FILES: list[tuple[str, bytes, str, str]] = [
    (
        "duplicate key",
        _dev_bytes_replacing(
            "      replicas: 1\n", "      replicas: 1\n      replicas: 3\n"
        ).encode(),
        "tunnel.replicas",
        f"key written twice (lines {REPLICAS_LINE} and {REPLICAS_LINE + 1})",
    ),
    (
        "duplicate top-level project key",
        _with_secret_lines("agent-perimeter:perimeter: {}").encode(),
        "config.agent-perimeter:perimeter",
        "key written twice",
    ),
    (
        "a key YAML reads as a boolean",
        _dev_bytes_replacing("      replicas: 1\n", "      replicas: 1\n      on: 3\n").encode(),
        "tunnel.on",
        "unknown key; allowed keys here: id, domain",
    ),
    (
        "a key YAML reads as a number",
        _dev_bytes_replacing("      replicas: 1\n", "      replicas: 1\n      8080: 3\n").encode(),
        "tunnel.8080",
        "unknown key",
    ),
    (
        "not UTF-8",
        DEV_TEXT.replace("Development", "D\xe9velopment").encode("latin-1"),
        "",
        "not UTF-8 text: byte 0xe9",
    ),
    (
        "YAML error on a secret's line",
        _with_secret_lines(f'agent-perimeter:tunnelToken: "{TOKEN}').encode(),
        "",
        "not valid YAML: line",
    ),
    (
        "YAML error after a secret on the line",
        _with_secret_lines(f"agent-perimeter:tunnelToken: {TOKEN}: [").encode(),
        "",
        "not valid YAML: line",
    ),
    (
        "a plain-text token",
        _with_secret_lines(f"agent-perimeter:tunnelToken: {TOKEN}").encode(),
        "agent-perimeter:tunnelToken",
        "written in plain text",
    ),
    (
        "a plain-text admin password",
        _with_secret_lines(
            "agent-perimeter:databaseAdminPasswords:", f"  support: {TOKEN}"
        ).encode(),
        "agent-perimeter:databaseAdminPasswords.support",
        "written in plain text",
    ),
]


def _write(tmp_path: Path, data: bytes) -> Path:
    """The stack file, with the agents' prompt files beside it as in the repository."""
    path = tmp_path / "Pulumi.case.yaml"
    path.write_bytes(data)
    prompts = tmp_path / "prompts"
    if not prompts.exists():
        prompts.symlink_to(REPO_ROOT / "prompts")
    return path


@pytest.mark.parametrize(
    ("data", "field", "message"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_stack_files_are_refused_without_echoing_them(
    tmp_path: Path, data: bytes, field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(config_file=_write(tmp_path, data))
    problems = caught.value.problems
    assert any(path == field and message in text for path, text in problems), problems
    assert TOKEN not in str(caught.value)


def test_encrypted_secrets_are_accepted(tmp_path: Path) -> None:
    text = _with_secret_lines(
        "agent-perimeter:tunnelToken:",
        "  secure: AAABAJ0nYmFzZTY0Y2lwaGVydGV4dA==",
        "agent-perimeter:databaseAdminPasswords:",
        "  support:",
        "    secure: AAABAGNpcGhlcnRleHQ=",
    )
    assert load(config_file=_write(tmp_path, text.encode())).environment == "dev"


def test_file_and_settings_problems_are_reported_together(tmp_path: Path) -> None:
    text = _dev_bytes_replacing("tier: dev", "tier: dev\n    tier: prod").replace(
        "port: 8080", 'port: "8080"', 1
    )
    text += f"  agent-perimeter:tunnelToken: {TOKEN}\n  agent-perimeter:tunelToken: x\n"
    with pytest.raises(ConfigError) as caught:
        load(config_file=_write(tmp_path, text.encode()))
    fields = [path for path, _ in caught.value.problems]
    assert fields == [
        "tier",
        "agent-perimeter:tunelToken",
        "agent-perimeter:tunnelToken",
        "mcp_servers[0].port",
    ]


@pytest.mark.parametrize("case", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_cli_refuses_bad_files_with_exit_2_and_writes_nothing(
    tmp_path: Path, case: tuple[str, bytes, str, str]
) -> None:
    _, data, _, message = case
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "infra", "render", "--config", str(_write(tmp_path, data)),
         "--out", str(out)],
        capture_output=True, text=True, cwd=REPO_ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout
    assert not out.exists()


DIGEST_SUFFIX = re.compile(r"-[0-9a-f]{10}$")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_collision_check_sees_every_secret_the_program_creates(stack: str) -> None:
    """A name the check never sees can collide unnoticed: each rendered Secret is one the
    check lists, by its whole name or, for a content digest, by the base it carries."""
    config = load(stack=stack)
    listed = {name for name, _ in generated_secret_names(config)}
    rendered = {
        m["metadata"]["name"] for m in render_environment(config) if m.get("kind") == "Secret"
    }
    based = {name if name in listed else DIGEST_SUFFIX.sub("", name) for name in rendered}
    assert based - listed == set(), "Secrets the collision check never sees"
    assert listed - based == set(), "the check lists a Secret never made"


def _prompt_escape(tmp_path: Path, how: str) -> str:
    """Lay out one kind of prompt file under `tmp_path/repo` (the stack file's directory);
    the path to give as `system_prompt_file`."""
    repo = tmp_path / "repo"
    (repo / "prompts").mkdir(parents=True)
    (tmp_path / "outside.md").write_text("outside the repository")
    prompt = repo / "prompts/p.md"
    if how == "absolute":
        return "/etc/passwd"
    if how == "dot-dot":
        return "prompts/../../outside.md"
    if how == "a directory":
        return "prompts"
    if how == "symlink out":
        prompt.symlink_to("/etc/passwd")
    elif how == "a symlink loop":
        prompt.symlink_to(prompt)
    elif how == "empty":
        prompt.write_text(" \n")
    elif how == "not UTF-8":
        prompt.write_bytes(b"\xff\xfe\x00")
    elif how == "too big":
        prompt.write_text("x" * (MAX_PROMPT_BYTES + 1))
    return "prompts/p.md"


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("absolute", "resolves outside"),
        ("dot-dot", "resolves outside"),
        ("symlink out", "resolves outside"),
        ("a directory", "not a regular file"),
        ("empty", "is empty"),
        ("not UTF-8", "not UTF-8"),
        ("too big", "bytes; a prompt file may have"),
        ("a symlink loop", "cannot read"),
    ],
)
def test_a_prompt_file_outside_the_repository_or_unfit_is_refused(
    tmp_path: Path, how: str, message: str
) -> None:
    relative = _prompt_escape(tmp_path, how)
    raw = raw_settings("dev")
    raw["agents"][0]["system_prompt_file"] = relative
    for agent in raw["agents"][1:]:
        agent["system_prompt_file"] = "ok.md"
    (tmp_path / "repo" / "ok.md").write_text("Answer tickets.")
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, str(tmp_path / "repo" / "Pulumi.dev.yaml"))
    problems = dict(caught.value.problems)
    assert list(problems) == ["agents[0].system_prompt_file"]
    assert message in problems["agents[0].system_prompt_file"]
    assert "root:" not in str(caught.value) and "outside the repository" not in str(caught.value)


@pytest.mark.parametrize("given", ["prompt.md", "absolute"])
def test_a_prompt_symlinked_inside_the_repository_is_read(tmp_path: Path, given: str) -> None:
    repo = tmp_path / "repo"
    (repo / "shared").mkdir(parents=True)
    (repo / "shared/base.md").write_text("Answer tickets.\n")
    (repo / "prompt.md").symlink_to(repo / "shared/base.md")
    raw = raw_settings("dev")
    for agent in raw["agents"]:
        agent["system_prompt_file"] = str(repo / "prompt.md") if given == "absolute" else given
    config = parse_perimeter(raw, str(repo / "Pulumi.dev.yaml"))
    assert config.system_prompt(config.agents[0]) == "Answer tickets."


BASE_URL_REFUSED = [
    ("http://api.example.com", "must be https://"),
    ("https://user:hunter2@api.example.com", "must not carry user or password"),
    ("https://token@api.example.com", "must not carry user or password"),
    ("https://169.254.169.254", "metadata, link-local or unspecified"),
    ("https://[fd00:ec2::254]", "metadata, link-local or unspecified"),
    ("https://[::ffff:169.254.169.254]", "metadata, link-local or unspecified"),
    ("https://2852039166", "metadata, link-local or unspecified"),  # 169.254.169.254
    ("https://0xa9fea9fe", "metadata, link-local or unspecified"),
    ("https://0251.0376.0251.0376", "metadata, link-local or unspecified"),
    ("https://169.254.43518", "metadata, link-local or unspecified"),
    ("https://169.254.10.1", "metadata, link-local or unspecified"),  # link-local
    ("https://[fe80::1]", "metadata, link-local or unspecified"),
    ("https://0.0.0.0", "metadata, link-local or unspecified"),
    ("https://[::]", "metadata, link-local or unspecified"),
]


@pytest.mark.parametrize(("url", "message"), BASE_URL_REFUSED)
def test_an_unsafe_platform_base_url_is_refused_without_repeating_it(
    url: str, message: str
) -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["platform"]["base_url"] = url

    assert_refused(mutate, "platform.base_url", message)
    raw = raw_settings("dev")
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, "Pulumi.dev.yaml")
    assert url not in str(caught.value) and "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.anthropic.com",
        "https://proxy.internal.example:8443/anthropic",
        "http://127.0.0.1:8080",
        "http://localhost:9999",
        "http://[::1]:8080",
        "https://10.0.0.8",
    ],
)
def test_a_safe_platform_base_url_is_accepted(url: str) -> None:
    raw = raw_settings("dev")
    raw["platform"]["base_url"] = url
    assert parse_perimeter(raw, "Pulumi.dev.yaml").platform.base_url == url


@pytest.mark.parametrize(
    ("field", "mutate"),
    [
        ("rotation_epoch", lambda raw: raw.__setitem__("rotation_epoch", MAX_EPOCH + 1)),
        ("tunnel.token_epoch", lambda raw: raw["tunnel"].__setitem__("token_epoch", 20261203)),
        (
            "mcp_servers[0].token_epoch",
            lambda raw: raw["mcp_servers"][0].__setitem__("token_epoch", MAX_EPOCH + 1),
        ),
    ],
)
def test_a_rotation_counter_past_its_bound_is_refused(
    field: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    assert_refused(mutate, field, f"less than or equal to {MAX_EPOCH}")


def test_the_largest_rotation_counters_still_make_valid_names() -> None:
    raw = raw_settings("dev")
    raw["rotation_epoch"] = MAX_EPOCH
    raw["tunnel"]["token_epoch"] = MAX_EPOCH
    for server in raw["mcp_servers"]:
        server["token_epoch"] = MAX_EPOCH
    names = generated_secret_names(parse_perimeter(raw, "Pulumi.dev.yaml"))
    too_long = [name for name, _ in names if len(name) > 63]
    assert names and too_long == [], too_long


LABELS_REFUSED = [
    ({"k8s-app": "kube dns"}, "k8s-app", "is not a Kubernetes label value"),
    ({"k8s-app": "x" * 64}, "k8s-app", "is not a Kubernetes label value"),
    ({"k8s-app": "-dns"}, "k8s-app", "is not a Kubernetes label value"),
    ({"bad key!": "x"}, "bad key!", "is not a Kubernetes label key"),
    ({"a" * 64: "x"}, "a" * 64, "is not a Kubernetes label key"),
    ({"Example.com/app": "x"}, "Example.com/app", "is not a DNS subdomain"),
    ({"/app": "x"}, "/app", "is not a DNS subdomain"),
]


@pytest.mark.parametrize(("labels", "key", "message"), LABELS_REFUSED)
def test_selector_labels_are_kubernetes_labels_at_config_time(
    labels: dict[str, str], key: str, message: str
) -> None:
    """They become NetworkPolicy selectors: refused here, not by the API server mid-`up`."""
    assert_refused(
        lambda raw: raw["cluster"].__setitem__("dns_pod_labels", labels),
        f"cluster.dns_pod_labels.{key}",
        message,
    )
    scraper = {"scraper_namespace": "monitoring", "scraper_pod_labels": labels}
    assert_refused(
        lambda raw: raw.__setitem__("metrics", scraper),
        f"metrics.scraper_pod_labels.{key}",
        message,
    )


def test_legitimate_selector_labels_are_accepted() -> None:
    raw = raw_settings("dev")
    labels = {"example.com/app": "kube-dns_1.x", "k8s-app": "", "A.b-c_d": "Z9"}
    raw["cluster"]["dns_pod_labels"] = labels
    assert parse_perimeter(raw, "Pulumi.dev.yaml").cluster.dns_pod_labels == labels


def _server(raw: dict[str, Any], name: str) -> tuple[int, dict[str, Any]]:
    return next((i, s) for i, s in enumerate(raw["mcp_servers"]) if s["name"] == name)


def test_a_backend_range_covering_another_servers_backend_is_refused() -> None:
    """inventory's 10.30.0.0/16 would let it reach exports' store at 10.30.9.10."""

    def widen(raw: dict[str, Any]) -> None:
        _server(raw, "inventory")[1]["backends"][0]["cidrs"] = ["10.30.0.0/16"]

    raw = raw_settings("dev")
    widen(raw)
    i, _ = _server(raw, "inventory")
    k, _ = _server(raw, "exports")
    first, second = sorted([i, k])
    field = f"mcp_servers[{first}].backends[0]." + ("cidrs[0]" if first == i else "host")
    assert_refused(widen, field, f"overlaps mcp_servers[{second}].backends[0]")


def test_two_servers_declaring_one_shared_backend_address_are_accepted() -> None:
    raw = raw_settings("dev")
    store = _server(raw, "exports")[1]["backends"][0]
    shared = {**store, "name": "shared-store", "credential": False}
    _server(raw, "inventory")[1]["backends"].append(shared)
    parse_perimeter(raw, "Pulumi.dev.yaml")
