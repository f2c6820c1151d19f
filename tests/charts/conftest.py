"""Chart tests need the real helm: a missing helm is an error in every test, never a skip."""

from __future__ import annotations

import pytest

from infra.offline import tools


@pytest.fixture(scope="session", autouse=True)
def helm() -> str:
    """Resolve helm once up front; ToolMissing here errors every chart test with its fix."""
    return tools.helm_binary()
