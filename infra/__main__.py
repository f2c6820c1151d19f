"""Entry point for both `pulumi up` (the engine runs this file) and `python -m infra <command>`."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run by the Pulumi language host as a program directory: make `infra` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.runtime.settings import get_monitor


def _pulumi_program() -> None:
    from infra.config import load_pulumi
    from infra.stack import build

    config, secrets = load_pulumi()
    build(config, secrets)


if get_monitor() is not None:
    _pulumi_program()
else:
    from infra.cli import main

    sys.exit(main())
