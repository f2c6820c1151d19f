"""What the engine must refuse, with a clear message, creating nothing."""

from __future__ import annotations

import time

import pytest

from infra.pure.config import PROJECT
from tests.e2e.harness.perimeter import Perimeter
from tests.e2e.harness.programs import program_dir
from tests.e2e.harness.pulumi_cli import PulumiWorkspace
from tests.e2e.harness.tools import REPO


def test_policy_pack_stops_a_program_that_opens_an_inbound_port(
    workspace: PulumiWorkspace,
) -> None:
    with program_dir("violating") as project:
        stack = "violating"
        assert workspace.run("stack", "init", stack, cwd=project).returncode == 0
        try:
            set_ns = workspace.run(
                "config", "set", "namespace", "agent-perimeter-dev", "--stack", stack, cwd=project
            )
            assert set_ns.returncode == 0, set_ns.output
            preview = workspace.run(
                "preview", "--stack", stack, "--policy-pack", str(REPO / "policies"), cwd=project
            )
            assert preview.returncode != 0
            assert "service-cluster-ip-only" in preview.output
            assert "mandatory" in preview.output
        finally:
            workspace.run(
                "stack", "rm", "--yes", "--force", "--preserve-config", stack, cwd=project
            )


def test_a_missing_secret_is_named_and_nothing_is_created(
    workspace: PulumiWorkspace, cluster, proxy_tls, platform_api
) -> None:
    perimeter = Perimeter.prepare(
        workspace,
        cluster,
        "missing-secret",
        proxy_tls,
        platform_api,
        stack_file=REPO / "Pulumi.dev.yaml",
    )
    try:
        perimeter.stack.run("config", "rm", f"{PROJECT}:tunnelTlsKey")
        up = perimeter.stack.up(check=False)
        assert up.returncode != 0
        assert f"{PROJECT}:tunnelTlsKey: missing" in up.output
        assert "nothing was deployed or written" in up.output
        state = perimeter.stack.export()["deployment"].get("resources") or []
        assert [r["type"] for r in state if not r["type"].startswith("pulumi:")] == []
        gone = cluster.kubectl("get", "namespace", perimeter.namespace, check=False)
        assert gone.returncode != 0
    finally:
        perimeter.stack.remove()


def test_a_missing_runtime_class_fails_the_preview_fast(
    workspace: PulumiWorkspace, cluster, proxy_tls, platform_api
) -> None:
    perimeter = Perimeter.prepare(
        workspace,
        cluster,
        "no-runtime-class",
        proxy_tls,
        platform_api,
        stack_file=REPO / "Pulumi.staging.yaml",
    )
    names = perimeter.required_runtime_classes()
    assert names, "the staging stack names a RuntimeClass"
    for name in names:
        cluster.kubectl("delete", "runtimeclass", name, "--ignore-not-found")
    try:
        begin = time.monotonic()
        preview = perimeter.stack.preview(check=False)
        took = time.monotonic() - begin
        assert preview.returncode != 0
        assert "runtime_class_name" in preview.output
        assert f"RuntimeClass {names[0]!r} does not exist in the cluster" in preview.output
        assert took < 120, f"the preview took {took:.0f} s to refuse"
    finally:
        perimeter.stack.remove()


@pytest.mark.parametrize("key", ["tunnelTlsCert", "tunnelTlsKey"])
def test_a_pem_secret_set_on_stdin_round_trips(
    workspace: PulumiWorkspace, cluster, proxy_tls, platform_api, key: str
) -> None:
    """The README's form: the PEM (which starts with '-') goes on stdin, not as an argument."""
    perimeter = Perimeter.prepare(
        workspace,
        cluster,
        "pem-secret",
        proxy_tls,
        platform_api,
        stack_file=REPO / "Pulumi.dev.yaml",
    )
    try:
        value = proxy_tls[0] if key == "tunnelTlsCert" else proxy_tls[1]
        as_argument = perimeter.stack.run(
            "config", "set", "--secret", f"{PROJECT}:{key}", value, check=False
        )
        assert as_argument.returncode != 0, "the CLI now accepts a PEM argument: update README"
        got = perimeter.stack.run("config", "get", f"{PROJECT}:{key}").stdout
        assert got.strip() == value.strip()
    finally:
        perimeter.stack.remove()
