"""Shared fixtures: the shipped environments and their raw stack settings."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import PERIMETER_KEY, PerimeterConfig, load

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_STACKS = sorted(p.name.split(".")[1] for p in REPO_ROOT.glob("Pulumi.*.yaml"))


def raw_settings(stack: str = "dev") -> dict[str, Any]:
    """A fresh, mutable copy of a stack's `agent-perimeter:perimeter` settings."""
    document = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())
    return copy.deepcopy(document["config"][PERIMETER_KEY])


@pytest.fixture(params=SHIPPED_STACKS)
def shipped_config(request: pytest.FixtureRequest) -> PerimeterConfig:
    return load(stack=request.param)


@pytest.fixture
def dev_config() -> PerimeterConfig:
    return load(stack="dev")
