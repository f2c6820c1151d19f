"""The end-to-end tier: the real Pulumi engine against a real kube-apiserver.

Tools come from the user's PATH or are built once into a cache outside the repo;
the control plane is started on loopback for the session and stopped by PID at the
end, whatever happens. `E2E_KUBECONFIG=<file>` points the tier at an existing cluster
instead, and `E2E_STACKS=dev,staging` narrows the shipped stacks it deploys.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness.control_plane import ControlPlane, ExternalCluster
from tests.e2e.harness.pulumi_cli import PulumiWorkspace
from tests.e2e.harness.tools import Tools, ensure_tools

STACKS = [s for s in os.environ.get("E2E_STACKS", "dev,staging,prod").split(",") if s]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def tools() -> Tools:
    return ensure_tools()


@pytest.fixture(scope="session")
def cluster(tools: Tools) -> Iterator[ControlPlane | ExternalCluster]:
    external = os.environ.get("E2E_KUBECONFIG")
    if external:
        yield ExternalCluster(tools, Path(external))
        return
    plane = ControlPlane(tools)
    try:
        plane.start()
        print(
            f"\ncontrol plane ready in {plane.started_in:.1f} s at {plane.server}", file=sys.stderr
        )
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def workspace(tools: Tools, cluster: ControlPlane | ExternalCluster) -> Iterator[PulumiWorkspace]:
    assert cluster.kubeconfig is not None
    ws = PulumiWorkspace(tools, cluster.kubeconfig)
    login = ws.run("login", ws.env()["PULUMI_BACKEND_URL"])
    assert login.returncode == 0, login.output
    try:
        yield ws
    finally:
        ws.cleanup()


@pytest.fixture(scope="session")
def proxy_tls() -> Iterator[tuple[str, str]]:
    """A real certificate and key for the proxy's inner TLS layer."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                "proxy.key",
                "-out",
                "proxy.crt",
                "-subj",
                "/CN=mcp-proxy.e2e",
            ],
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        yield (Path(tmp, "proxy.crt").read_text(), Path(tmp, "proxy.key").read_text())


def random_secret() -> str:
    return secrets.token_urlsafe(32)
