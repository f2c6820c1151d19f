"""Every shipped environment passes every mandatory rule: from the program and as rendered."""

from __future__ import annotations

import pytest

from infra.offline.cli import main
from infra.offline.mocked import render_environment, synthesize
from infra.pure.config import load
from infra.pure.network import allowed_egress_cidrs
from policies.rules import Resource, evaluate
from tests.conftest import SHIPPED_STACKS


def mandatory(resources: list[Resource], stack: str) -> list[str]:
    config = load(stack=stack)
    found = evaluate(
        resources, tier=config.tier.value, allowed_egress_cidrs=allowed_egress_cidrs(config)
    )
    return [f"{v.rule_id} {v.resource}: {v.message}" for v in found if v.mandatory]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_program_under_mocks_has_no_mandatory_violation(stack: str) -> None:
    """What `pulumi preview` would hand the pack, minus the charts' children (mocks keep
    a Chart as one resource)."""
    synthesis = synthesize(load(stack=stack))
    resources = [Resource(r.type, r.name, r.inputs, f"urn:{r.name}") for r in synthesis.resources]
    assert sum(r.is_kubernetes for r in resources) > 10
    assert mandatory(resources, stack) == []


@pytest.mark.helm
@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_rendered_manifests_have_no_mandatory_violation(stack: str) -> None:
    manifests = render_environment(load(stack=stack))
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Job", "NetworkPolicy", "Secret", "ConfigMap"} <= kinds
    assert mandatory([Resource.from_manifest(m) for m in manifests], stack) == []


@pytest.mark.helm
@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_check_command_passes_the_stack(stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--stack", stack]) == 0, capsys.readouterr().out
