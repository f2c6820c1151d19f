"""Entry point for both `pulumi up` (the engine runs this file) and `python -m infra <command>`."""

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run by the Pulumi language host as a program directory: make `infra` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _run_by_pulumi_engine() -> bool:
    """The language host imports the SDK and connects a monitor before it runs this file."""
    settings = sys.modules.get("pulumi.runtime.settings")
    return settings is not None and settings.get_monitor() is not None


def _pulumi_program() -> None:
    from infra.config import load_pulumi
    from infra.preflight import require_cluster_prerequisites
    from infra.stack import build

    config, secrets = load_pulumi()
    require_cluster_prerequisites(config)
    build(config, secrets)


if _run_by_pulumi_engine():
    _pulumi_program()
else:
    from infra.cli import main

    sys.exit(main())
