"""Benchmark: render + check of 5, 20 and 50 MCP servers (10 tools each), as a user runs them.

Each size is the generated environment of bench_check.py (the dev stack with
generated servers). "render" is a fresh interpreter doing what `python -m infra
render` does (synthesis under mocks, every chart expanded, files written); a stack
file cannot hold 50 servers (the platform's cap), so the generated config is handed
over in process. "check" is `python -m infra check <folder>`. Not a test: it prints
the wall-clock times. Aims: render + check under 2 s at 20 servers, under 4 s at 50.

    .venv/bin/python benchmarks/bench_render.py [--sizes 5 20 50] [--tools 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "build" / "bench-render"
AIMS = {20: 2.0, 50: 4.0}

RENDER = """
import gc
import sys
gc.disable()  # as `python -m infra` does
sys.path.insert(0, {benchmarks!r})
from bench_check import environment
from infra.offline.cli import exit_now
from infra.offline.manifests import write_dir
from infra.offline.mocked import manifests_of, synthesize
write_dir(manifests_of(synthesize(environment({servers}, {tools}), render_charts=True)), {folder!r})
exit_now(0)  # as `python -m infra` ends
"""


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # check exits 1 when it finds violations
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{proc.stderr}")
    return elapsed


def measure(servers: int, tools: int) -> tuple[float, float]:
    folder = OUT / f"{servers}x{tools}"
    code = RENDER.format(
        benchmarks=str(REPO / "benchmarks"), servers=servers, tools=tools, folder=str(folder)
    )
    render = timed([sys.executable, "-c", code])
    check = timed([sys.executable, "-m", "infra", "check", str(folder), "--format", "json"])
    return render, check


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--tools", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the median counts")
    args = parser.parse_args()
    for servers in args.sizes:
        runs = [measure(servers, args.tools) for _ in range(args.runs)]
        render = statistics.median(r for r, _ in runs)
        check = statistics.median(c for _, c in runs)
        objects = len(list((OUT / f"{servers}x{args.tools}").glob("*.yaml")))
        aim = AIMS.get(servers)
        verdict = (
            f" (aim < {aim:.0f} s: {'met' if render + check < aim else 'missed'})" if aim else ""
        )
        print(
            f"{servers:3d} servers x {args.tools} tools, {objects} objects: render {render:.2f} s "
            f"+ check {check:.2f} s = {render + check:.2f} s{verdict}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
