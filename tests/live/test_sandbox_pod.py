"""The dev stack's walkthrough pool as a real pod: its chart exactly as the program renders it
(two containers: the worker holding the key, the tools under another user with none), the
image built here, Pod Security `restricted` enforced, serving sessions that a stand-in
platform on this machine hands it. From inside those sessions, the key stays out of reach,
nothing a session starts outlives it, and the pool's 60-second run and tool-call cap end
runs with the reason logged. Dev's NetworkPolicies are in force: the platform is reached
where dev declares its API (a stand-in address behind the containment's veth), and nothing
else is, from the worker or from agent code.

The one change to the render: the worker's ANTHROPIC_BASE_URL (the SDK's own variable) names
that stand-in address (plain HTTP on the API's port), so no request can leave the machine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra.offline.audit.probe import Target
from infra.offline.mocked import CHART_TYPE, chart_release, helm_template, synthesize
from infra.pure.config import load
from infra.pure.naming import sandbox_release
from tests.live.harness.containment import LINK_HOST
from tests.live.harness.session import FORBIDDEN, Live, stand_in
from tests.sandbox import attempts
from tests.sandbox.platform import FakePlatform, Session, result_text

NS = "ap-live-sandbox"
POOL = "export-tickets"  # dev's walkthrough pool: run_timeout_seconds 60, max_tool_calls 8
TOOLS_CALLS_NEEDED = 7  # the most calls one scripted session below makes before the cap one


def _pool_values() -> tuple[str, str, dict[str, Any]]:
    """The pool's release, chart and values, as `pulumi up --stack dev` gives them to Helm."""
    config = load(stack="dev")
    for resource in synthesize(config, render_charts=False).resources:
        if resource.type == CHART_TYPE:
            release = chart_release(resource)
            if release.name == sandbox_release(POOL):
                return release.name, release.chart, release.values
    raise AssertionError(f"dev has no sandbox pool {POOL!r}")


def _objects(live: Live, base_url: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every object of the pool's release in NS, its key Secret, and the Deployment."""
    name, chart, values = _pool_values()
    repository, tag = live.tools.images["sandbox-worker"].ref.rsplit(":", 1)
    values = values | {
        "image": {"repository": repository, "tag": tag, "digest": "", "pullPolicy": "Never"}
    }
    rendered = helm_template(name, chart, NS, values)
    (deployment,) = [m for m in rendered if m["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (worker,) = [c for c in pod["containers"] if c["name"] == "worker"]
    worker["env"].append({"name": "ANTHROPIC_BASE_URL", "value": base_url})
    key_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": values["environment"]["keySecretName"], "namespace": NS},
        "stringData": {"key": attempts.ENVIRONMENT_KEY},
    }
    return [key_secret, *rendered], deployment


@pytest.fixture
def pool(live: Live) -> Iterator[tuple[FakePlatform, str, dict[str, Any]]]:
    api = stand_in("dev", "platform API")
    platform = FakePlatform(host=LINK_HOST).start()
    objects, deployment = _objects(live, f"http://{api.address}:{api.port}")
    live.node.restricted_namespace(NS)
    try:
        with live.containment.forward(api.address, api.port, platform.server.server_address[1]):
            live.fence(NS, "dev")
            applied = live.node.apply(objects)
            assert "deployment.apps" in applied, applied
            # Available once both containers are Ready: the worker has polled the stand-in
            # through the fence, the tool host listens.
            name = deployment["metadata"]["name"]
            live.node.wait(NS, f"deployment/{name}", "available", 120)
            pod = live.node.pod_of(NS, deployment["spec"]["selector"]["matchLabels"])
            yield platform, pod["metadata"]["name"], deployment
    finally:
        live.node.kubectl("delete", "namespace", NS, "--wait=false", check=False)
        platform.stop()


def _reach(targets: list[Target]) -> str:
    """A shell line per target: `address:port reached`, or `blocked` after 3 s."""
    return "; ".join(
        f"timeout 3 bash -c ': >/dev/tcp/{t.address}/{t.port}' 2>/dev/null"
        f" && echo {t.address}:{t.port} reached || echo {t.address}:{t.port} blocked"
        for t in targets
    )


def _logs(live: Live, pod: str, container: str) -> str:
    return live.node.kubectl("-n", NS, "logs", pod, "-c", container, check=False).stdout


def _texts(platform: FakePlatform, session: Session) -> list[str]:
    return [result_text(r) for r in platform.tool_results(session)]


def test_the_walkthrough_pool_runs_sessions_with_the_key_out_of_reach_and_nothing_left(
    live: Live, pool: tuple[FakePlatform, str, dict[str, Any]]
) -> None:
    platform, pod, deployment = pool
    spec = deployment["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in spec["containers"]}
    worker, tools = containers["worker"], containers["tools"]
    args = dict(zip(worker["args"][::2], worker["args"][1::2], strict=True))
    cap, deadline = int(args["--max-tool-calls"]), float(args["--run-timeout-seconds"])
    assert (cap, deadline) == (8, 60), "dev's walkthrough pool is no longer 60 s and 8 calls"
    assert cap >= TOOLS_CALLS_NEEDED

    tried = attempts.key_attempts(args["--environment-key-file"], worker_pid=None, search_root="/")
    steal = platform.queue_session([("bash", {"command": c}) for c in tried.values()])
    # Agent code under the pool's egress policy: the platform's API address answers (the
    # worker's one way out), and no other address does: metadata, the internet, dev's
    # database (a stand-in listens at each, so a leak would be heard).
    api = stand_in("dev", "platform API")
    elsewhere = [*FORBIDDEN, stand_in("dev", "database support")]
    heard_before = len(live.containment.seen())
    egress = platform.queue_session([("bash", {"command": _reach([api, *elsewhere])})])
    # The SDK's file and bash tools at work in the session's workspace and in /tmp, on a
    # read-only root; then every way of staying behind.
    work = platform.queue_session(
        [
            ("write", {"file_path": "notes.txt", "content": "from the first session"}),
            ("bash", {"command": "cat notes.txt; echo; echo scratch > /tmp/s; cat /tmp/s; pwd"}),
            ("bash", {"command": "touch /usr/x 2>&1; true"}),
            *[
                ("bash", {"command": c})
                for c in [
                    *attempts.ESCAPES[:3],
                    attempts.ESCAPES[3] + " " + attempts.ESCAPES_RUNNING,
                ]
            ],
        ]
    )
    cut_off = platform.queue_session([("bash", {"command": attempts.LONG_CALL})], end="hold")
    # The last: what the earlier ones left (nothing), then calls past the cap.
    capped = platform.queue_session(
        [
            ("bash", {"command": attempts.COUNT}),
            ("bash", {"command": 'find /workspace /tmp -mindepth 1 | grep -v "^$(pwd)"; echo .'}),
            *[("bash", {"command": "true"})] * (cap - 1),
        ]
    )

    platform.wait_stopped(steal, timeout=120)
    results = dict(zip(tried, _texts(platform, steal), strict=True))
    assert results["every mount"] and results["every process"], results
    assert attempts.leaked(results) == [], (
        f"a tool in the pod read the environment key through: {attempts.leaked(results)}"
    )
    assert results["who am I"].strip() == str(tools["securityContext"]["runAsUser"])

    platform.wait_stopped(egress, timeout=120)
    (reached,) = _texts(platform, egress)
    assert reached.splitlines() == [
        f"{t.address}:{t.port} {'reached' if t == api else 'blocked'}" for t in [api, *elsewhere]
    ], reached
    heard = live.containment.heard_from_pods(since=heard_before)
    assert not heard & {(t.address, t.port, t.protocol) for t in elsewhere}, heard

    platform.wait_stopped(work, timeout=60)
    _, shown, root_write, *_, running = _texts(platform, work)
    lines = shown.split()
    assert lines[:2] == ["from", "the"] and "scratch" in lines, shown
    assert lines[-1].startswith("/workspace/"), "the session did not work in the pod's /workspace"
    assert "Read-only file system" in root_write, root_write
    assert int(running.split()[-1]) >= 4, "the session's background processes never started"

    began = time.monotonic()
    platform.wait_stopped(cut_off, timeout=deadline + 60)
    (result,) = platform.tool_results(cut_off)
    assert result["is_error"] is True and "run timeout reached" in result_text(result)
    assert time.monotonic() - began < deadline + 30

    platform.wait_stopped(capped, timeout=60)
    texts = _texts(platform, capped)
    assert texts[0].strip() == "0", "processes of earlier sessions still run in the pod"
    assert texts[1].split() == ["."], f"files of earlier sessions survived: {texts[1]}"
    assert len(texts) == cap + 1 and "tool-call cap" in texts[-1], texts[-1]

    worker_log = _logs(live, pod, "worker")
    for session, reason in (
        (cut_off, "run timeout of 60s reached"),
        (capped, "tool-call cap of 8"),
    ):
        assert any(reason in line and session.id in line for line in worker_log.splitlines()), (
            f"the worker never logged {reason!r} for {session.id}:\n{worker_log}"
        )
    tools_log = _logs(live, pod, "tools")
    assert "processes killed" in tools_log, tools_log
    for log in (worker_log, tools_log):
        assert attempts.ENVIRONMENT_KEY not in log
    restarts = live.node.kubectl(
        "-n", NS, "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[*].restartCount}"
    ).stdout.split()
    assert restarts == ["0", "0"], f"a container of the pod restarted: {restarts}"
