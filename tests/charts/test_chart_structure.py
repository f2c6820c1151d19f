"""The charts' own contract: lint-clean, standard helpers, one object per template, strict schemas."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from infra.offline import tools
from infra.offline.tools import REPO_ROOT

from .helm_render import CHARTS, chart_dir, lint, render_by_source, run_helm
from .values_sets import NAMESPACE, REALISTIC

pytestmark = pytest.mark.helm

HELPERS = ("name", "fullname", "chart", "labels", "selectorLabels", "serviceAccountName")
# Kubernetes objects passed through verbatim: their inner shape belongs to Kubernetes.
SETUP = REPO_ROOT / "scripts" / "setup.sh"
PASS_THROUGH = {"affinity", "tolerations", "topologySpreadConstraints", "nodeSelector"}


def test_render_fails_loudly_without_helm(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No helm on PATH nor in .tools/bin must raise ToolMissing, never skip or pass."""
    from .helm_render import render

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tools, "REPO_ROOT", tmp_path)
    with pytest.raises(tools.ToolMissing, match="make setup"):
        render("mcp-server")


def test_helm_is_the_release_setup_pins() -> None:
    """The charts are linted and rendered by the helm line scripts/setup.sh builds (and the
    offline renderer links): another minor may template differently."""
    pinned = re.search(r'^HELM_VERSION="(v\d+\.\d+)\.\d+"$', SETUP.read_text(), re.MULTILINE)
    assert pinned, "scripts/setup.sh pins no HELM_VERSION"
    # A helm built with `go install` reports only its line ("v3.21"), a release "v3.21.4+g…".
    reported = run_helm("version", "--short").strip()
    assert re.fullmatch(re.escape(pinned[1]) + r"(\.\d+.*)?", reported), (reported, pinned[1])


@pytest.mark.parametrize("chart", CHARTS)
def test_lint_strict_with_defaults(chart: str) -> None:
    lint(chart)


@pytest.mark.parametrize("chart", CHARTS)
def test_lint_strict_with_realistic_values(chart: str) -> None:
    lint(chart, REALISTIC[chart][1])


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_metadata(chart: str) -> None:
    meta = yaml.safe_load((chart_dir(chart) / "Chart.yaml").read_text())
    assert (meta["apiVersion"], meta["name"], meta["version"], meta["type"]) == (
        "v2",
        chart,
        "0.1.0",
        "application",
    )
    assert (chart_dir(chart) / ".helmignore").is_file()


@pytest.mark.parametrize("chart", CHARTS)
def test_standard_helpers_are_defined(chart: str) -> None:
    text = (chart_dir(chart) / "templates" / "_helpers.tpl").read_text()
    defined = set(re.findall(r'define "([^"]+)"', text))
    assert {f"{chart}.{helper}" for helper in HELPERS} <= defined


@pytest.mark.parametrize("chart", CHARTS)
def test_one_object_per_template_file(chart: str) -> None:
    release, values = REALISTIC[chart]
    by_source = render_by_source(chart, values, release, NAMESPACE)
    assert by_source, "nothing rendered"
    crowded = {source: len(docs) for source, docs in by_source.items() if len(docs) != 1}
    assert not crowded
    templates = {p.name for p in (chart_dir(chart) / "templates").glob("*.yaml")}
    rendered = {source.rsplit("/", 1)[-1] for source in by_source}
    assert rendered == templates, "a template rendered nothing with realistic values"


def _loose_objects(schema: Any, path: str = "") -> list[str]:
    """Object schemas (with named properties) that would accept an unknown key."""
    found: list[str] = []
    if path.rsplit("/", 1)[-1] in PASS_THROUGH:
        return found
    if isinstance(schema, dict):
        if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            found.append(path or "/")
        for key, sub in schema.items():
            found += _loose_objects(sub, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            found += _loose_objects(sub, f"{path}/{i}")
    return found


@pytest.mark.parametrize("chart", CHARTS)
def test_schema_is_closed_at_every_level(chart: str) -> None:
    """A typo anywhere (a misspelt key) must be rejected, not silently ignored."""
    schema = json.loads((chart_dir(chart) / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert not _loose_objects(schema)


@pytest.mark.parametrize("chart", CHARTS)
def test_schema_names_every_default(chart: str) -> None:
    """values.yaml and the schema describe the same keys (no undocumented or dead value)."""
    schema = json.loads((chart_dir(chart) / "values.schema.json").read_text())
    defaults = yaml.safe_load((chart_dir(chart) / "values.yaml").read_text())
    assert set(defaults) <= set(schema["properties"])
    assert set(schema["properties"]) - set(defaults) <= set(schema["properties"]) - set(
        schema["required"]
    )
