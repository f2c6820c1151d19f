"""A loopback fake of the platform API, started and stopped around each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.platform_api import DEFAULT_API_KEY, FakePlatform


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def connection(platform: FakePlatform) -> dict[str, Any]:
    return {"api_key": DEFAULT_API_KEY, "base_url": platform.base_url, "workspace_id": None}
