"""Where an offline command's objects come from: a stack, a stack file, or a manifest folder."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from infra.offline.errors import ConfigError
from infra.offline.manifests import Manifest, ManifestError, OnLoaded, load_dir

if TYPE_CHECKING:
    from infra.pure.config import PerimeterConfig


def load(stack: str | None = None, config_file: str | None = None) -> PerimeterConfig:
    """The stack's validated config; the model (pydantic) loads only when a stack is read."""
    from infra.pure.config import load as load_config_model

    return load_config_model(stack=stack, config_file=config_file)


@dataclass
class Source:
    label: str
    manifests: list[Manifest]
    config: PerimeterConfig | None
    tier: str


def add_source_arguments(parser: argparse.ArgumentParser, *, allow_dir: bool) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--stack", help="environment name: reads Pulumi.<stack>.yaml")
    group.add_argument("--config", help="path of a stack file such as Pulumi.dev.yaml")
    if allow_dir:
        parser.add_argument(
            "path", nargs="?", help="a folder (or file) of Kubernetes YAML manifests instead"
        )


def load_config(args: argparse.Namespace) -> PerimeterConfig:
    if getattr(args, "stack", None) is None and getattr(args, "config", None) is None:
        raise ConfigError("command line", [("", "give --stack <env> or --config <file>")])
    return load(stack=args.stack, config_file=args.config)


def _render(config: PerimeterConfig) -> list[Manifest]:
    from infra.offline.mocked import (
        render_environment,  # pulls in the Pulumi SDK: only when rendering
    )

    return render_environment(config)


def load_stack_source(stack: str) -> Source:
    config = load(stack=stack)
    return Source(stack, _render(config), config, config.tier.value)


def load_source(args: argparse.Namespace, on_loaded: OnLoaded | None = None) -> Source:
    """`on_loaded`: see `load_dir` (a folder only)."""
    path = getattr(args, "path", None)
    if path is not None:
        if args.stack or args.config:
            raise ManifestError("give either a manifest folder or --stack/--config, not both")
        manifests = load_dir(Path(path), on_loaded)
        return Source(str(path), manifests, None, getattr(args, "tier", None) or "dev")
    return source_of(args.stack or str(args.config), load_config(args))


def source_of(label: str, config: PerimeterConfig) -> Source:
    return Source(label, _render(config), config, config.tier.value)
