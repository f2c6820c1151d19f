"""The reports a reviewer reads: Markdown for the pull request, JSON for machines, the diagram."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from infra.offline.audit import (
    DiagramError,
    audit_manifests,
    render_diagram,
    render_json,
    render_markdown,
)
from tests.audit.fixtures.perimeter import NS, environment
from tests.audit.helpers import scenario

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}svg"


@pytest.fixture(scope="module")
def audit():
    return audit_manifests(environment(2), label="fixture", tier="dev")


def test_markdown_has_the_three_matrices_and_no_flags_for_the_program_shape(audit) -> None:
    md = render_markdown(audit)
    assert md.startswith("## Boundary audit: fixture\n")
    for heading in (
        "### Flags",
        "### Network",
        "#### Flows between workloads",
        "### Credentials",
        "### Policy rules",
    ):
        assert f"\n{heading}\n" in md
    assert "**0 warning(s)**" in md
    assert "| `Deployment/mcp-tunnel` | `Deployment/mcp-server-tickets` | TCP/8080 |" in md
    assert "| `mcp-tunnel-token` | `tunnel-token` |" in md


def test_markdown_marks_open_and_wide_peers() -> None:
    md = render_markdown(scenario("widening"))
    assert "⚠️ **open**: no NetworkPolicy selects it" in md
    assert "⚠️ `all pods in every namespace` TCP/9090" in md
    assert "| ⚠️ warning | `ingress-all-namespaces` | `Deployment/api` |" in md


def test_json_is_complete_and_machine_readable(audit) -> None:
    data = json.loads(render_json(audit))
    assert data["summary"]["workloads"] == 5
    assert data["summary"]["secrets"] == len(data["credentials"]["secrets"])
    server = next(w for w in data["network"]["workloads"] if w["name"] == "mcp-server-tickets")
    assert server["ingress"]["isolated"] is True
    sources = {a["peer"]["ref"]: a["ports"] for a in server["ingress"]["allowed"]}
    assert sources == {
        f"Deployment/{NS}/mcp-tunnel": ["TCP/8080"],
        f"Deployment/{NS}/sandbox-runner": ["TCP/8080"],
    }
    dns = next(a for a in server["egress"]["allowed"] if a["peer"]["type"] == "pods")
    assert dns["peer"]["namespaces"] == "namespace kube-system" and dns["ports"] == [
        "TCP/53",
        "UDP/53",
    ]
    role = next(
        s for s in data["credentials"]["secrets"] if s["name"] == "mcp-server-tickets-db-write"
    )
    assert role["database_role"] == "mcp_tickets_write"
    assert role["readers"] == [
        {
            "workload": f"Deployment/{NS}/mcp-server-tickets",
            "how": "env",
            "detail": "main: DB_PASSWORD_WRITE ← key password",
        }
    ]


@pytest.mark.parametrize("runner", ["mcp-tunnel", "sandbox-runner"])
def test_tunnel_and_sandbox_runners_have_no_ingress_from_anywhere(audit, runner) -> None:
    net = audit.network.workloads[f"Deployment/{NS}/{runner}"]
    assert net.ingress.isolated and net.ingress.allowances == ()
    assert not [f for f in audit.network.flows if f.target == net.workload.ref]


def test_policy_results_are_the_policy_packs(audit) -> None:
    """Depends on policies.rules: the fixture's pods are not hardened, so pod rules fire."""
    assert audit.policy.available
    rules = {v.rule_id for v in audit.policy.violations}
    assert {"run-as-non-root", "no-automounted-token"} <= rules
    assert audit.policy.mandatory


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_diagram_is_a_valid_image(audit, tmp_path: Path, suffix: str) -> None:
    path = render_diagram(audit, tmp_path / f"boundaries{suffix}")
    data = path.read_bytes()
    if suffix == ".png":
        assert data.startswith(PNG_SIGNATURE)
    else:
        root = ET.fromstring(data)
        assert root.tag == SVG
        text = "".join(root.itertext())
        assert "Deployment/mcp-tunnel" in text and "mcp-tunnel-token" in text


def test_diagram_needs_a_known_extension(audit, tmp_path: Path) -> None:
    with pytest.raises(DiagramError, match=r"\.svg or \.png"):
        render_diagram(audit, tmp_path / "boundaries.pdf")
