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
    from infra.engine.boundary_repair import live_restore_tokens
    from infra.engine.preflight import require_cluster_prerequisites
    from infra.engine.stack import build, export_outputs
    from infra.pure.config import load_pulumi
    from infra.pure.network import network_policies

    config, secrets = load_pulumi()
    require_cluster_prerequisites(config)
    tokens = live_restore_tokens(network_policies(config), config.namespace)
    export_outputs(config, build(config, secrets, tokens))


if _run_by_pulumi_engine():
    _pulumi_program()
else:
    import gc

    # A command runs for seconds and keeps what it builds until it exits: the cycle collector
    # would only walk that heap again and again (a third of a 20-server render).
    gc.disable()
    from infra.offline.cli import exit_now, main

    exit_now(main())
