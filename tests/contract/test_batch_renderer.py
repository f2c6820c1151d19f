"""The batch renderer the offline commands use is `helm template`, byte for byte.

`python -m infra render` (and check, audit) expands every Chart resource of an
environment in one process built from helm's own packages (scripts/renderer).
The engine's helm.v4.Chart renders like `helm template`; so must that process,
for every release of every shipped stack, and it must refuse bad values exactly
as helm does (the values schema).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from infra.offline.mocked import (
    CHART_TYPE,
    Release,
    chart_release,
    render_releases,
    render_texts,
    synthesize,
)
from infra.offline.tools import REPO_ROOT, RenderError
from tests.charts.helm_render import HelmFailed, run_helm
from tests.charts.test_values_rejected import CASES
from tests.conftest import SHIPPED_STACKS

pytestmark = pytest.mark.helm


def helm_cli(release: Release) -> str:
    """What the offline commands ran before: the helm CLI, values in a JSON file."""
    with tempfile.TemporaryDirectory(prefix="agent-perimeter-values-") as tmp:
        values_file = Path(tmp) / "values.json"
        values_file.write_text(json.dumps(release.values))
        set_args = [arg for pair in release.set_args for arg in ("--set", pair)]
        return run_helm(
            "template",
            release.name,
            str((REPO_ROOT / release.chart).resolve()),
            "--namespace",
            release.namespace,
            "-f",
            str(values_file),
            *set_args,
        )


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_release_of_a_shipped_stack_renders_as_helm_template_does(stack: str) -> None:
    from infra.pure.config import load

    synthesis = synthesize(load(stack=stack))
    releases = [chart_release(r) for r in synthesis.resources if r.type == CHART_TYPE]
    assert len({r.chart for r in releases}) == 3, "every chart is exercised"
    batch = render_texts(releases)
    for release, text in zip(releases, batch, strict=True):
        assert text == helm_cli(release), f"{release.name} ({release.chart}) differs"


def test_bad_values_are_refused_as_helm_refuses_them() -> None:
    releases = [
        Release(
            case.chart, f"charts/{case.chart}", "agent-perimeter-test", case.values, case.set_args
        )
        for case in CASES
    ]
    for release, case, outcome in zip(releases, CASES, render_texts(releases), strict=True):
        assert isinstance(outcome, RenderError), f"rendered {case.values} without complaint"
        for fragment in case.fragments:
            assert fragment in str(outcome)
        with pytest.raises(HelmFailed) as helm:
            helm_cli(release)
        message = helm.value.stderr.split("\n\nUse --debug flag")[0].strip()  # a CLI-only hint
        assert message in str(outcome), "the same message as helm's"


def test_a_failing_release_names_itself_and_stops_the_render() -> None:
    good = Release("ok", "charts/mcp-tunnel", "ns", {})
    bad = Release("broken", "charts/mcp-server", "ns", {"replicas": 2})
    with pytest.raises(RenderError, match=r"helm template broken \(charts/mcp-server\) failed"):
        render_releases([good, bad])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_charts_rendered_while_the_program_runs_are_the_same_objects(stack: str) -> None:
    """The commands stream each chart to the renderer as the program registers it (from the
    SDK's worker threads): every release must come back, each with its own objects."""
    from infra.offline.mocked import manifests_of
    from infra.pure.config import load

    config = load(stack=stack)
    streamed = synthesize(config, render_charts=True)
    assert streamed.charts is not None
    assert len(streamed.charts.releases) == sum(r.type == CHART_TYPE for r in streamed.resources)
    batch = synthesize(config)
    key = lambda m: (m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"])  # noqa: E731
    assert sorted(manifests_of(streamed), key=key) == sorted(manifests_of(batch), key=key)


def test_a_failed_run_stops_its_renderer() -> None:
    from infra.offline.mocked import ChartRenderer

    renderer = ChartRenderer()
    renderer.submit(Release("demo", "charts/mcp-tunnel", "agent-perimeter-dev", {}))
    process = renderer._proc
    assert process is not None and process.poll() is None
    renderer.close()
    assert process.returncode is not None


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_objects_it_returns_are_its_text_read_as_yaml(stack: str) -> None:
    """The renderer hands back each release's documents already read (as the Kubernetes
    libraries read YAML, which the provider uses): on every shipped release they are what
    reading its text with PyYAML (the check's reader) gives."""
    import yaml

    from infra.offline.mocked import Rendered, render_all
    from infra.pure.config import load

    synthesis = synthesize(load(stack=stack))
    releases = [chart_release(r) for r in synthesis.resources if r.type == CHART_TYPE]
    for release, rendered in zip(releases, render_all(releases), strict=True):
        assert isinstance(rendered, Rendered), release.name
        documents = [d for d in yaml.safe_load_all(rendered.text) if isinstance(d, dict)]
        assert documents, release.name
        assert rendered.objects == documents, release.name
