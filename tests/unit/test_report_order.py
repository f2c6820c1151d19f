"""Every report reads the environment's objects in one order, run after run.

The program registers some objects inside output callbacks, so registration order varies
between runs; `audit` printed its tables in a different order on each run of dev."""

from __future__ import annotations

import pytest

from infra.offline.manifests import applied_file_name, ref
from infra.offline.mocked import render_environment
from infra.pure.config import load
from tests.conftest import SHIPPED_STACKS


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_the_objects_come_in_apply_order_then_by_name(stack: str) -> None:
    manifests = render_environment(load(stack=stack))
    keys = [(applied_file_name(m), ref(m)) for m in manifests]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys), "two objects share one place in the order"
