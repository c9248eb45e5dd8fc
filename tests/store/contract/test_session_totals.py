"""The number of sessions, on both backends: exact, whoever inserted them, never a count of
the whole table.

Sessions this version creates are counted in ``session_totals`` as they are created; rows
inserted any other way (an older version during a rolling upgrade, a copy, a bulk load)
are counted from the partial index ``sessions_uncounted`` until ``tally()`` folds them in.
Every user's total reads those two, whatever the size of the table (the query plan is in
``tests/store/test_query_plans.py``).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from contextlib import closing

import psycopg

from session_buddy.store import Database, migrations
from session_buddy.store.sessions import SessionRecord, SessionRepository
from testkit.concurrency import run_in_threads
from testkit.store import database_at, database_at_revision, is_postgres_url, raw_query

RACERS = 8


def record(number: int, user: str = "alice") -> SessionRecord:
    return SessionRecord(
        id=f"{number:032x}",
        user_id=user,
        project_path=f"/p/{number}",
        project_name="p",
        started_at=100.0 + number,
        ended_at=None,
        snapshot_json="{}",
    )


def insert_otherwise(database: Database, *numbers: int) -> None:
    """Rows written as an older version (or a bulk load) writes them: no ``counted``."""
    with database.transaction() as conn:
        conn.executemany(
            "INSERT INTO sessions(id, user_id, project_path, project_name, started_at, "
            "snapshot_json) VALUES (?, 'bob', ?, 'p', ?, '{}')",
            [(f"{n:032x}", f"/q/{n}", 100.0 + n) for n in numbers],
        )


def total(repo: SessionRepository) -> int:
    return repo.list_sessions(limit=1)[1]


def counted(database: Database) -> int:
    return int(database.query("SELECT sessions FROM session_totals")[0][0])


def test_every_session_created_is_counted_as_it_is_created(database: Database) -> None:
    repo = SessionRepository(database)
    for number in range(3):
        repo.create_or_get_active(record(number))
    repo.create_or_get_active(dataclasses.replace(record(0), id="f" * 32))  # exists: no new one

    assert (total(repo), counted(database)) == (3, 3)
    assert repo.tally() == 0


def test_sessions_inserted_otherwise_are_in_the_total_before_and_after_the_tally(
    database: Database,
) -> None:
    repo = SessionRepository(database)
    repo.create_or_get_active(record(1))
    insert_otherwise(database, 2, 3)

    assert (total(repo), counted(database)) == (3, 1)
    assert repo.tally() == 2
    assert (total(repo), counted(database)) == (3, 3)
    assert repo.tally() == 0


def test_a_users_total_and_a_projects_total_are_counted_on_their_indexes(
    database: Database,
) -> None:
    repo = SessionRepository(database)
    repo.create_or_get_active(record(1))
    repo.create_or_get_active(record(2, user="carol"))
    insert_otherwise(database, 3)

    assert repo.list_sessions(user_id="alice")[1] == 1
    assert repo.list_sessions(user_id="bob")[1] == 1
    assert repo.list_sessions(project_path="/p/2")[1] == 1
    assert total(repo) == 3


def test_creations_and_tallies_racing_count_every_session_once(database: Database) -> None:
    repo = SessionRepository(database)
    insert_otherwise(database, *range(1000, 1000 + RACERS))
    barrier = threading.Barrier(2 * RACERS)
    failures: list[BaseException] = []

    def create(number: int) -> None:
        try:
            barrier.wait(30)
            if number < RACERS:
                repo.create_or_get_active(record(number))
            else:
                repo.tally()
        except BaseException as exc:  # reported below
            failures.append(exc)

    run_in_threads(create, range(2 * RACERS))

    assert failures == []
    rows = int(database.query("SELECT COUNT(*) FROM sessions")[0][0])
    assert rows == total(repo) == counted(database) == 2 * RACERS


def test_a_database_of_the_previous_revision_keeps_its_sessions_counted(
    empty_location: str,
) -> None:
    """Upgrading: the sessions already there start counted, the old index is replaced."""
    previous = migrations.REVISIONS[migrations.REVISIONS.index("0006") - 1]
    database_at_revision(empty_location, previous)
    assert raw_query(empty_location, "SELECT version_num FROM alembic_version") == [(previous,)]
    _insert_at_previous_revision(empty_location, 3)

    db = database_at(empty_location).open()  # migrated to HEAD
    try:
        repo = SessionRepository(db)
        assert (total(repo), counted(db), repo.tally()) == (3, 3, 0)
        indexes = _indexes(db)
        assert {"sessions_by_start", "revoked_tokens_in_force", "sessions_uncounted"} <= indexes
        assert "revoked_tokens_expires" not in indexes
    finally:
        db.close()


def _insert_at_previous_revision(location: str, count: int) -> None:
    """Sessions as the previous version wrote them, with the driver alone."""
    sql = (
        "INSERT INTO sessions(id, user_id, project_path, project_name, started_at, "
        "snapshot_json) VALUES ({mark}, 'old', {mark}, 'p', 1, '{{}}')"
    )
    rows = [(f"{n:032x}", f"/old/{n}") for n in range(count)]
    if is_postgres_url(location):
        with psycopg.connect(location) as pg:
            pg.cursor().executemany(sql.format(mark="%s"), rows)
        return
    with closing(sqlite3.connect(location)) as conn, conn:
        conn.executemany(sql.format(mark="?"), rows)


def _indexes(db: Database) -> set[str]:
    if db.dialect.name == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'index'"
    else:
        sql = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    return {str(row[0]) for row in db.query(sql)}
