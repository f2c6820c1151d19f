"""Each chart tells its user what it deployed (NOTES.txt) and how to use it (README.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from .helm_render import CHARTS, chart_dir, run_helm

pytestmark = pytest.mark.helm

# helm renders NOTES.txt only on install; a copy of the chart renders it as a ConfigMap.
PREVIEW = """apiVersion: v1
kind: ConfigMap
metadata: {name: notes}
data:
  notes: {{ tpl (.Files.Get "notes.txt") . | quote }}
"""


def notes(chart: str, tmp_path: Path, *values: str) -> str:
    copy = tmp_path / chart
    shutil.copytree(chart_dir(chart), copy)
    (copy / "templates" / "NOTES.txt").rename(copy / "notes.txt")
    (copy / "templates" / "notes.yaml").write_text(PREVIEW)
    args = [arg for value in values for arg in ("--set", value)]
    out = run_helm(
        "template", "rel", str(copy), "-n", "team", *args, "--show-only", "templates/notes.yaml"
    )
    return str(yaml.safe_load(out)["data"]["notes"])


@pytest.mark.parametrize("chart", CHARTS)
def test_notes_name_the_release_and_how_to_check_it(chart: str, tmp_path: Path) -> None:
    text = notes(chart, tmp_path)
    assert f"rel-{chart}" in text and " in team" in text
    assert "kubectl -n team" in text


def test_tunnel_notes_list_the_routes_and_the_metrics_ports(tmp_path: Path) -> None:
    text = notes(
        "mcp-tunnel",
        tmp_path,
        "routes.tickets=http://mcp-server-tickets.team.svc.cluster.local:8080",
        "proxy.metricsPort=9090",
    )
    assert "  - tickets -> http://mcp-server-tickets.team.svc.cluster.local:8080" in text
    assert 'container port "metrics" (2000), the proxy on "proxy-metrics" (9090)' in text


@pytest.mark.parametrize("chart", CHARTS)
def test_every_chart_has_a_readme_naming_every_value(chart: str) -> None:
    readme = (chart_dir(chart) / "README.md").read_text()
    assert readme.startswith(f"# {chart}\n")
    values = yaml.safe_load((chart_dir(chart) / "values.yaml").read_text())
    undocumented = [key for key in values if f"`{key}" not in readme]
    assert undocumented == [], f"values the chart's README never names: {undocumented}"
