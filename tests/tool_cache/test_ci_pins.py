"""The pull-request workflow runs the e2e tier with the CLI the tier pins and caches the
tools under their recipe digests; CI proves the cache matches the recipe."""

from __future__ import annotations

import re

import yaml

from tests.tool_cache.recipes import REPO, SCRIPT


def _tests_job() -> tuple[dict, list[dict]]:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "policies.yml").read_text())
    return workflow, workflow["jobs"]["tests"]["steps"]


def test_the_workflow_installs_the_cli_version_the_e2e_tier_pins() -> None:
    pinned = re.search(r"^PULUMI_VERSION=v(\S+)$", SCRIPT.read_text(), re.MULTILINE)
    assert pinned is not None
    workflow, steps = _tests_job()
    assert workflow["env"]["PULUMI_VERSION"] == pinned.group(1)
    installs = [s for s in steps if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert installs and installs[0]["with"]["pulumi-version"] == "${{ env.PULUMI_VERSION }}"
    names = [s.get("run", "") for s in steps]
    assert steps.index(installs[0]) < next(i for i, r in enumerate(names) if "make e2e" in r)


def test_the_workflow_caches_the_tools_under_their_recipe_digests() -> None:
    _, steps = _tests_job()
    caches = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache@")]
    assert caches and caches[0]["with"]["path"] == "~/.cache/agent-perimeter"
    assert "steps.recipes.outputs.key" in caches[0]["with"]["key"]
    recipes = next(s for s in steps if s.get("id") == "recipes")
    assert "build-tools.sh --digests;" in recipes["run"]
    assert "build-tools.sh --digests live" in recipes["run"]


def test_ci_runs_the_readme_test_command_then_verifies_the_cache() -> None:
    lines = [
        line
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines.index("make test") < lines.index("bash scripts/e2e/build-tools.sh --verify")
