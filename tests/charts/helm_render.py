"""Render and lint the charts with the real helm CLI, as the program's offline render does.

helm is located with `infra.offline.tools.helm_binary()`; when it is missing that raises
`ToolMissing`, so a test that renders fails loudly instead of being skipped (a
skipped chart suite would let a broken chart through CI).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from infra.offline import tools

CHARTS = ("mcp-server", "mcp-tunnel", "sandbox-runner")
DEFAULT_NAMESPACE = "agent-perimeter-test"

Manifest = dict[str, Any]


class HelmFailed(Exception):
    """helm exited non-zero; the message is helm's own stderr (it names the bad field)."""

    def __init__(self, args: Sequence[str], stderr: str):
        self.stderr = stderr
        super().__init__(f"helm {' '.join(args)} failed:\n{stderr}")


def chart_dir(chart: str) -> Path:
    return tools.CHARTS_DIR / chart


def run_helm(*args: str) -> str:
    """Run helm with the project's isolated helm homes; stdout, or HelmFailed."""
    proc = subprocess.run(
        [tools.helm_binary(), *args],
        capture_output=True,
        text=True,
        env=tools.helm_env(),
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise HelmFailed(args, proc.stderr)
    return proc.stdout


def template(
    chart: str,
    values: Mapping[str, Any] | None = None,
    release: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    extra_args: Sequence[str] = (),
) -> str:
    """`helm template` output as text; values go through a file, exactly as given."""
    with tempfile.TemporaryDirectory(prefix="helm-values-") as tmp:
        values_file = Path(tmp) / "values.yaml"
        values_file.write_text(yaml.safe_dump(dict(values or {}), sort_keys=False))
        return run_helm(
            "template",
            release or chart,
            str(chart_dir(chart)),
            "--namespace",
            namespace,
            "-f",
            str(values_file),
            *extra_args,
        )


def render(
    chart: str,
    values: Mapping[str, Any] | None = None,
    release: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    extra_args: Sequence[str] = (),
) -> list[Manifest]:
    """Every object `helm template <release> charts/<chart> --namespace <ns> -f values.yaml` renders."""
    text = template(chart, values, release, namespace, extra_args)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_by_source(
    chart: str,
    values: Mapping[str, Any] | None = None,
    release: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
) -> dict[str, list[Manifest]]:
    """Objects grouped by the template file that produced them (helm's `# Source:` line)."""
    grouped: dict[str, list[Manifest]] = {}
    for chunk in template(chart, values, release, namespace).split("\n---\n"):
        source = next(
            (
                line.split(":", 1)[1].strip()
                for line in chunk.splitlines()
                if line.startswith("# Source:")
            ),
            None,
        )
        docs = [doc for doc in yaml.safe_load_all(chunk) if doc]
        if source is None:
            assert not docs, f"helm printed an object without a # Source: line:\n{chunk}"
            continue
        grouped.setdefault(source, []).extend(docs)
    return grouped


def lint(chart: str, values: Mapping[str, Any] | None = None) -> str:
    """`helm lint --strict` (warnings fail too), optionally with a values file."""
    with tempfile.TemporaryDirectory(prefix="helm-values-") as tmp:
        args = ["lint", "--strict", str(chart_dir(chart))]
        if values is not None:
            values_file = Path(tmp) / "values.yaml"
            values_file.write_text(yaml.safe_dump(dict(values), sort_keys=False))
            args += ["-f", str(values_file)]
        return run_helm(*args)


def only(manifests: Sequence[Manifest], kind: str) -> Manifest:
    """The single object of a kind (asserting there is exactly one)."""
    found = [m for m in manifests if m.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def kinds(manifests: Sequence[Manifest]) -> list[str]:
    return sorted(m["kind"] for m in manifests)
