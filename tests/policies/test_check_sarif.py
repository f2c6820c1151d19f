"""`check --format sarif`: what GitHub code scanning reads to annotate the offending line."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from infra.offline.cli import main
from infra.offline.locations import document_lines
from tests.policies import perimeter_fixtures as fx
from tests.policies.test_policy_check import MALICIOUS, clean_folder

NS = fx.NS
SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "sarif-2.1.0-required.schema.json").read_text()
)


def sarif(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["check", *args, "--format", "sarif"])
    report = json.loads(capsys.readouterr().out)
    jsonschema.validate(report, SCHEMA)
    return code, report


def test_a_violation_points_at_its_file_and_the_line_its_document_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = clean_folder(tmp_path)
    # Two objects in one file: the offending one is the second document.
    (folder / "extra.yaml").write_text(
        f"# hand-added\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: note, namespace: {NS}}}\n"
        "data: {a: b}\n---\n" + MALICIOUS["nodeport"][0]
    )
    code, report = sarif(capsys, str(folder))
    assert code == 1
    (result,) = report["runs"][0]["results"]
    assert result["ruleId"] == "service-cluster-ip-only"
    assert result["level"] == "error"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "extra.yaml", "uriBaseId": "CHECKED"}
    lines = (folder / "extra.yaml").read_text().splitlines()
    assert lines[location["region"]["startLine"] - 1] == "apiVersion: v1"
    assert location["region"]["startLine"] == 8
    rules = report["runs"][0]["tool"]["driver"]["rules"]
    assert rules[result["ruleIndex"]]["id"] == "service-cluster-ip-only"
    assert report["runs"][0]["originalUriBaseIds"]["CHECKED"]["uri"] == folder.as_uri() + "/"


def test_a_clean_folder_is_a_valid_log_without_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = sarif(capsys, str(clean_folder(tmp_path)))
    assert code == 0
    assert report["runs"][0]["results"] == []


def test_a_stack_maps_each_result_to_the_stack_file_line_that_declares_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, report = sarif(capsys, "--stack", "dev")
    assert code == 0  # dev's findings are advisory
    results = report["runs"][0]["results"]
    assert results and {r["level"] for r in results} == {"warning"}
    stack_lines = (Path(__file__).resolve().parents[2] / "Pulumi.dev.yaml").read_text().splitlines()
    for result in results:
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {"uri": "Pulumi.dev.yaml", "uriBaseId": "SRCROOT"}
        resource = result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        if resource.endswith("/mcp-server-tickets"):
            assert stack_lines[location["region"]["startLine"] - 1].strip() == "- name: tickets"


def test_document_lines_skip_comments_and_empty_documents() -> None:
    text = "---\n# c\n\na: 1\n---\n---\n  # only a comment\n---\nb: 2\nc: 3\n--- {d: 4}\n"
    assert document_lines(text) == [4, 9, 11]


def test_text_output_prints_a_shared_hint_once_under_its_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = clean_folder(tmp_path)
    (folder / "nodeport.yaml").write_text(MALICIOUS["nodeport"][0])
    (folder / "nodeport2.yaml").write_text(MALICIOUS["nodeport"][0].replace("debug", "debug2"))
    assert main(["check", str(folder)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"[mandatory] service-cluster-ip-only Service/{NS}/debug:")
    assert out[1].startswith(f"[mandatory] service-cluster-ip-only Service/{NS}/debug2:")
    assert out[2].startswith("    hint (2x): Remove spec.type")
    assert sum("hint" in line for line in out) == 1
