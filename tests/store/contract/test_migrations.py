"""The schema, on both backends: created once at HEAD, never migrated twice, never downgraded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from session_buddy.store import Database, StorageError, migrations
from session_buddy.store.revocations import RevocationRepository
from testkit.concurrency import StartSignal, race_in_processes
from testkit.store import TABLES, contents, database_at, is_postgres_url, table_names

RACERS = 4


def revision(db: Database) -> list[str]:
    return [str(row[0]) for row in db.query("SELECT version_num FROM alembic_version")]


def test_a_new_database_is_created_at_the_latest_revision(empty_location: str) -> None:
    db = database_at(empty_location).open()
    try:
        assert revision(db) == [migrations.HEAD]
        assert table_names(empty_location) == set(TABLES)
    finally:
        db.close()


def test_opening_a_database_at_the_latest_revision_again_changes_nothing(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    RevocationRepository(database).record("jti:kept", expires_at=500.0, now=100.0)
    before = contents(database.location)

    def no_migration(*args: object, **kwargs: object) -> None:
        raise AssertionError("a database at HEAD was migrated again")

    monkeypatch.setattr(migrations, "upgrade", no_migration)
    again = database_at(database.location).open()
    try:
        assert contents(again.location) == before
    finally:
        again.close()


class _CountUpgrades(logging.Handler):
    """Counts Alembic's "Running upgrade" lines: one per revision actually applied."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.applied: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Running upgrade"):
            self.applied.append(record.getMessage())


def _open_and_count(start: StartSignal, location: str) -> list[str]:
    """A racer: an instance starting on the (empty) database; the revisions it applied."""
    counter = _CountUpgrades()
    alembic_log = logging.getLogger("alembic.runtime.migration")
    alembic_log.setLevel(logging.INFO)
    alembic_log.addHandler(counter)
    db = database_at(location)
    start()
    db.open().close()
    return counter.applied


def test_processes_opening_an_empty_database_at_once_migrate_it_exactly_once(
    empty_location: str,
) -> None:
    outcomes = race_in_processes(_open_and_count, [(empty_location,)] * RACERS)

    assert [outcome.error for outcome in outcomes] == [None] * RACERS
    applied = [line for outcome in outcomes for line in outcome.value]
    assert len(applied) == len(migrations.REVISIONS), applied
    assert sum(1 for outcome in outcomes if outcome.value) == 1  # one process did all of it
    db = database_at(empty_location).open()
    try:
        assert revision(db) == [migrations.HEAD]
        assert table_names(empty_location) == set(TABLES)
    finally:
        db.close()


def _file_bytes(location: str) -> bytes | None:
    return None if is_postgres_url(location) else Path(location).read_bytes()


def test_a_database_migrated_by_a_newer_version_is_refused_and_left_untouched(
    database: Database,
) -> None:
    RevocationRepository(database).record("jti:kept", expires_at=500.0, now=100.0)
    with database.transaction() as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    location = database.location
    database.close()  # SQLite: the last connection folds its log into the file
    before = contents(location)
    file_before = _file_bytes(location)

    newer = database_at(location)
    with pytest.raises(StorageError) as raised:
        newer.open()

    assert raised.value.kind == "newer_schema"
    assert "9999" in str(raised.value)
    assert newer.display in str(raised.value)
    assert "upgrade session-buddy" in raised.value.fix
    assert contents(location) == before
    assert _file_bytes(location) == file_before
