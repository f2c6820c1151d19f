"""Benchmark: `python -m infra audit` on the 50-server environment of the policy benchmark.

Renders the environment bench_check.py generates (the dev stack with 50 MCP
servers x 10 tools), writes it as a manifest folder, then times the audit two
ways: in process (network matrix, credential matrix, policy rules, Markdown)
and as the command a user runs on the folder (interpreter start-up included),
plus the diagram. Not a test: it prints the times. Aim: the audit under 2 s.

    .venv/bin/python benchmarks/bench_audit.py [--servers 50] [--tools 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_check import environment  # noqa: E402

from infra.offline.audit import Audit, audit_manifests, render_diagram, render_json, render_markdown  # noqa: E402
from infra.offline.manifests import load_dir, write_dir  # noqa: E402
from infra.offline.mocked import render_environment  # noqa: E402

OUT = REPO / "build" / "bench-audit"


T = TypeVar("T")


def median_time(run: Callable[[], T], runs: int) -> tuple[float, T]:
    """Median wall-clock time of `runs` calls, and the last result."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--tools", type=int, default=10)
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per measurement; the median counts"
    )
    args = parser.parse_args()

    start = time.perf_counter()
    config = environment(args.servers, args.tools)
    manifests = render_environment(config)
    folder = OUT / "manifests"
    write_dir(manifests, folder)
    print(
        f"rendered {len(manifests)} objects ({args.servers} MCP servers x {args.tools} tools) "
        f"into {folder.relative_to(REPO)} in {time.perf_counter() - start:.1f} s"
    )

    def audit(policies: bool) -> Audit:
        return audit_manifests(
            manifests, label="bench", default_namespace=config.namespace, policies=policies
        )

    matrices, _ = median_time(lambda: render_markdown(audit(False)), args.runs)
    full, _ = median_time(lambda: render_markdown(audit(True)), args.runs)
    report = audit(True)
    print(
        f"audit in process: {matrices:.2f} s matrices + Markdown, {full:.2f} s with the policy "
        f"rules ({len(report.network.workloads)} workloads, {len(report.network.flows)} flows, "
        f"{len(report.credentials.credentials)} Secrets, {len(report.flags)} flags, "
        f"{len(report.policy.violations)} policy violations)"
    )
    json_time, _ = median_time(lambda: render_json(report), args.runs)
    diagram_time, _ = median_time(lambda: render_diagram(report, OUT / "boundaries.svg"), 1)
    print(f"JSON {json_time:.2f} s; diagram (dot, SVG) {diagram_time:.2f} s")

    load_time, _ = median_time(lambda: load_dir(folder), 1)
    print(f"reading the folder back (infra.offline.manifests.load_dir): {load_time:.2f} s")

    command = [sys.executable, "-m", "infra", "audit", str(folder)]
    wall, proc = median_time(
        lambda: subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False),
        args.runs,
    )
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 2
    verdict = "under" if full < 2 else "OVER"
    print(f"the audit: {full:.2f} s ({verdict} the 2 s aim)")
    print(
        f"python -m infra audit <folder>: {wall:.2f} s wall clock, of which about "
        f"{load_time:.2f} s reading YAML and the rest interpreter start-up and imports"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
