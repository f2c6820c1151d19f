"""The audit of every shipped environment, as `python -m infra audit --stack <env>` renders it."""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from infra.offline.audit import Audit, audit_manifests, diff_audits, render_diagram, render_markdown
from infra.offline.commands.audit import audit_source
from infra.offline.commands.source import Source, load_stack_source
from infra.pure import naming

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml"))


@pytest.fixture(scope="module")
def sources() -> dict[str, Source]:
    return {stack: load_stack_source(stack) for stack in STACKS}


@pytest.fixture(scope="module", params=STACKS)
def audit(request: pytest.FixtureRequest, sources: dict[str, Source]) -> Audit:
    return audit_source(sources[request.param])


def _runners(audit: Audit, component: str) -> list:
    found = [w for w in audit.network.workloads.values() if w.workload.component == component]
    assert found, f"no {component} workload in {audit.label}"
    return found


@pytest.mark.parametrize("component", [naming.COMPONENT_TUNNEL, naming.COMPONENT_SANDBOX])
def test_tunnel_and_sandbox_runners_have_no_ingress_from_anywhere(
    audit: Audit, component: str
) -> None:
    for net in _runners(audit, component):
        assert net.ingress.isolated, net.workload.ref
        assert net.ingress.allowances == (), net.workload.ref
        assert not [f for f in audit.network.flows if f.target == net.workload.ref]


def test_every_secret_has_exactly_one_reader(audit: Audit) -> None:
    assert audit.credentials.credentials
    for c in audit.credentials.credentials:
        assert len(c.reader_workloads) == 1, (c.ref, c.reader_workloads)
    assert not audit.credentials.undeclared


def test_the_admin_credential_is_held_only_by_the_provisioner(audit: Audit) -> None:
    admins = [
        c for c in audit.credentials.credentials if c.kind == naming.CREDENTIAL_DATABASE_ADMIN
    ]
    assert admins
    for c in admins:
        for ref in c.reader_workloads:
            assert audit.inventory.workloads[ref].component == naming.COMPONENT_PROVISIONER


def test_nothing_is_flagged_and_no_mandatory_rule_fails(audit: Audit) -> None:
    assert [f for f in audit.flags if f.severity == "warning"] == []
    assert audit.policy.available, audit.policy.note
    assert audit.policy.mandatory == []
    assert "**0 warning(s)**" in render_markdown(audit)


def test_mcp_servers_are_reached_only_by_the_tunnel_and_sandboxes(audit: Audit) -> None:
    servers = _runners(audit, naming.COMPONENT_MCP_SERVER)
    allowed = {naming.COMPONENT_TUNNEL, naming.COMPONENT_SANDBOX}
    for net in servers:
        for flow in (f for f in audit.network.flows if f.target == net.workload.ref):
            assert audit.inventory.workloads[flow.source].component in allowed


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_the_diagram_of_dev_is_a_valid_image(sources, tmp_path: Path, suffix: str) -> None:
    audit = audit_manifests(sources["dev"].manifests, label="dev", policies=False)
    data = render_diagram(audit, tmp_path / f"dev{suffix}").read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        assert ET.fromstring(data).tag == "{http://www.w3.org/2000/svg}svg"


def test_promotion_from_staging_to_prod_changes_only_environment_values(sources) -> None:
    staging, prod = (audit_source(sources[s], policies=False) for s in ("staging", "prod"))
    diff = diff_audits(staging, prod)
    # Database addresses and the platform URLs differ by design; reachability between
    # workloads, who reads which Secret, and the flags must not.
    for change in diff.changes:
        if change.area == "egress":
            ipaddress.ip_network(change.what)  # a CIDR, not a workload or namespace
        else:
            assert (change.area, change.what) == ("credential", "grants"), change
            assert "platform credential bound to" in change.a, change


def test_backends_are_named_in_the_network_matrix_and_their_credentials_listed(
    sources: dict[str, Source],
) -> None:
    """A reviewer sees which backend each MCP server may reach and who holds its credential."""
    source = sources["dev"]
    assert source.config is not None
    text = render_markdown(audit_source(source))
    for server in source.config.mcp_servers:
        for backend in server.backends:
            for cidr in backend.effective_cidrs:
                assert f"`backend {server.name}/{backend.name} ({cidr})`" in text
            if backend.credential:
                row = next(
                    line
                    for line in text.splitlines()
                    if line.startswith(f"| `{naming.backend_secret_name(server, backend.name)}-")
                )
                assert f"credential of backend {backend.name}, as a file" in row
                assert f"`Deployment/{naming.mcp_release(server)}`" in row
