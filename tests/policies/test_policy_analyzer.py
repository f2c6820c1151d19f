"""The pack as the Pulumi engine runs it: a separate process spoken to over gRPC.

The engine starts a Python pack through its `pulumi-analyzer-policy-python` shim,
which runs `python -u -m pulumi.policy <engine address> .` in the pack's folder; the
pack prints its port and serves the Analyzer service on 127.0.0.1. The engine then
calls Handshake (optional), GetAnalyzerInfo, Configure with the `--policy-pack-config`
file, Analyze once per resource and AnalyzeStack once at the end. These tests do the
same, so a wiring mistake (a policy that never fires, a level config cannot change,
a stack rule reporting on no URN) fails here, not in CI's preview.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import proto
from pulumi.runtime.proto import analyzer_pb2_grpc

from infra.offline.mocked import synthesize
from infra.pure.config import load
from policies.rules import ALL_RULES
from tests.policies import perimeter_fixtures as fx

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "policies"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SIG_KEY = "4dabf18193072939515e22adb298388d"
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
STACK = "dev"
LEVELS = {"advisory": proto.ADVISORY, "mandatory": proto.MANDATORY, "disabled": proto.DISABLED}


def _read_port(process: subprocess.Popen[bytes]) -> int:
    """The first stdout line is the port; give up after 60 s rather than hang the suite."""
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    if not line or not line[0].strip().isdigit():
        process.kill()
        err = process.stderr.read().decode() if process.stderr else ""
        pytest.fail(f"the policy pack did not print its port: {line!r}\n{err}")
    return int(line[0])


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    env = dict(os.environ)
    env.update(
        PULUMI_CONFIG=json.dumps({"agent-perimeter:perimeter": "{}"}),
        PULUMI_PROJECT="agent-perimeter",
        PULUMI_STACK=STACK,
        PULUMI_DRY_RUN="true",
        PYTHONPATH="",  # the pack must not lean on the repo being importable
    )
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=PACK,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        port = _read_port(process)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.terminate()
        process.wait(timeout=30)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


def struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def configure(stub: analyzer_pb2_grpc.AnalyzerStub, config: Mapping[str, Any]) -> None:
    """What the engine sends for a `--policy-pack-config` file."""
    request = proto.ConfigureAnalyzerRequest()
    for name, value in config.items():
        settings = value if isinstance(value, dict) else {"enforcementLevel": value}
        properties = {k: v for k, v in settings.items() if k != "enforcementLevel"}
        request.policyConfig[name].CopyFrom(
            proto.PolicyConfig(
                enforcementLevel=LEVELS[settings.get("enforcementLevel", "mandatory")],
                properties=struct(properties),
            )
        )
    stub.Configure(request)


def shipped_config(tier: str) -> dict[str, Any]:
    return json.loads((PACK / "config" / f"{tier}.json").read_text())


def tier_config(tier: str) -> dict[str, Any]:
    """The tier's shipped config, with the fixture environment's own declared egress."""
    config = shipped_config(tier)
    config["egress-only-to-allowed-cidrs"]["allowedEgressCidrs"] = list(fx.DECLARED)
    return config


def urn(kind_token: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::agent-perimeter::{kind_token}::{name}"


def as_secret(value: Any) -> dict[str, Any]:
    return {SIG_KEY: SECRET_SIG, "value": value}


def engine_view(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest the way the engine marshals it: Secret payloads as secret values."""
    props = copy.deepcopy(dict(manifest))
    for key in ("data", "stringData"):
        if props.get("kind") == "Secret" and key in props:
            props[key] = as_secret(props[key])
    return props


def request(manifest: Mapping[str, Any]) -> proto.AnalyzeRequest:
    resource = fx.Resource.from_manifest(manifest)
    return proto.AnalyzeRequest(
        type=resource.type,
        name=resource.name,
        urn=urn(resource.type, resource.name),
        properties=struct(engine_view(manifest)),
    )


def analyze(stub: Any, manifests: list[fx.Manifest]) -> list[Any]:
    return [d for m in manifests for d in stub.Analyze(request(m)).diagnostics]


def analyze_stack(stub: Any, manifests: list[fx.Manifest]) -> list[Any]:
    resources = []
    for manifest in manifests:
        single = request(manifest)
        resources.append(
            proto.AnalyzerResource(
                type=single.type, name=single.name, urn=single.urn, properties=single.properties
            )
        )
    return list(stub.AnalyzeStack(proto.AnalyzeStackRequest(resources=resources)).diagnostics)


def found(diagnostics: list[Any]) -> set[tuple[str, str, int]]:
    return {(d.policyName, d.urn, d.enforcementLevel) for d in diagnostics}


# --- the handshake and the pack's description ------------------------------------------------


def test_handshake_is_left_to_the_engine_fallback(analyzer: Any) -> None:
    with pytest.raises(grpc.RpcError) as error:
        analyzer.Handshake(proto.AnalyzerHandshakeRequest(engine_address="127.0.0.1:1"))
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED  # the engine then goes on


def test_analyzer_info_lists_every_rule_with_its_level_and_kind(analyzer: Any) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "agent-perimeter"
    assert info.supportsConfig
    policies = {p.name: p for p in info.policies}
    assert set(policies) == {r.id for r in ALL_RULES}
    for rule in ALL_RULES:
        policy = policies[rule.id]
        assert policy.description == rule.description
        assert policy.remediation_steps == rule.hint
        assert policy.enforcementLevel == LEVELS[rule.level("dev")]
        kind = proto.POLICY_TYPE_STACK if rule.scope == "stack" else proto.POLICY_TYPE_RESOURCE
        assert policy.policy_type == kind
    schema = policies["egress-only-to-allowed-cidrs"].configSchema
    assert "allowedEgressCidrs" in schema.properties


# --- Analyze: one resource at a time ---------------------------------------------------------


def test_clean_environment_has_no_resource_diagnostics(analyzer: Any) -> None:
    configure(analyzer, tier_config("prod"))
    assert analyze(analyzer, fx.environment()) == []


def test_nodeport_service_is_reported_on_its_urn(analyzer: Any) -> None:
    configure(analyzer, tier_config("dev"))
    svc = fx.find(fx.environment(), "Service", "mcp-server-tickets")
    svc["spec"]["type"] = "NodePort"
    (diagnostic,) = analyze(analyzer, [svc])
    assert diagnostic.policyName == "service-cluster-ip-only"
    assert diagnostic.policyPackName == "agent-perimeter"
    assert diagnostic.urn == urn("kubernetes:core/v1:Service", "mcp-server-tickets")
    assert diagnostic.enforcementLevel == proto.MANDATORY
    assert f"Service/{fx.NS}/mcp-server-tickets: type NodePort" in diagnostic.message
    assert "Remediation:" in diagnostic.message


def test_privileged_container_fails_several_policies(analyzer: Any) -> None:
    configure(analyzer, tier_config("dev"))
    deployment = fx.find(fx.environment(), "Deployment", "mcp-server-tickets")
    fx.first_container(deployment)["securityContext"] = {"privileged": True}
    names = {d.policyName for d in analyze(analyzer, [deployment])}
    assert names == {
        "no-privileged-containers",
        "no-privilege-escalation",
        "drop-all-capabilities",
        "read-only-root-filesystem",
    }


def test_digest_pinning_level_follows_the_tier_config(analyzer: Any) -> None:
    deployment = fx.find(fx.environment(), "Deployment", "sandbox-runner")
    fx.first_container(deployment)["image"] = "ghcr.io/example/sandbox-worker:0.7.1"
    expected = urn("kubernetes:apps/v1:Deployment", "sandbox-runner")
    for tier, level in [("dev", proto.ADVISORY), ("prod", proto.MANDATORY)]:
        configure(analyzer, tier_config(tier))
        assert found(analyze(analyzer, [deployment])) == {
            ("image-pinned-by-digest", expected, level)
        }
    configure(analyzer, {"image-pinned-by-digest": "disabled"})
    assert analyze(analyzer, [deployment]) == []


def test_allowed_egress_cidrs_come_from_policy_config(analyzer: Any) -> None:
    policy = fx.find(fx.environment(), "NetworkPolicy", "sandbox-runner")
    policy["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]})
    configure(analyzer, tier_config("dev"))
    assert {d.policyName for d in analyze(analyzer, [policy])} == {"egress-only-to-allowed-cidrs"}
    extra = tier_config("dev")
    extra["egress-only-to-allowed-cidrs"]["allowedEgressCidrs"].append("203.0.113.0/24")
    configure(analyzer, extra)
    assert analyze(analyzer, [policy]) == []


def test_unknown_value_during_preview_is_an_advisory_cannot_run(analyzer: Any) -> None:
    configure(analyzer, tier_config("dev"))
    svc = fx.find(fx.environment(), "Service", "mcp-server-tickets")
    svc["spec"]["type"] = UNKNOWN_STRING
    (diagnostic,) = analyze(analyzer, [svc])
    assert diagnostic.policyName == "service-cluster-ip-only"
    assert diagnostic.enforcementLevel == proto.ADVISORY
    assert "can't run policy 'service-cluster-ip-only'" in diagnostic.message
    assert "during preview" in diagnostic.message


def test_non_kubernetes_resources_are_ignored(analyzer: Any) -> None:
    configure(analyzer, tier_config("prod"))
    for token, props in [
        ("random:index/randomPassword:RandomPassword", {"length": 32}),
        ("kubernetes:helm.sh/v4:Chart", {"chart": "charts/mcp-server", "values": {}}),
        ("pulumi:providers:kubernetes", {}),
    ]:
        reply = analyzer.Analyze(
            proto.AnalyzeRequest(
                type=token, name="x", urn=urn(token, "x"), properties=struct(props)
            )
        )
        assert list(reply.diagnostics) == []


# --- AnalyzeStack: the whole set -------------------------------------------------------------


def test_shipped_environment_from_the_program_passes_the_stack_policies(analyzer: Any) -> None:
    configure(analyzer, shipped_config(STACK))
    synthesis = synthesize(load(stack=STACK))
    resources = [
        proto.AnalyzerResource(
            type=r.type, name=r.name, urn=urn(r.type, r.name), properties=struct(r.raw_inputs)
        )
        for r in synthesis.resources
    ]
    reply = analyzer.AnalyzeStack(proto.AnalyzeStackRequest(resources=resources))
    assert [d for d in reply.diagnostics if d.enforcementLevel == proto.MANDATORY] == []
    per_resource = [d for r in resources for d in analyzer.Analyze(request_of(r)).diagnostics]
    assert [d for d in per_resource if d.enforcementLevel == proto.MANDATORY] == []


def request_of(resource: Any) -> proto.AnalyzeRequest:
    return proto.AnalyzeRequest(
        type=resource.type, name=resource.name, urn=resource.urn, properties=resource.properties
    )


def test_clean_fixture_passes_the_stack_policies(analyzer: Any) -> None:
    configure(analyzer, tier_config("prod"))
    assert analyze_stack(analyzer, fx.environment()) == []


def test_admin_secret_in_an_mcp_server_is_reported_on_the_deployment(analyzer: Any) -> None:
    configure(analyzer, tier_config("dev"))
    manifests = fx.environment()
    fx.first_container(fx.find(manifests, "Deployment", "mcp-server-tickets"))["env"].append(
        fx.secret_env("PGPASSWORD", "database-admin-support")
    )
    assert found(analyze_stack(analyzer, manifests)) == {
        (
            "database-admin-only-provisioner",
            urn("kubernetes:apps/v1:Deployment", "mcp-server-tickets"),
            proto.MANDATORY,
        ),
        (
            "secret-single-reader",
            urn("kubernetes:core/v1:Secret", "database-admin-support"),
            proto.MANDATORY,
        ),
    }


def test_missing_vault_credential_and_tunnel_route_are_stack_findings(analyzer: Any) -> None:
    configure(analyzer, tier_config("dev"))
    manifests = fx.environment()
    manifests.remove(fx.find(manifests, "Secret", "mcp-server-tickets-platform-token"))
    tunnel = fx.find(manifests, "ConfigMap", "mcp-tunnel-config")
    tunnel["data"]["config.yaml"] = fx.TUNNEL_CONFIG.replace("  tickets:", "  orders:")
    agent = urn("kubernetes:core/v1:ConfigMap", "agent-definition")
    assert found(analyze_stack(analyzer, manifests)) == {
        ("mcp-server-vault-credential", agent, proto.MANDATORY),
        ("mcp-server-tunnel-route", agent, proto.MANDATORY),
    }


def test_unknown_namespace_stops_stack_rules_instead_of_guessing(analyzer: Any) -> None:
    """An unknown namespace must not read as `default` (and fail default-deny for it)."""
    configure(analyzer, tier_config("prod"))
    manifests = fx.environment()
    fx.find(manifests, "Deployment", "sandbox-runner")["metadata"]["namespace"] = UNKNOWN_STRING
    diagnostics = analyze_stack(analyzer, manifests)
    assert {d.enforcementLevel for d in diagnostics} == {proto.ADVISORY}
    assert "namespace-default-deny" in {d.policyName for d in diagnostics}
    assert all("can't run policy" in d.message for d in diagnostics)
