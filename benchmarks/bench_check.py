"""Benchmark: `python -m infra check` against checkov on one large rendered environment.

Generates an environment of 50 MCP servers with 10 tools each (from the dev stack),
renders it the way `python -m infra render` does, then times `python -m infra check`
on the folder and checkov's Kubernetes framework on the very same files. Not a test:
it prints both wall-clock times, their ratio and the object count. Aim: check under
2 s and at least 20x faster than checkov.

checkov is not a project dependency: the first run installs it into a throwaway
virtualenv at .tools/checkov-venv (`--skip-checkov` leaves it out).

    .venv/bin/python benchmarks/bench_check.py [--servers 50] [--tools 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import infra.pure.agent  # noqa: E402
from infra.offline.manifests import write_dir  # noqa: E402
from infra.offline.mocked import render_environment  # noqa: E402
from infra.pure.config import McpServer, PerimeterConfig, load  # noqa: E402

CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = REPO / ".tools" / "checkov-venv"
OUT = REPO / "build" / "bench"


def server(index: int, tools: int) -> McpServer:
    """One generated server: alternating read and write tools, each on its own table."""
    name = f"svc{index:03d}"
    return McpServer.model_validate(
        {
            "name": name,
            "image": f"ghcr.io/example/mcp-{name}:1.0.0@sha256:{index:064x}",
            "replicas": 1,
            "database": "support",
            "tools": [
                {
                    "name": f"tool_{t:02d}",
                    "access": "read" if t % 2 == 0 else "write",
                    "grants": [
                        {
                            "table": f"{name}.table_{t:02d}",
                            "privileges": ["SELECT"] if t % 2 == 0 else ["INSERT"],
                        }
                    ],
                }
                for t in range(tools)
            ],
        }
    )


def environment(servers: int, tools: int) -> PerimeterConfig:
    """The dev stack with generated servers. Each server validates on its own; the list
    skips the platform's 20-server cap (here only: config validation and the program both
    enforce it), which `check` then reports on the agent definition."""
    infra.pure.agent.MAX_MCP_SERVERS = max(servers, infra.pure.agent.MAX_MCP_SERVERS)
    base = load(stack="dev")
    generated = [server(i, tools) for i in range(servers)]
    sandbox = base.sandboxes[0].model_copy(update={"direct_mcp_access": [generated[0].name]})
    # One definition over every server (no agents): the one that exceeds the platform's cap.
    return base.model_copy(update={"mcp_servers": generated, "sandboxes": [sandbox], "agents": []})


def timed(command: list[str], runs: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Median wall-clock time of `runs` runs, interpreter start-up included."""
    times, proc = [], None
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
    assert proc is not None
    return statistics.median(times), proc


def checkov_binary() -> Path:
    binary = CHECKOV_VENV / "bin" / "checkov"
    if not binary.exists():
        print(f"installing checkov {CHECKOV_VERSION} into {CHECKOV_VENV} (first run only)")
        venv.create(CHECKOV_VENV, with_pip=True)
        subprocess.run(
            [str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", f"checkov=={CHECKOV_VERSION}"],
            check=True,
        )
    return binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--tools", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="runs per tool; the median counts")
    parser.add_argument("--skip-checkov", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    manifests = render_environment(environment(args.servers, args.tools))
    folder = OUT / "manifests"
    write_dir(manifests, folder)
    print(
        f"rendered {len(manifests)} objects ({args.servers} MCP servers x {args.tools} tools) "
        f"into {folder.relative_to(REPO)} in {time.perf_counter() - start:.1f} s"
    )

    check_time, proc = timed(
        [sys.executable, "-m", "infra", "check", str(folder), "--format", "json"], args.runs
    )
    if proc.returncode not in (0, 1):
        print(proc.stderr, file=sys.stderr)
        return 2
    report = json.loads(proc.stdout)
    rules = sorted({v["rule"] for v in report["violations"]})
    print(
        f"python -m infra check: {check_time:.2f} s, {report['mandatory']} mandatory and "
        f"{report['advisory']} advisory violation(s) {rules}"
    )

    if args.skip_checkov:
        return 0
    checkov_time, proc = timed(
        [
            str(checkov_binary()),
            "--directory",
            str(folder),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
        ],
        args.runs,
    )
    try:
        result = json.loads(proc.stdout)
        summary = (result[0] if isinstance(result, list) else result)["summary"]
        detail = f"{summary['passed']} passed, {summary['failed']} failed checks"
    except (ValueError, KeyError, IndexError, TypeError):
        detail = f"exit {proc.returncode}"
    print(f"checkov (kubernetes): {checkov_time:.2f} s, {detail}")
    ratio = checkov_time / check_time
    print(
        f"objects: {len(manifests)}; check {check_time:.2f} s vs checkov {checkov_time:.2f} s: "
        f"{ratio:.1f}x faster (aim: check < 2 s and >= 20x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
