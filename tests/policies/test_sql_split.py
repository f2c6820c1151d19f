"""A role script read in two halves on other processes is read as one reading reads it.

`check` hands a big role script's statements to its loading workers, half each, and keeps
the combined analysis for the rules: whatever the script holds (grants, problems found in
both halves, an unreadable statement in either), the rules must see what `analyse` sees.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict

import pytest

from infra.pure.config import load
from infra.pure.database.sql import role_sql
from infra.pure.network import used_databases
from policies.rules import sql


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    # spawn: this test process may have threads, which fork must not copy
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as workers:
        yield workers


def _fresh(script: str) -> sql.Analysis:
    """One reading, never the kept result of an earlier split."""
    sql._AHEAD.pop(script, None)
    return sql._read(lambda reader: reader.script(script))


SHIPPED = role_sql(load(stack="dev"), sorted(used_databases(load(stack="dev")))[0])
GRANTS = "\n".join(
    [
        "CREATE ROLE app_reader NOLOGIN;",
        "GRANT SELECT ON app.tickets TO app_reader;",
        "GRANT ALL ON app.orders TO app_reader;",  # a problem, in the first half
        "\\set x 1",
        "SELECT 'GRANT SELECT ON app.a TO app_reader' \\gexec",
        "GRANT pg_read_all_data TO app_reader;",
        "GRANT ALL ON app.orders TO app_reader;",  # the same problem again, second half
        "SELECT dblink_exec('host=x', 'DROP TABLE t');",
        "CREATE ROLE app_admin SUPERUSER;",
    ]
)
BROKEN_FIRST = "CREATE ROLE a NOLOGIN;\nGRANT SELECT ON TO a;\nCREATE ROLE b;\nCREATE ROLE c;"
BROKEN_SECOND = "CREATE ROLE a NOLOGIN;\nCREATE ROLE b;\nCREATE ROLE c;\nGRANT SELECT ON TO c;"


@pytest.mark.parametrize(
    "script",
    [SHIPPED, GRANTS, BROKEN_FIRST, BROKEN_SECOND],
    ids=["shipped", "grants-and-problems", "broken-first-half", "broken-second-half"],
)
def test_two_halves_read_as_one_reading(pool: ProcessPoolExecutor, script: str) -> None:
    expected = _fresh(script)
    assert expected.created, "the script creates roles"
    combined = sql.analyse_on(script, pool.submit)()
    assert asdict(combined) == asdict(expected)
    assert sql.analyse(script) is combined, "kept for the rules"
    sql._AHEAD.pop(script)


def test_the_cases_are_what_they_claim() -> None:
    assert _fresh(GRANTS).problems and _fresh(GRANTS).error is None
    assert _fresh(BROKEN_FIRST).error and _fresh(BROKEN_FIRST).created == ["a"]
    assert _fresh(BROKEN_SECOND).error and _fresh(BROKEN_SECOND).created == ["a", "b", "c"]
