"""Benchmark: the size of `python -m infra audit --format pr` at 20 MCP servers x 10 tools.

GitHub refuses a comment over 65,536 characters. Generates the environment the
policy benchmark uses (the dev stack with generated servers, here 20, the
platform's cap), renders it, and prints the characters of the PR comment and of
the full Markdown report. Not a test: it prints the figures.

    .venv/bin/python benchmarks/bench_audit_pr.py [--servers 20] [--tools 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_check import environment  # noqa: E402

from infra.offline.audit import render_markdown  # noqa: E402
from infra.offline.audit.pr import COMMENT_LIMIT, render_pr  # noqa: E402
from infra.offline.commands.audit import audit_source  # noqa: E402
from infra.offline.commands.source import source_of  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20)
    parser.add_argument("--tools", type=int, default=10)
    args = parser.parse_args()
    start = time.perf_counter()
    audit = audit_source(source_of("bench", environment(args.servers, args.tools)))
    full = render_markdown(audit)
    comment = render_pr(audit, full_report="audit.md")
    print(f"rendered and audited in {time.perf_counter() - start:.1f} s")
    print(
        f"{args.servers} servers x {args.tools} tools: PR comment {len(comment):,} characters "
        f"({len(comment) / COMMENT_LIMIT:.0%} of GitHub's {COMMENT_LIMIT:,}); full report "
        f"{len(full):,} characters"
    )
    return 0 if len(comment) < COMMENT_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
