"""Offline subcommands of `python -m infra`; each module registers one."""
