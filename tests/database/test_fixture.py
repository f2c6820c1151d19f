"""The database suite never skips: without PostgreSQL it fails and says how to get it."""

from __future__ import annotations

import pytest

from tests.database import conftest


def test_missing_postgres_fails_and_points_at_make_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "glob", lambda pattern: [])
    with pytest.raises(pytest.fail.Exception, match=r"run `make setup`"):
        conftest.postgres_bin()
