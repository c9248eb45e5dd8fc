"""The sessions/checkpoints tables: one active session per user and project, cascades."""

from __future__ import annotations

import dataclasses

import pytest

from session_buddy.store import SqliteDatabase, StorageError, migrations
from session_buddy.store.sessions import SessionRecord, SessionRepository


@pytest.fixture
def repo(db: SqliteDatabase) -> SessionRepository:
    return SessionRepository(db)


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


def test_the_schema_is_at_the_latest_migration(db: SqliteDatabase) -> None:
    assert db.query("SELECT version_num FROM alembic_version")[0][0] == migrations.HEAD


def test_create_returns_the_new_session_as_created(repo: SessionRepository) -> None:
    stored, created = repo.create_or_get_active(record())

    assert created is True
    assert repo.get(stored.id) == stored


def test_create_returns_the_existing_active_session_instead_of_a_duplicate(
    repo: SessionRepository,
) -> None:
    first, _ = repo.create_or_get_active(record("a" * 32))

    second, created = repo.create_or_get_active(record("b" * 32))

    assert created is False
    assert second == first
    assert repo.get("b" * 32) is None


def test_the_database_itself_refuses_a_second_active_session(db: SqliteDatabase) -> None:
    insert = (
        "INSERT INTO sessions(id, user_id, project_path, project_name, started_at, "
        "snapshot_json) VALUES (?, 'alice', '/p', 'p', 1, '{}')"
    )
    with db.transaction() as conn:
        conn.execute(insert, ("a" * 32,))

    with pytest.raises(StorageError) as raised, db.transaction() as conn:
        conn.execute(insert, ("b" * 32,))
    assert raised.value.kind == "constraint"


def test_ended_sessions_do_not_count_against_the_one_active_rule(
    repo: SessionRepository,
) -> None:
    first, _ = repo.create_or_get_active(record("a" * 32))
    repo.end(first.id, ended_at=200.0, end_snapshot_json="{}", summary=None, handoff="# h")

    second, created = repo.create_or_get_active(record("b" * 32))

    assert created is True
    assert second.id == "b" * 32


def test_different_users_and_projects_may_each_have_an_active_session(
    repo: SessionRepository,
) -> None:
    assert repo.create_or_get_active(record("a" * 32, "alice", "/p"))[1]
    assert repo.create_or_get_active(record("b" * 32, "bob", "/p"))[1]
    assert repo.create_or_get_active(record("c" * 32, "alice", "/q"))[1]


def test_end_of_an_already_ended_session_returns_none(repo: SessionRepository) -> None:
    stored, _ = repo.create_or_get_active(record())
    ended = repo.end(stored.id, ended_at=200.0, end_snapshot_json="{}", summary="s", handoff="h")

    again = repo.end(stored.id, ended_at=300.0, end_snapshot_json="{}", summary="x", handoff="x")

    assert ended is not None
    assert (ended.ended_at, ended.summary, ended.handoff) == (200.0, "s", "h")
    assert again is None
    assert repo.get(stored.id) == ended


def test_checkpoints_are_numbered_within_their_session(repo: SessionRepository) -> None:
    one, _ = repo.create_or_get_active(record("a" * 32, path="/one"))
    two, _ = repo.create_or_get_active(record("b" * 32, path="/two"))

    def add(session_id: str, note: str) -> int:
        added = repo.add_checkpoint(
            session_id,
            created_at=150.0,
            note=note,
            snapshot_json="{}",
            commits_since_previous=None,
            changed_files=None,
        )
        assert added is not None
        return added.number

    assert [add(one.id, "1a"), add(two.id, "2a"), add(one.id, "1b")] == [1, 1, 2]
    assert [c.number for c in repo.checkpoints(one.id)] == [1, 2]
    last = repo.last_checkpoint(one.id)
    assert last is not None
    assert (last.note, last.number) == ("1b", 2)
    assert repo.checkpoint_counts([one.id, two.id, "c" * 32]) == {one.id: 2, two.id: 1}


def test_a_checkpoint_of_an_ended_session_is_not_recorded(repo: SessionRepository) -> None:
    stored, _ = repo.create_or_get_active(record())
    repo.end(stored.id, ended_at=200.0, end_snapshot_json="{}", summary=None, handoff="h")

    added = repo.add_checkpoint(
        stored.id,
        created_at=250.0,
        note="late",
        snapshot_json="{}",
        commits_since_previous=None,
        changed_files=None,
    )

    assert added is None
    assert repo.checkpoints(stored.id) == []


def test_deleting_a_session_deletes_its_checkpoints(
    db: SqliteDatabase, repo: SessionRepository
) -> None:
    stored, _ = repo.create_or_get_active(record())
    repo.add_checkpoint(
        stored.id,
        created_at=150.0,
        note=None,
        snapshot_json="{}",
        commits_since_previous=0,
        changed_files=0,
    )

    with db.transaction() as conn:
        conn.execute("DELETE FROM sessions WHERE id = ?", (stored.id,))

    assert db.query("SELECT COUNT(*) FROM checkpoints")[0][0] == 0


def test_a_checkpoint_needs_an_existing_session(db: SqliteDatabase) -> None:
    with pytest.raises(StorageError) as raised, db.transaction() as conn:
        conn.execute(
            "INSERT INTO checkpoints(session_id, created_at, snapshot_json) "
            "VALUES ('missing', 1, '{}')"
        )
    assert raised.value.kind == "constraint"


def test_latest_active_for_project_is_the_most_recently_started(
    repo: SessionRepository,
) -> None:
    older = record("a" * 32, "alice")
    newer = dataclasses.replace(older, id="b" * 32, user_id="bob", started_at=200.0)
    repo.create_or_get_active(older)
    repo.create_or_get_active(newer)

    latest = repo.latest_active_for_project("/p")

    assert latest is not None
    assert latest.id == "b" * 32


def test_list_filters_by_user_and_project_and_counts_all_matches(
    repo: SessionRepository,
) -> None:
    repo.create_or_get_active(record("a" * 32, "alice", "/p"))
    repo.create_or_get_active(record("b" * 32, "alice", "/q"))
    repo.create_or_get_active(record("c" * 32, "bob", "/p"))

    mine, total = repo.list_sessions(user_id="alice", limit=1)
    on_p, total_p = repo.list_sessions(project_path="/p", limit=10)

    assert (len(mine), total) == (1, 2)
    assert {s.user_id for s in on_p} == {"alice", "bob"}
    assert total_p == 2
