"""The render applied the way GitOps tools apply it (issue 22 §11).

`kubectl apply --server-side -f build/<env>/manifests` into the real control plane succeeds
as the folder stands (no platform plan among the objects, the namespace and its guards
first), and every object it created holds every rendered field. The offline-equals-real
contract holds the same render to what `pulumi up` creates, so both paths agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.offline.manifests import MANIFESTS_DIR, load_dir
from tests.e2e.conftest import STACKS
from tests.e2e.harness.contract import compare_object
from tests.e2e.harness.control_plane import ControlPlane, ExternalCluster
from tests.e2e.harness.processes import wait_for
from tests.e2e.harness.tools import REPO

NAMESPACE_GONE_SECONDS = 180


def _absent(cluster: ControlPlane | ExternalCluster, namespace: str) -> bool:
    return cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0


@pytest.mark.parametrize("stack", STACKS)
def test_kubectl_applies_the_render_as_it_is(
    cluster: ControlPlane | ExternalCluster, tmp_path: Path, stack: str
) -> None:
    out = tmp_path / stack
    subprocess.run(
        [sys.executable, "-m", "infra", "render", "--stack", stack, "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    folder = out / MANIFESTS_DIR
    manifests = load_dir(folder)
    namespace = next(m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace")
    wait_for(
        f"namespace {namespace} to be gone",
        lambda: _absent(cluster, namespace),
        NAMESPACE_GONE_SECONDS,
    )
    try:
        applied = cluster.kubectl(
            "apply", "--server-side", "--field-manager=gitops", "-f", str(folder), check=False
        )
        assert applied.returncode == 0, (applied.stdout + applied.stderr)[-4000:]
        problems: list[str] = []
        for manifest in manifests:
            group = manifest["apiVersion"].rpartition("/")[0]
            resource = f"{manifest['kind']}.{group}" if group else manifest["kind"]
            meta = manifest["metadata"]
            scope = ["-n", meta["namespace"]] if meta.get("namespace") else []
            live = cluster.kubectl("get", resource, meta["name"], *scope, "-o", "json")
            problems += compare_object(manifest, json.loads(live.stdout))
        assert not problems, "\n".join(problems[:40])
    finally:
        cluster.kubectl(
            "delete", "--wait=false", "--ignore-not-found", "-f", str(folder), check=False
        )
        wait_for(
            f"namespace {namespace} to be gone",
            lambda: _absent(cluster, namespace),
            NAMESPACE_GONE_SECONDS,
        )
