"""The rules' public API and the pack's files: levels, overrides, tokens, configs, pins."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from infra.contract import names as contract_names
from infra.pure import config as infra_config, naming
from infra.pure.network import allowed_egress_cidrs, pack_config_of
from policies.rules import (
    ALL_RULES,
    DEFAULT_ALLOWED_EGRESS_CIDRS,
    Resource,
    evaluate,
)
from tests.conftest import SHIPPED_STACKS
from tests.policies import perimeter_fixtures as fx

REPO = Path(__file__).resolve().parents[2]
PACK = REPO / "policies"
KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")


def unpinned() -> list[Resource]:
    manifests = fx.environment()
    fx.first_container(fx.find(manifests, "Deployment", "mcp-server-tickets"))["image"] = "x:1"
    return fx.resources(manifests)


def test_rule_ids_are_unique_kebab_case_with_a_description_and_hint() -> None:
    ids = [r.id for r in ALL_RULES]
    assert len(ids) == len(set(ids))
    for rule in ALL_RULES:
        assert KEBAB.match(rule.id), rule.id
        assert rule.description.endswith(".") and "\n" not in rule.description
        assert rule.hint and rule.scope in ("resource", "stack")
        assert {rule.level(t) for t in ("dev", "staging", "prod")} <= {"mandatory", "advisory"}


@pytest.mark.parametrize(
    ("tier", "level"), [("dev", "advisory"), ("staging", "advisory"), ("prod", "mandatory")]
)
def test_digest_pinning_is_mandatory_only_in_prod(tier: str, level: str) -> None:
    (violation,) = evaluate(unpinned(), tier=tier)
    assert (violation.rule_id, violation.enforcement) == ("image-pinned-by-digest", level)
    assert violation.resource == f"Deployment/{fx.NS}/mcp-server-tickets"


def test_overrides_change_or_disable_a_rule() -> None:
    (violation,) = evaluate(unpinned(), overrides={"image-pinned-by-digest": "mandatory"})
    assert violation.mandatory
    assert evaluate(unpinned(), tier="prod", overrides={"image-pinned-by-digest": "disabled"}) == []


def test_bad_tier_or_override_is_refused() -> None:
    with pytest.raises(ValueError, match="tier"):
        evaluate([], tier="qa")
    with pytest.raises(ValueError, match="override"):
        evaluate([], overrides={"no-such-rule": "mandatory"})
    with pytest.raises(ValueError, match="override"):
        evaluate([], overrides={"no-ingress": "remediate"})


def test_allowed_egress_cidrs_replace_the_defaults() -> None:
    manifests = fx.environment()
    fx.find(manifests, "NetworkPolicy", "sandbox-runner")["spec"]["egress"].append(
        {"to": [{"ipBlock": {"cidr": "203.0.113.0/24"}}]}
    )
    assert [v.rule_id for v in evaluate(fx.resources(manifests))] == [
        "egress-only-to-allowed-cidrs"
    ]
    allowed = [*DEFAULT_ALLOWED_EGRESS_CIDRS, "203.0.113.0/24"]
    assert evaluate(fx.resources(manifests), allowed_egress_cidrs=allowed) == []


def test_non_kubernetes_resources_are_ignored() -> None:
    noise = [
        Resource("random:index/randomPassword:RandomPassword", "pw", {"length": 32}),
        Resource(
            "kubernetes:helm.sh/v4:Chart", "mcp", {"chart": "x", "values": {"hostNetwork": True}}
        ),
        Resource("kubernetes:yaml/v2:ConfigGroup", "g", {"objs": []}),
        Resource("kubernetes:apps/v1:DeploymentPatch", "p", {"spec": {}}),
        Resource("agent-perimeter:index:McpServer", "c", {}),
    ]
    assert evaluate(noise) == []
    assert not any(r.is_kubernetes for r in noise)


@pytest.mark.parametrize(
    ("manifest", "token", "ref"),
    [
        (
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}},
            "kubernetes:core/v1:Secret",
            "Secret/n/s",
        ),
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
            "kubernetes:apps/v1:Deployment",
            "Deployment/-/d",
        ),
        (
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "r", "namespace": "n"},
            },
            "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
            "HTTPRoute/n/r",
        ),
        (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
            "kubernetes:core/v1:Namespace",
            "Namespace/-/n",
        ),
    ],
)
def test_from_manifest_derives_the_pulumi_token_and_ref(
    manifest: dict, token: str, ref: str
) -> None:
    resource = Resource.from_manifest(manifest)
    assert (resource.type, resource.kind, resource.ref) == (token, manifest["kind"], ref)


def test_auto_named_resource_is_named_by_its_pulumi_name() -> None:
    resource = Resource(
        "kubernetes:core/v1:Service", "svc", {"metadata": {"namespace": "n"}}, "urn:x"
    )
    assert resource.ref == "Service/n/svc"
    (violation,) = evaluate(
        [Resource("kubernetes:core/v1:Service", "svc", {"spec": {"type": "NodePort"}}, "urn:x")]
    )
    assert (violation.resource, violation.urn) == ("Service/-/svc", "urn:x")


def _constants(path: Path) -> dict[str, str]:
    """Top-level `NAME = "literal"` assignments of one module."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found |= {t.id: value.value for t in targets if isinstance(t, ast.Name)}
    return found


def test_the_names_the_pack_reads_are_defined_once() -> None:
    """infra/contract/ defines them (the pack holds a generated copy); the program, the audit,
    the servers and the sandbox import them: no module redefines one, under its own name or
    another (a label, an annotation or a data key spelled out again)."""
    contract = REPO / "infra" / "contract"
    pack: dict[str, str] = {}
    for module in sorted(contract.glob("*.py")):
        pack |= _constants(module)
    spelled = {v for v in pack.values() if "/" in v or v.endswith((".sql", ".json", ".yaml"))}
    copies = []
    generated = (contract, PACK / "rules" / "contract")
    for folder in ("infra", "policies", "servers", "sandbox"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.parent in generated or ".venv" in path.parts:
                continue
            for name, value in _constants(path).items():
                if name in pack or value in spelled:
                    copies.append(f"{path.relative_to(REPO)}: {name} = {value!r}")
    assert copies == [], "defined again:\n" + "\n".join(copies)
    assert naming.LABEL_NAME is contract_names.LABEL_NAME
    for server, tool in [("tickets", "get_ticket"), ("order-history", "list_orders")]:
        assert infra_config.role_name(server, tool) == f"mcp_{server.replace('-', '_')}_{tool}"


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_policy_config_files_are_generated_from_the_rules(stack: str) -> None:
    """policies/config/<tier>.json is what the workflow passes to --policy-pack-config."""
    config = infra_config.load(stack=stack)
    path = PACK / "config" / f"{config.tier.value}.json"
    document = json.loads(path.read_text())
    assert document == pack_config_of(config), f"regenerate {path.name}: make policy-config"
    assert "all" not in document and all(k != "enforcementLevel" for k in document)


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_policy_config_allows_exactly_what_the_stack_declares(stack: str) -> None:
    config = infra_config.load(stack=stack)
    document = json.loads((PACK / "config" / f"{config.tier.value}.json").read_text())
    egress = document["egress-only-to-allowed-cidrs"]
    declared = {*config.platform.api_cidrs, *config.platform.tunnel_edge_cidrs}
    declared |= {c for database in config.databases.values() for c in database.cidrs}
    declared |= {c for s in config.mcp_servers for b in s.backends for c in b.effective_cidrs}
    assert set(egress["allowedEgressCidrs"]) == declared == set(allowed_egress_cidrs(config))
    assert egress["declaredOnly"] is True, "the pack must refuse private space outside it"


def test_pulumi_policy_yaml_is_a_python_pack_with_its_own_virtualenv() -> None:
    document = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert document["runtime"]["name"] == "python"
    assert document["runtime"]["options"]["virtualenv"] == ".venv"
    assert re.match(r"^\d+\.\d+\.\d+$", document["version"])
    assert (PACK / "__main__.py").is_file()


def test_pack_requirements_pin_what_the_project_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(line.split("==") for line in project)
    direct = (PACK / "requirements.in").read_text().splitlines()
    names = {line.strip() for line in direct if line.strip() and not line.startswith("#")}
    assert names == {"pulumi", "pulumi-policy", "pyyaml", "pglast"}
    text = (PACK / "requirements.txt").read_text()
    locked = dict(re.findall(r"^([a-z0-9-]+)==(\S+)", text, flags=re.MULTILINE))
    for name in names:
        assert locked[name] == pins[name], name


def test_readme_lists_every_rule_with_its_level() -> None:
    readme = (PACK / "README.md").read_text()
    for rule in ALL_RULES:
        level = (
            "advisory, mandatory in prod"
            if rule.level("dev") != rule.level("prod")
            else rule.level("dev")
        )
        assert f"| `{rule.id}` | {rule.scope} | {level} |" in readme, rule.id
