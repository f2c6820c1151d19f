"""The program under Pulumi mocks: what each shipped environment registers, and its outputs."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.engine.stack import build
from infra.offline.mocked import (
    CHART_TYPE,
    PLATFORM_TYPE_PREFIX,
    RecordingMocks,
    Synthesis,
    synthesize,
)
from infra.pure.config import PROJECT, PerimeterConfig, offline_secrets
from infra.pure.naming import (
    ANNOTATION_DATABASE_ROLE,
    ANNOTATION_MCP_SERVER_URL,
    LABEL_CREDENTIAL,
    mcp_server_selector,
    sandbox_release,
    sandbox_selector,
    tunnel_selector,
)
from infra.pure.network import used_databases

SECRET_SIG = "4dabf18193072939515e22adb298388d"
DYNAMIC = PLATFORM_TYPE_PREFIX


@pytest.fixture
def synthesis(shipped_config: PerimeterConfig) -> Synthesis:
    return synthesize(shipped_config)


def _kind(synthesis: Synthesis, kind: str) -> list[dict[str, Any]]:
    return [
        r.inputs
        for r in synthesis.resources
        if r.type.startswith("kubernetes:") and r.inputs.get("kind") == kind
    ]


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(i for i in items if i["metadata"]["name"] == name)


def test_every_chart_path_is_absolute(synthesis: Synthesis) -> None:
    """The engine starts providers in `infra/`: a path relative to the repo root names nothing."""
    charts = [r.inputs["chart"] for r in synthesis.resources if r.type == CHART_TYPE]
    assert charts
    for chart in charts:
        assert Path(chart).is_absolute(), chart
        assert (Path(chart) / "Chart.yaml").is_file(), chart


def test_environment_registers_the_expected_objects(
    shipped_config: PerimeterConfig, synthesis: Synthesis
) -> None:
    servers = len(shipped_config.mcp_servers)
    # only the tools of database-backed servers hold a role (and its password Secret)
    tools = sum(len(s.tools) for s in shipped_config.mcp_servers if s.database)
    backend_credentials = sum(len(s.credential_backends) for s in shipped_config.mcp_servers)
    with_files = sum(1 for s in shipped_config.mcp_servers if s.config_files)
    databases = len(used_databases(shipped_config))
    pools = len(shipped_config.sandboxes)
    agents = len(shipped_config.agents)
    counts = Counter(
        r.inputs.get("kind", r.type) if r.type.startswith("kubernetes:") else r.type
        for r in synthesis.resources
    )
    assert counts["Namespace"] == 1
    assert counts["ResourceQuota"] == 1 and counts["LimitRange"] == 1
    # default deny + DNS + tunnel + one per server + one per pool + one per provisioner
    assert counts["NetworkPolicy"] == 3 + servers + pools + databases
    # a password per tool, a platform token and a serving certificate per server, tunnel
    # token + TLS, a key per pool, admin + verifiers, one per backend credential
    assert counts["Secret"] == tools + 2 * servers + 2 + pools + 2 * databases + backend_credentials
    assert counts["Job"] == databases
    assert counts[CHART_TYPE] == servers + 1 + pools
    # two token slots (current, previous) per server; tools' passwords come from a key
    assert counts["random:index/randomPassword:RandomPassword"] == 2 * servers
    # one key per server with a database (its tools' passwords), one per server with backend
    # credentials (their Secrets' names)
    keys = sum(bool(s.database) + bool(s.credential_backends) for s in shipped_config.mcp_servers)
    assert counts["random:index/randomBytes:RandomBytes"] == keys
    cas = sum(
        1 for d in used_databases(shipped_config) if shipped_config.databases[d].ca_certificate
    )
    # role SQL and the database CA per provisioner, one definition per agent, the upstream CA
    # (config files are rendered by the server's chart)
    assert with_files
    assert counts["ConfigMap"] == databases + cas + agents + 1
    platform = {t.rsplit(":", 1)[1]: n for t, n in counts.items() if t.startswith(DYNAMIC)}
    assert platform == {
        "Tunnel": 1,
        "TunnelCertificate": 1,
        "Environment": pools,
        "Vault": 1,
        "VaultCredential": servers,
        "Agent": agents,
        "TokenRotation": servers,
        "CertificateAuthority": 1,
        "ServingCertificate": servers,
    }


def test_namespace_enforces_restricted_pod_security(
    shipped_config: PerimeterConfig, synthesis: Synthesis
) -> None:
    namespace = _kind(synthesis, "Namespace")[0]
    labels = namespace["metadata"]["labels"]
    assert namespace["metadata"]["name"] == shipped_config.namespace
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    quota = _kind(synthesis, "ResourceQuota")[0]["spec"]["hard"]
    assert quota["services.nodeports"] == "0" and quota["services.loadbalancers"] == "0"


def test_default_deny_covers_every_pod_both_ways(synthesis: Synthesis) -> None:
    deny = _named(_kind(synthesis, "NetworkPolicy"), "default-deny-all")["spec"]
    assert deny["podSelector"] == {}
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert not deny.get("ingress") and not deny.get("egress")


def test_dns_is_only_kube_dns_in_kube_system(synthesis: Synthesis) -> None:
    dns = _named(_kind(synthesis, "NetworkPolicy"), "allow-dns-egress")["spec"]
    assert dns["policyTypes"] == ["Egress"]
    (rule,) = dns["egress"]
    (peer,) = rule["to"]  # one element: namespace AND pod selector
    assert peer["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }
    assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]


def test_tunnel_has_no_ingress_and_dials_only_platform_and_its_servers(
    shipped_config: PerimeterConfig, synthesis: Synthesis
) -> None:
    spec = _named(_kind(synthesis, "NetworkPolicy"), "mcp-tunnel")["spec"]
    assert spec["podSelector"]["matchLabels"] == tunnel_selector()
    assert "Ingress" in spec["policyTypes"] and spec["ingress"] == []
    cidrs = {p["ipBlock"]["cidr"] for r in spec["egress"] for p in r["to"] if "ipBlock" in p}
    platform = shipped_config.platform
    assert cidrs == set(platform.tunnel_edge_cidrs) | set(platform.api_cidrs)
    edge = next(
        r
        for r in spec["egress"]
        if r["to"][0].get("ipBlock", {}).get("cidr") == platform.tunnel_edge_cidrs[0]
    )
    assert {(p["protocol"], p["port"]) for p in edge["ports"]} == {("TCP", 7844), ("UDP", 7844)}
    pods = [
        p["podSelector"]["matchLabels"]
        for r in spec["egress"]
        for p in r["to"]
        if "podSelector" in p
    ]
    assert pods == [mcp_server_selector(s) for s in shipped_config.mcp_servers]


def test_mcp_server_admits_tunnel_and_only_allowed_sandboxes(
    shipped_config: PerimeterConfig, synthesis: Synthesis
) -> None:
    policies = _kind(synthesis, "NetworkPolicy")
    for server in shipped_config.mcp_servers:
        spec = _named(policies, f"mcp-server-{server.name}")["spec"]
        (rule,) = spec["ingress"]
        callers = [p["podSelector"]["matchLabels"] for p in rule["from"]]
        expected = [tunnel_selector()] + [
            sandbox_selector(pool.name)
            for pool in shipped_config.sandboxes
            if server.name in pool.direct_mcp_access
        ]
        assert callers == expected
        assert rule["ports"] == [{"protocol": "TCP", "port": server.port}]
        # egress: its database first (when it has one), then each backend, nothing else
        destinations = [[p["ipBlock"]["cidr"] for p in r["to"]] for r in spec["egress"]]
        expected_to = [shipped_config.databases[server.database].cidrs] if server.database else []
        expected_to += [b.effective_cidrs for b in server.backends]
        assert destinations == expected_to


def test_each_sandbox_pool_has_no_ingress_and_no_direct_mcp_path(
    shipped_config: PerimeterConfig, synthesis: Synthesis
) -> None:
    """Shipped pools opt in to no direct MCP server path: every tool call passes the platform."""
    for pool in shipped_config.sandboxes:
        spec = _named(_kind(synthesis, "NetworkPolicy"), f"sandbox-runner-{pool.name}")["spec"]
        assert spec["podSelector"]["matchLabels"] == sandbox_selector(pool.name)
        assert spec["ingress"] == [] and "Ingress" in spec["policyTypes"]
        assert not [p for r in spec["egress"] for p in r["to"] if "podSelector" in p]


def test_a_pool_opting_in_reaches_only_its_servers(dev_config: PerimeterConfig) -> None:
    pool = dev_config.sandboxes[0].model_copy(update={"direct_mcp_access": ["tickets"]})
    config = dev_config.model_copy(update={"sandboxes": [pool]})
    config._prompts.update(dev_config._prompts)
    policies = _kind(synthesize(config), "NetworkPolicy")
    egress = _named(policies, f"sandbox-runner-{pool.name}")["spec"]["egress"]
    pods = [p["podSelector"]["matchLabels"] for r in egress for p in r["to"] if "podSelector" in p]
    assert pods == [mcp_server_selector("tickets")]
    callers = _named(policies, "mcp-server-tickets")["spec"]["ingress"][0]["from"]
    assert sandbox_selector(pool.name) in [c["podSelector"]["matchLabels"] for c in callers]
    inventory = _named(policies, "mcp-server-inventory")["spec"]["ingress"][0]["from"]
    assert [c["podSelector"]["matchLabels"] for c in inventory] == [tunnel_selector()]


def test_metadata_address_is_never_reachable(synthesis: Synthesis) -> None:
    metadata = ipaddress.ip_address("169.254.169.254")
    for policy in _kind(synthesis, "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), f"{policy['metadata']['name']} has an egress rule to anywhere"
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    assert metadata not in ipaddress.ip_network(peer["ipBlock"]["cidr"])


def test_secret_values_reach_the_engine_as_secrets(synthesis: Synthesis) -> None:
    secrets = [r for r in synthesis.resources if r.inputs.get("kind") == "Secret"]
    assert secrets
    for resource in secrets:
        data = resource.raw_inputs["stringData"]
        wrapped_whole = isinstance(data, dict) and data.get(SECRET_SIG)
        assert wrapped_whole or all(
            isinstance(v, dict) and v.get(SECRET_SIG) for v in data.values()
        ), f"{resource.name} holds a value that is not a Pulumi secret"


def test_every_credential_is_labelled_with_what_it_grants(synthesis: Synthesis) -> None:
    for secret in _kind(synthesis, "Secret"):
        assert secret["metadata"]["labels"].get(LABEL_CREDENTIAL), secret["metadata"]["name"]


def test_every_resource_is_parented_to_a_component(synthesis: Synthesis) -> None:
    assert synthesis.urns
    leaves = 0
    for urn in synthesis.urns:
        *parents, own = urn.split("::")[2].split("$")
        if own.startswith(("kubernetes:", "random:")):
            leaves += 1
            assert parents[-1].startswith("agent-perimeter:index:"), urn
    assert leaves == sum(r.type.startswith(("kubernetes:", "random:")) for r in synthesis.resources)


def test_provisioner_job_reruns_when_sql_changes(dev_config: PerimeterConfig) -> None:
    def job_name(config: PerimeterConfig) -> str:
        return _kind(synthesize(config), "Job")[0]["metadata"]["name"]

    before = job_name(dev_config)
    server = dev_config.mcp_servers[0]
    tool = server.tools[0].model_copy(update={"name": "get_ticket_v2"})
    changed = dev_config.model_copy(
        update={
            "mcp_servers": [
                server.model_copy(update={"tools": [tool, *server.tools[1:]]}),
                *dev_config.mcp_servers[1:],
            ]
        }
    )
    rotated = dev_config.model_copy(update={"rotation_epoch": dev_config.rotation_epoch + 1})
    assert job_name(changed) != before
    assert job_name(rotated) != before
    assert job_name(dev_config) == before


def test_provisioner_is_the_only_reader_of_the_admin_secret_and_reports_psql_errors(
    synthesis: Synthesis,
) -> None:
    (job,) = _kind(synthesis, "Job")[:1]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["command"][:2] == ["/bin/sh", "-c"]
    assert container["command"][4] == "psql"
    assert not [e for e in container["env"] if "valueFrom" in e], "secrets are files"
    assert "envFrom" not in container
    admin = next(
        s["metadata"]["name"]
        for s in _kind(synthesis, "Secret")
        if s["metadata"]["labels"][LABEL_CREDENTIAL] == "database-admin"
    )
    readers = [
        r.inputs["metadata"]["name"]
        for r in synthesis.resources
        if r.inputs.get("kind") in ("Job", "Deployment") and admin in str(r.inputs)
    ]
    assert readers == [job["metadata"]["name"]]


def test_rotation_epoch_regenerates_every_database_password(dev_config: PerimeterConfig) -> None:
    """`rotation_epoch` is for database passwords; platform tokens rotate per server."""
    rotated = dev_config.model_copy(update={"rotation_epoch": 7})
    rotated._prompts.update(dev_config._prompts)

    def passwords(synthesis: Synthesis) -> dict[str, dict[str, str]]:
        return {
            s["metadata"]["annotations"].get(ANNOTATION_DATABASE_ROLE)
            or s["metadata"]["labels"][LABEL_CREDENTIAL] + s["metadata"]["name"].split("-r")[0]: s[
                "stringData"
            ]
            for s in _kind(synthesis, "Secret")
            if s["metadata"]["labels"][LABEL_CREDENTIAL] in ("database-role", "platform-token")
        }

    before, after = passwords(synthesize(dev_config)), passwords(synthesize(rotated))
    assert before.keys() == after.keys()
    roles = [k for k in before if before[k].get("username") == k]
    assert roles, "the shipped dev stack has database tools"
    for role in roles:
        assert before[role]["password"] != after[role]["password"], role
        assert len(before[role]["password"]) == 64
    tokens = [k for k in before if k not in roles]
    assert tokens and all(before[k] == after[k] for k in tokens)
    assert len({before[role]["password"] for role in roles}) == len(roles), "one per role"


def test_rotation_renames_rotated_secrets_and_leaves_other_workloads_alone(
    dev_config: PerimeterConfig,
) -> None:
    """A fixed-name Secret is deleted before its replacement is created; a new name is not."""
    before = synthesize(dev_config)
    after = synthesize(dev_config.model_copy(update={"rotation_epoch": 1}))

    def secrets(synthesis: Synthesis) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for secret in _kind(synthesis, "Secret"):
            kind = secret["metadata"]["labels"][LABEL_CREDENTIAL]
            found.setdefault(kind, set()).add(secret["metadata"]["name"])
        return found

    old, new = secrets(before), secrets(after)
    for rotated in ("database-role", "role-verifiers"):
        assert old[rotated].isdisjoint(new[rotated]), rotated
    # platform tokens rotate per server, with `token_epoch` (tests/platform/test_rotation.py)
    for kept in (
        "platform-token",
        "tunnel-token",
        "tunnel-tls",
        "environment-key",
        "database-admin",
    ):
        assert old[kept] == new[kept], kept

    def chart_values(synthesis: Synthesis) -> dict[str, Any]:
        return {r.name: r.inputs["values"] for r in synthesis.resources if r.type == CHART_TYPE}

    unchanged = ("mcp-tunnel", *(sandbox_release(p.name) for p in dev_config.sandboxes))
    for release in unchanged:
        assert chart_values(before)[release] == chart_values(after)[release], release


def test_token_rotation_renames_one_servers_token_and_restarts_nothing_else(
    dev_config: PerimeterConfig,
) -> None:
    """Raising one server's `token_epoch`: a new Secret name for that server only; the other
    server, the tunnel and the sandbox pools keep their Secrets and chart values."""
    tickets = dev_config.server("tickets").model_copy(update={"token_epoch": 1})
    servers = [tickets if s.name == "tickets" else s for s in dev_config.mcp_servers]
    rotated = dev_config.model_copy(update={"mcp_servers": servers})
    rotated._prompts.update(dev_config._prompts)
    before, after = synthesize(dev_config), synthesize(rotated)

    def names(synthesis: Synthesis) -> set[str]:
        return {s["metadata"]["name"] for s in _kind(synthesis, "Secret")}

    assert names(before) - names(after) == {"mcp-server-tickets-platform-token-r0"}
    assert names(after) - names(before) == {"mcp-server-tickets-platform-token-r1"}

    def chart_values(synthesis: Synthesis) -> dict[str, Any]:
        return {r.name: r.inputs["values"] for r in synthesis.resources if r.type == CHART_TYPE}

    changed = {
        release
        for release, values in chart_values(before).items()
        if chart_values(after)[release] != values
    }
    assert changed == {"mcp-server-tickets"}


def _use_mocks(config: PerimeterConfig) -> None:
    pulumi.runtime.set_mocks(
        RecordingMocks(), project=PROJECT, stack=config.environment, preview=False
    )


@pulumi.runtime.test
def test_agent_definition_output_is_allowlisted(dev_config: PerimeterConfig) -> pulumi.Output:
    _use_mocks(dev_config)
    perimeter = build(dev_config, offline_secrets(dev_config))
    reconciler = dev_config.agents[2]

    def check(definition: dict[str, Any]) -> None:
        names = [s["name"] for s in definition["mcp_servers"]]
        assert names == [u.server for u in reconciler.mcp_servers]
        assert [t["mcp_server_name"] for t in definition["tools"]] == names
        for toolset, use in zip(definition["tools"], reconciler.mcp_servers, strict=True):
            assert toolset["default_config"]["enabled"] is False
            assert [c["name"] for c in toolset["configs"]] == use.tools  # only the allowed ones
            assert {c["permission_policy"]["type"] for c in toolset["configs"]} == {"always_allow"}
        assert "token" not in json.dumps(definition)

    return perimeter.agents[reconciler.name].definition.apply(check)


@pulumi.runtime.test
def test_vault_credentials_are_secret_and_bound_to_the_exact_urls(
    dev_config: PerimeterConfig,
) -> pulumi.Output:
    _use_mocks(dev_config)
    perimeter = build(dev_config, offline_secrets(dev_config))
    assert perimeter.vault is not None
    credential = perimeter.vault.credentials["exports"]

    def check(args: list[Any]) -> None:
        credentials, is_secret, definition, bound_url, domain = args
        assert is_secret
        expected = [f"https://{s.name}.{domain}/mcp" for s in dev_config.mcp_servers]
        assert [c["mcp_server_url"] for c in credentials] == expected
        assert all(c["type"] == "static_bearer" and c["token"] for c in credentials)
        assert len({c["token"] for c in credentials}) == len(credentials)
        # one source: the tunnel's domain, as the platform assigned it, feeds all three
        assert definition["mcp_servers"][0]["url"] == expected[0] == bound_url

    return pulumi.Output.all(
        perimeter.vault_credentials,
        pulumi.Output.from_input(perimeter.vault_credentials.is_secret()),
        perimeter.agents["export-ticket-agent"].definition,
        credential.mcp_server_url,
        perimeter.tunnel.domain,
    ).apply(check)


def test_platform_token_secret_names_the_url_in_the_agent_definition(synthesis: Synthesis) -> None:
    definitions = synthesis.outputs["agent_definitions"].values()
    urls = sorted({s["url"] for d in definitions for s in d["mcp_servers"]})
    bound = sorted(
        s["metadata"]["annotations"][ANNOTATION_MCP_SERVER_URL]
        for s in _kind(synthesis, "Secret")
        if s["metadata"]["labels"][LABEL_CREDENTIAL] == "platform-token"
    )
    assert bound == urls
