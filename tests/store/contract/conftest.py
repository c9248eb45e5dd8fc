"""The contract suite's backends: every test here runs on SQLite and on a real PostgreSQL.

``database`` is an opened database (closed after the test); ``empty_location`` is where a
database would be, with nothing in it yet (the migration tests open it themselves). The
PostgreSQL one is a fresh database owned by a fresh non-superuser role on the session's
server (``testkit.pytest_postgres``); the SQLite one a file in the test's tmp dir.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from session_buddy.store import Database
from testkit.store import database_at

BACKENDS = ("sqlite", "postgresql")


def _empty_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "data" / "session-buddy.db")


@pytest.fixture(params=BACKENDS)
def empty_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database's location: a SQLite path or a ``postgresql://`` URL."""
    return _empty_location(request, tmp_path)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An opened (migrated) database of each backend, closed after the test."""
    db = database_at(_empty_location(request, tmp_path)).open()
    yield db
    db.close()
