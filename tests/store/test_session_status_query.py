"""The one query behind a status call, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from session_buddy.store import Database, SqliteDatabase
from session_buddy.store.sessions import SessionRecord, SessionRepository


@pytest.fixture(params=["sqlite", "postgresql"])
def repo(request: pytest.FixtureRequest, db: SqliteDatabase) -> Iterator[SessionRepository]:
    """The repository on SQLite, then on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield SessionRepository(db)
        return
    from session_buddy.store.postgres import PostgresDatabase

    database: Database = PostgresDatabase(request.getfixturevalue("postgres_url")).open()
    yield SessionRepository(database)
    database.close()


def record(session_id: str = "a" * 32, user: str = "alice", path: str = "/p") -> SessionRecord:
    return SessionRecord(
        id=session_id,
        user_id=user,
        project_path=path,
        project_name="p",
        started_at=100.0,
        ended_at=None,
        snapshot_json="{}",
    )


def checkpoint(repo: SessionRepository, session_id: str, note: str) -> None:
    added = repo.add_checkpoint(
        session_id,
        created_at=150.0,
        note=note,
        snapshot_json="{}",
        commits_since_previous=None,
        changed_files=None,
    )
    assert added is not None


def test_active_with_last_checkpoint_is_the_session_its_last_checkpoint_and_count(
    repo: SessionRepository,
) -> None:
    mine, _ = repo.create_or_get_active(record("a" * 32, path="/p"))
    other, _ = repo.create_or_get_active(record("b" * 32, path="/other"))
    for note in ("1", "2", "3"):
        checkpoint(repo, mine.id, note)
    checkpoint(repo, other.id, "elsewhere")

    found = repo.active_with_last_checkpoint("alice", "/p")

    assert found is not None
    session, last = found
    assert session == mine
    assert last == repo.last_checkpoint(mine.id)
    assert last is not None and (last.note, last.number) == ("3", 3)


def test_active_with_last_checkpoint_of_a_session_without_any_has_none(
    repo: SessionRepository,
) -> None:
    stored, _ = repo.create_or_get_active(record())

    assert repo.active_with_last_checkpoint("alice", "/p") == (stored, None)


def test_active_with_last_checkpoint_ignores_ended_sessions_and_other_users(
    repo: SessionRepository,
) -> None:
    ended, _ = repo.create_or_get_active(record("a" * 32))
    checkpoint(repo, ended.id, "before the end")
    repo.end(ended.id, ended_at=200.0, end_snapshot_json="{}", summary=None, handoff="h")
    repo.create_or_get_active(record("b" * 32, user="bob"))

    assert repo.active_with_last_checkpoint("alice", "/p") is None
