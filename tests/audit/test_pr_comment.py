"""`audit --format pr`: one GitHub comment, whatever the environment's size."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.bench_check import environment
from infra.offline.audit import pr
from infra.offline.audit.pr import COMMENT_LIMIT, marker, render_pr
from infra.offline.cli import main
from infra.offline.commands.audit import audit_source
from infra.offline.commands.source import source_of


@pytest.fixture(scope="module")
def large_audit():  # type: ignore[no-untyped-def]
    return audit_source(source_of("large", environment(20, 10)))


def test_twenty_servers_with_ten_tools_fit_one_comment(large_audit) -> None:  # type: ignore[no-untyped-def]
    comment = render_pr(large_audit, full_report="audit.md")
    assert len(comment) < COMMENT_LIMIT
    assert comment.startswith(marker("large") + "\n")
    assert "### Flags" in comment and "`audit.md`" in comment
    assert comment.count("<details>") == comment.count("</details>") >= 3
    # each MCP server's database credentials are counted, not listed one per tool
    assert "10x `database-role`" in comment


def test_external_destinations_are_named_and_the_full_report_keeps_the_cidr(large_audit) -> None:  # type: ignore[no-untyped-def]
    comment = render_pr(large_audit)
    assert "platform API TCP/443" in comment
    assert "tunnel edge TCP/7844, UDP/7844" in comment
    assert "database support TCP/5432" in comment
    assert not re.search(r"\b198\.41\.192\.0/19\b", comment)
    from infra.offline.audit import render_markdown

    assert "`platform API (160.79.104.0/23)` TCP/443" in render_markdown(large_audit)


def test_details_give_way_before_the_summary_when_space_runs_out(
    large_audit,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    monkeypatch.setattr(pr, "BUDGET", 4_000)
    comment = render_pr(large_audit, full_report="audit.md")
    assert len(comment) < 4_000
    assert "too long for one comment, see the full report" in comment
    assert "### Flags" in comment and "### Policy rules" in comment


def test_the_command_prints_the_comment_and_writes_the_full_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "artifacts" / "audit.md"
    assert main(["audit", "--stack", "dev", "--format", "pr", "--out", str(out)]) == 0
    comment = capsys.readouterr().out
    assert comment.startswith("<!-- agent-perimeter-audit dev -->\n")
    assert "Full report (every object, CIDRs, per-tool roles): `audit.md`" in comment
    full = out.read_text()
    assert full.startswith("## Boundary audit: dev")
    assert "`database support (10.20.0.15/32)` TCP/5432" in full
