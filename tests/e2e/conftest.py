"""The end-to-end tier: the real Pulumi engine against a real kube-apiserver.

Tools come from the user's PATH or are built once into a cache outside the repo;
the control plane is started on loopback for the session and stopped by PID at the
end, whatever happens. `E2E_KUBECONFIG=<file>` points the tier at an existing cluster
instead, and `E2E_STACKS=dev,staging` narrows the shipped stacks it deploys.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness.control_plane import ControlPlane, ExternalCluster
from tests.e2e.harness.pulumi_cli import PulumiWorkspace
from tests.e2e.harness.tls import self_signed_pair
from tests.e2e.harness.tools import REPO, Tools, ensure_tools
from tests.fakes.platform_api import DEFAULT_API_KEY

STACKS = [s for s in os.environ.get("E2E_STACKS", "dev,staging,prod").split(",") if s]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _repo_stack_files_untouched() -> Iterator[None]:
    """The engine runs in the repo: nothing it does may change or delete a stack file."""
    before = {p: p.read_bytes() for p in REPO.glob("Pulumi*.yaml")}
    yield
    after = {p: p.read_bytes() for p in REPO.glob("Pulumi*.yaml")}
    assert after == before, "the e2e run changed or deleted a stack file in the repo"


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
    ws.install_built_plugins()
    try:
        yield ws
    finally:
        ws.cleanup()


@dataclass(frozen=True)
class PlatformApi:
    base_url: str
    api_key: str
    state: Path


@pytest.fixture(scope="session")
def platform_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformApi]:
    """The platform's API on loopback (the fake answers in the SDK's own types), as a process
    the engine's dynamic providers reach through the real client's base_url."""
    state = tmp_path_factory.mktemp("platform") / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.platform_api", "--port", "0", "--state", str(state)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on "), f"the fake platform did not start: {line!r}"
        yield PlatformApi(line.removeprefix("listening on "), DEFAULT_API_KEY, state)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="session")
def proxy_tls() -> tuple[str, str]:
    """A real certificate and key for the proxy's inner TLS layer."""
    return self_signed_pair("mcp-proxy.e2e")


def random_secret() -> str:
    return secrets.token_urlsafe(32)
