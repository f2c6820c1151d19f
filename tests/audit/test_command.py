"""`python -m infra audit` end to end, on fixtures (no render, no cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from infra.offline.audit import RecordedReader
from infra.offline.cli import main
from infra.offline.commands import audit as command
from infra.offline.commands.source import Source
from tests.audit.fixtures.perimeter import environment
from tests.audit.helpers import LIVE_NS, NETWORK, recorded


def test_a_manifest_folder_gives_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(NETWORK / "widening.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## Boundary audit: ")
    assert "`ingress-all-namespaces`" in out


def test_json_and_a_diagram(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    svg = tmp_path / "out" / "boundaries.svg"
    code = main(
        ["audit", str(NETWORK / "dns-only.yaml"), "--format", "json", "--diagram", str(svg)]
    )
    assert code == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert {f["code"] for f in data["flags"]} >= {"egress-internet", "egress-all-namespaces"}
    assert svg.read_bytes().lstrip().startswith(b"<?xml")
    assert f"diagram written to {svg}" in captured.err


def test_live_reports_drift_with_exit_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "program"
    folder.mkdir()
    (folder / "all.yaml").write_text(yaml.safe_dump_all(environment(1, 1, ns=LIVE_NS)))
    contexts: list[str | None] = []

    def reader(context: str | None, kubeconfig: str | None = None) -> RecordedReader:
        contexts.append(context)
        return RecordedReader(recorded())

    monkeypatch.setattr(command, "KubernetesReader", reader)
    argv = ["audit", str(folder), "--live", "--context", "ci", "--namespace", LIVE_NS]
    assert main(argv) == 1
    assert contexts == ["ci"]
    out = capsys.readouterr().out
    assert "### In the cluster, not declared by the program" in out
    assert "`NetworkPolicy/debug-allow-all`" in out
    # Not merely "not declared": judged by the same rules as the program.
    forbidden = out.split("### Forbidden by the policy pack", 1)[1].split("###", 1)[0]
    assert "debug-allow-all" in forbidden


def test_live_without_a_stack_uses_the_stack_that_deploys_the_namespace(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []

    def reader(context: str | None, kubeconfig: str | None = None) -> RecordedReader:
        return RecordedReader({})

    def read_cluster(reader: object, namespace: str) -> object:
        asked.append(namespace)
        raise command.LiveError("stop here")

    monkeypatch.setattr(command, "KubernetesReader", reader)
    monkeypatch.setattr(command, "read_cluster", read_cluster)
    assert main(["audit", "--live", "--namespace", "agent-perimeter-prod"]) == 2
    assert asked == ["agent-perimeter-prod"]
    assert command.stack_for_namespace("agent-perimeter-prod") == "prod"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["audit", "--live"], "--live needs --stack <env>, --config <file> or --namespace <ns>"),
        (
            ["audit", "--live", "--namespace", "elsewhere"],
            "no stack file deploys namespace 'elsewhere'",
        ),
    ],
)
def test_live_never_falls_back_to_a_default_stack(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.setattr(
        command, "KubernetesReader", lambda context, kubeconfig=None: RecordedReader({})
    )
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_live_on_a_folder_needs_a_namespace(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(
        command, "KubernetesReader", lambda context, kubeconfig=None: RecordedReader({})
    )
    assert main(["audit", str(NETWORK / "widening.yaml"), "--live"]) == 2
    assert "--namespace" in capsys.readouterr().err


def test_diff_of_two_stacks(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def load(stack: str) -> Source:
        servers = 3 if stack == "prod" else 2
        return Source(stack, environment(servers, ns=f"ap-{stack}"), None, stack)

    monkeypatch.setattr(command, "load_stack_source", load)
    assert main(["audit", "--diff", "staging", "prod", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["a"], data["b"]) == ("staging", "prod")
    assert any(c["subject"] == "Deployment/mcp-server-srv02" for c in data["changes"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--context", "x"], "apply with --live or --probe"),
        (["--diagram", "out.pdf"], ".svg or .png"),
        (["--tier", "prod", "--stack", "dev"], "--tier applies to a manifest folder"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str, capsys) -> None:
    target = [] if "--stack" in argv else [str(NETWORK / "widening.yaml")]
    assert main(["audit", *target, *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""  # refused before any report was written


def test_unreadable_input_exits_2(tmp_path: Path, capsys) -> None:
    assert main(["audit", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
