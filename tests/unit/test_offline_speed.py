"""What keeps the offline commands fast and must not silently come back."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_rendering_an_environment_never_imports_the_platform_sdk() -> None:
    """The `anthropic` SDK takes about a second to import; render only registers the
    platform objects, so a module importing it eagerly shows up here."""
    probe = (
        "import sys\n"
        "from infra.pure.config import load\n"
        "from infra.offline.mocked import manifests_of, synthesize\n"
        "manifests_of(synthesize(load(stack='dev')))\n"
        "print('anthropic' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == "False"
