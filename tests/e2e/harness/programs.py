"""Test-only Pulumi programs, copied to a temp dir with the repo's virtualenv."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.harness.tools import REPO

PROGRAMS = Path(__file__).resolve().parent.parent / "programs"


@contextmanager
def program_dir(name: str) -> Iterator[Path]:
    """A copy of tests/e2e/programs/<name> with a Pulumi.yaml naming the repo's .venv,
    removed afterwards (it was left in /tmp after every run)."""
    target = Path(tempfile.mkdtemp(prefix=f"ap-e2e-{name}-"))
    try:
        shutil.copy(PROGRAMS / name / "__main__.py", target / "__main__.py")
        (target / "Pulumi.yaml").write_text(
            f"name: agent-perimeter-{name}\n"
            "runtime:\n"
            "  name: python\n"
            "  options:\n"
            "    toolchain: pip\n"
            f"    virtualenv: {REPO / '.venv'}\n"
        )
        yield target
    finally:
        shutil.rmtree(target, ignore_errors=True)
