"""Shared fixtures: the shipped environments and their raw stack settings."""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.pure.config import PERIMETER_KEY, ConfigError, PerimeterConfig, load, parse_perimeter
from tests.database.conftest import Server, running_pg
from tests.signals import interrupt

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_STACKS = sorted(p.name.split(".")[1] for p in REPO_ROOT.glob("Pulumi.*.yaml"))


def raw_settings(stack: str = "dev") -> dict[str, Any]:
    """A fresh, mutable copy of a stack's `agent-perimeter:perimeter` settings."""
    document = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())
    return copy.deepcopy(document["config"][PERIMETER_KEY])


def assert_refused(mutate: Callable[[dict[str, Any]], Any], field: str, message: str) -> None:
    """dev's settings changed by `mutate` are refused, `field` named with `message`, and
    nothing deployed."""
    raw = raw_settings("dev")
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_perimeter(raw, "Pulumi.dev.yaml")
    problems = dict(caught.value.problems)
    assert field in problems, f"{field} not reported; got {caught.value.problems}"
    assert message in problems[field]
    assert "nothing was deployed or written" in str(caught.value)


def run_infra(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m infra <args>` from the repo root, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "infra", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        timeout=timeout,
    )


def pytest_configure(config: pytest.Config) -> None:
    """CI and `timeout` stop a run with SIGTERM: as KeyboardInterrupt, pytest ends the run and
    still runs every teardown, so each server the suite started is stopped by PID (an exit
    raised instead would only fail the test in progress and go on)."""
    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(params=SHIPPED_STACKS)
def shipped_config(request: pytest.FixtureRequest) -> PerimeterConfig:
    return load(stack=request.param)


@pytest.fixture
def dev_config() -> PerimeterConfig:
    return load(stack="dev")


@pytest.fixture(scope="session")
def pg() -> Iterator[Server]:
    """One real PostgreSQL for the session (tests/database, tests/servers), on loopback."""
    with running_pg() as server:
        yield server
