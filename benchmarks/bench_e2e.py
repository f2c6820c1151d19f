"""Benchmark: the end-to-end tier's costs on this machine (printed, not a timed test).

Reports the tool builds (cold, as recorded when each tool was built; warm, timed now),
the control plane's start, and for dev and each generated `<servers>x<tools>` environment:
`pulumi up`, a no-change `up` and `preview`, `destroy`, the resources in the state (per
server too), the peak memory of the engine's process tree, and `kubectl apply
--server-side` of the same environment's render into the same control plane, the user's
alternative and the reference: `up-vs-apply <env>: <ratio>` on a line of its own.

Each environment's `up` and `destroy` run once more with PULUMI_SKIP_CHECKPOINTS=true: the
file backend the e2e tier uses rewrites the whole state after every step, which the profile
found to be most of a large `up`.

Aims (2 cores): dev up < 15 s, no-change up < 3 s, preview < 5 s; 20x10 up < 60 s and
within 3x kubectl apply, no-change up < 5 s, destroy < 30 s.

    .venv/bin/python benchmarks/bench_e2e.py [--sizes 20x10,50x10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_check import server  # noqa: E402
from infra.offline.manifests import MANIFESTS_DIR  # noqa: E402
from infra.pure.config import MAX_MCP_SERVERS, PERIMETER_KEY  # noqa: E402
from tests.e2e.harness.control_plane import ControlPlane  # noqa: E402
from tests.e2e.harness.perimeter import Perimeter  # noqa: E402
from tests.e2e.harness.processes import wait_for  # noqa: E402
from tests.e2e.harness.pulumi_cli import PulumiWorkspace  # noqa: E402
from tests.e2e.harness.tls import self_signed_pair  # noqa: E402
from tests.e2e.harness.tools import BUILD_SCRIPT, ensure_tools  # noqa: E402
from tests.fakes.platform_api import DEFAULT_API_KEY  # noqa: E402

CACHE = Path(os.environ.get("AP_CACHE", Path.home() / ".cache" / "agent-perimeter"))


@dataclass(frozen=True)
class Platform:
    base_url: str
    api_key: str


def rss_kib(pids: set[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [root]
    while stack:
        pid = stack.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


class PeakMemory:
    """Samples the summed RSS of this process's descendants (the engine, its plugins)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_kib(descendants(os.getpid())))


def generated_stack(servers: int, tools: int, target: Path) -> Path:
    document = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    settings = document["config"][PERIMETER_KEY]
    generated = [
        server(i, tools).model_dump(mode="json", exclude_none=True) for i in range(servers)
    ]
    for entry in generated:  # tags, not digests: dev does not require pinning
        entry["image"] = f"ghcr.io/example/mcp-{entry['name']}:1.0.0"
    settings["mcp_servers"] = generated
    names = [entry["name"] for entry in generated]
    settings["agents"] = [
        {
            "name": "bench-agent",
            "model": "claude-sonnet-5",
            "system_prompt_file": "prompts/export-ticket-agent.md",
            "sandbox": settings["sandboxes"][0]["name"],
            "mcp_servers": [{"server": name} for name in names[:MAX_MCP_SERVERS]],
        }
    ]
    settings["quota"] = {
        "pods": 200,
        "requests_cpu": "64",
        "requests_memory": "128Gi",
        "limits_cpu": "128",
        "limits_memory": "256Gi",
    }
    shutil.copytree(REPO / "prompts", target / "prompts", dirs_exist_ok=True)
    path = target / "Pulumi.bench.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def timed(label: str, run: object) -> float:
    begin = time.monotonic()
    result = run()  # type: ignore[operator]
    seconds = time.monotonic() - begin
    if getattr(result, "returncode", 0) != 0:
        raise SystemExit(f"{label} failed:\n{result.output[-4000:]}")  # type: ignore[attr-defined]
    print(f"  {label:<34} {seconds:7.1f} s", flush=True)
    return seconds


def kubectl_apply_seconds(plane: ControlPlane, stack_file: Path, namespace: str) -> float:
    """`kubectl apply --server-side` of the stack's render into an empty namespace, timed; the
    objects are deleted again and the namespace awaited gone before the next environment."""
    out = Path(tempfile.mkdtemp(prefix="ap-bench-render-")) / "render"
    subprocess.run(
        [sys.executable, "-m", "infra", "render", "--config", str(stack_file), "--out", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    folder = out / MANIFESTS_DIR
    begin = time.monotonic()
    plane.kubectl("apply", "--server-side", "--field-manager=bench", "-f", str(folder))
    seconds = time.monotonic() - begin
    objects = len(list(folder.glob("*.yaml")))
    print(f"  {'kubectl apply --server-side':<34} {seconds:7.1f} s  ({objects} objects)")
    plane.kubectl("delete", "--wait=false", "--ignore-not-found", "-f", str(folder), check=False)
    wait_for(
        f"namespace {namespace} to be gone",
        lambda: plane.kubectl("get", "namespace", namespace, check=False).returncode != 0,
        300,
    )
    shutil.rmtree(out.parent, ignore_errors=True)
    return seconds


def spans(events_json_lines: str) -> dict[str, list[float]]:
    """Seconds from each resource's first engine event to its outputs, by resource type, out of
    `pulumi up --json`'s event stream (the engine stamps each event)."""
    begun: dict[str, tuple[str, float]] = {}
    found: dict[str, list[float]] = {}
    decoder, at = json.JSONDecoder(), 0
    text = events_json_lines
    while (at := text.find("{", at)) != -1:
        try:
            event, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            at += 1
            continue
        if not isinstance(event, dict):
            continue
        stamp = float(event.get("timestamp") or 0)
        pre = event.get("resourcePreEvent")
        done = event.get("resOutputsEvent")
        if pre and pre["metadata"]["urn"] not in begun:
            begun[pre["metadata"]["urn"]] = (pre["metadata"]["type"], stamp)
        elif done and done["metadata"]["urn"] in begun:
            kind, start = begun.pop(done["metadata"]["urn"])
            found.setdefault(kind, []).append(stamp - start)
    return found


def print_spans(found: dict[str, list[float]]) -> None:
    print(f"  {'where `up` spends it, by type':<52} {'count':>5} {'sum s':>7} {'max s':>6}")
    ranked = sorted(found.items(), key=lambda item: -sum(item[1]))
    for kind, seconds in ranked[:10]:
        print(f"    {kind[-50:]:<50} {len(seconds):5d} {sum(seconds):7.0f} {max(seconds):6.0f}")


def size(text: str) -> tuple[int, int]:
    servers, _, tools = text.partition("x")
    return int(servers), int(tools)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20x10", help="generated environments, e.g. 20x10,50x10")
    args = parser.parse_args()
    sizes = [size(text) for text in args.sizes.split(",")]

    print("tool builds (cold: recorded when built; warm: a cached run now)")
    for done in sorted(CACHE.glob("*/.build-seconds")):
        print(f"  cold {done.parent.name:<36} {int(done.read_text()):7d} s")
    begin = time.monotonic()
    subprocess.run(["bash", str(BUILD_SCRIPT), "all"], check=True, capture_output=True)
    print(f"  warm (every tool cached)             {time.monotonic() - begin:7.1f} s")

    tools = ensure_tools()
    plane = ControlPlane(tools)
    fake_state = Path(tempfile.mkdtemp(prefix="ap-bench-platform-")) / "state.json"
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.platform_api",
            "--port",
            "0",
            "--state",
            str(fake_state),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    workspace = None
    try:
        plane.start()
        print(f"control plane ready in {plane.started_in:.1f} s")
        assert fake.stdout is not None
        platform = Platform(
            fake.stdout.readline().strip().removeprefix("listening on "), DEFAULT_API_KEY
        )
        workspace = PulumiWorkspace(tools, plane.kubeconfig)  # type: ignore[arg-type]
        workspace.run("login", workspace.env()["PULUMI_BACKEND_URL"])
        workspace.install_built_plugins()
        pair = self_signed_pair("bench")
        sources: dict[str, Path] = {"dev": REPO / "Pulumi.dev.yaml"}
        for servers, tools in sizes:
            if servers > MAX_MCP_SERVERS:
                print(
                    f"{servers}x{tools}: not run: an environment holds at most "
                    f"{MAX_MCP_SERVERS} MCP servers (MAX_MCP_SERVERS, the platform's cap)"
                )
                continue
            folder = Path(tempfile.mkdtemp(prefix="ap-bench-stack-"))
            sources[f"{servers}x{tools}"] = generated_stack(servers, tools, folder)
        ratios: list[str] = []
        for label, source in sources.items():
            print(f"{label}:")
            stack = Perimeter.prepare(workspace, plane, f"bench-{label}", pair, platform, source)
            with PeakMemory() as memory:
                begin = time.monotonic()
                first = stack.stack.up("--json")
                up = time.monotonic() - begin
            print(f"  {'pulumi up':<34} {up:7.1f} s", flush=True)
            count = len(stack.stack.export()["deployment"]["resources"])
            servers = len(stack.config.mcp_servers)
            print(f"  {'resources':<34} {count:7d}  ({count / servers:.1f} per server)")
            print(f"  {'peak RSS, engine + plugins':<34} {memory.peak / 1024:7.0f} MiB")
            print_spans(spans(first.stdout))
            timed("pulumi up (no changes)", stack.stack.up)
            timed("pulumi preview (no changes)", stack.stack.preview)
            timed("pulumi destroy", stack.stack.destroy)
            stack.await_namespace_absent()
            applied = kubectl_apply_seconds(plane, stack.stack.config_file, stack.namespace)
            ratios.append(f"up-vs-apply {label}: {up / applied:.1f}")
            # The profile's finding: with a file (DIY) backend the engine rewrites the whole
            # state after every step. The same `up` and `destroy` with only the final state
            # saved show what that costs (a choice for the user: a crash mid-`up` then loses
            # what the run had created so far).
            skip = {"PULUMI_SKIP_CHECKPOINTS": "true"}
            unsaved = timed(
                "pulumi up, PULUMI_SKIP_CHECKPOINTS",
                partial(stack.stack.run, "up", "--yes", "--skip-preview", env=skip),
            )
            timed(
                "pulumi destroy, PULUMI_SKIP_CHECKPOINTS",
                partial(stack.stack.run, "destroy", "--yes", "--skip-preview", env=skip),
            )
            stack.stack.remove()
            ratios.append(f"up-vs-apply-skip-checkpoints {label}: {unsaved / applied:.1f}")
        for line in ratios:
            print(line)
        assert plane.supervisor is not None
        pids = {p.pid for _, p in plane.supervisor.started}
        pids |= {d for pid in pids for d in descendants(pid)}
        print(f"control plane RSS now: {rss_kib(pids) / 1024:.0f} MiB")
    finally:
        fake.kill()
        fake.wait()
        if fake.stdout:
            fake.stdout.close()
        plane.stop()
        if workspace is not None:
            workspace.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
