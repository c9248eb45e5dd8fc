"""Fixtures shared by the auth tests (helpers live in ``testkit``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from session_buddy.store.postgres import PostgresDatabase


@pytest.fixture
def open_databases() -> Iterator[Callable[[str], PostgresDatabase]]:
    """Open a :class:`PostgresDatabase` per URL given (an instance of its own: its own pool
    and listener); every one is closed after the test."""
    opened: list[PostgresDatabase] = []

    def open_database(url: str) -> PostgresDatabase:
        opened.append(PostgresDatabase(url).open())
        return opened[-1]

    yield open_database
    for database in opened:
        database.close()
