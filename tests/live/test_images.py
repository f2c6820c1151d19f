"""The images built here (scripts/e2e/build-tools.sh) run on the real node under Pod Security
`restricted`: non-root as the image's own user, read-only root filesystem, no privilege
escalation, every capability dropped, RuntimeDefault seccomp. Each one runs the command its
workload runs, to the point it can without a database, a platform or a contract."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from infra.pure.config import load
from infra.pure.database.job import MIN_PSQL_VERSION
from tests.live.harness.session import Live

NS = "ap-live-images"
PSQL_VERSION = re.compile(r"^psql \(PostgreSQL\) (\d+)\.\d+", re.MULTILINE)


def _pod(name: str, image: str, command: list[str] | None) -> dict[str, Any]:
    """A one-shot pod under `restricted` that names no user: the image's own (65532) runs."""
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",  # built here, imported into containerd; no registry
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
    }
    if command is not None:
        container["command"] = command
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,  # the server's environment holds nothing we did not set
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [container],
        },
    }


def _terminated(live: Live, name: str, timeout: float = 90) -> tuple[int, str]:
    """The container's exit code and log, once the pod has run to its end."""
    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        out = live.node.kubectl("-n", NS, "get", "pod", name, "-o", "json", check=False)
        if out.returncode == 0:
            statuses = json.loads(out.stdout)["status"].get("containerStatuses") or [{}]
            state = statuses[0].get("state", {})
            if "terminated" in state:
                logs = live.node.kubectl("-n", NS, "logs", name).stdout
                return state["terminated"]["exitCode"], logs
        time.sleep(0.3)
    raise AssertionError(f"pod {name} did not run to its end in {timeout:.0f} s (state {state})")


def test_built_images_run_under_restricted(live: Live) -> None:
    node = live.node
    images = live.tools.images
    dev = load(stack="dev")
    # dev runs what is built here
    assert images["mcp-exports"].ref == str(dev.server("exports").image)
    assert images["role-provisioner"].ref == str(dev.provisioner.image)
    node.restricted_namespace(NS)
    pods = {
        # The role-provisioning Job's shell: /bin/sh, cat and psql (infra/pure/database/job.py).
        "provisioner": _pod(
            "provisioner",
            images["role-provisioner"].ref,
            ["/bin/sh", "-c", "set -eu; id -u; cat /etc/hostname >/dev/null; psql --version"],
        ),
        # The chart's worker.command (charts/sandbox-runner/values.yaml), asked for its help.
        "worker": _pod(
            "worker", images["sandbox-worker"].ref, ["python", "-m", "sandbox", "--help"]
        ),
        # The image's own entrypoint with no contract in its environment.
        "exports": _pod("exports", images["mcp-exports"].ref, None),
    }
    try:
        for pod in pods.values():
            node.kubectl("apply", "-f", "-", stdin=json.dumps(pod))

        code, logs = _terminated(live, "provisioner")
        assert code == 0, logs
        assert logs.splitlines()[0] == "65532", logs
        found = PSQL_VERSION.search(logs)
        assert found and int(found[1]) >= MIN_PSQL_VERSION, logs

        code, logs = _terminated(live, "worker")
        assert code == 0, logs
        assert logs.startswith("usage:") and "sandbox" in logs, logs

        code, logs = _terminated(live, "exports")
        assert code == 2, logs  # the runtime refuses a missing contract (servers/runtime/app.py)
        assert re.search(r"refusing to start: MCP_[A-Z_]+: not set", logs), logs
    finally:
        node.kubectl("delete", "namespace", NS, "--wait=false", check=False)
