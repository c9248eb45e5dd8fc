"""Sessions of projects named by id, on both backends: one per user and id, joined with the
directory sessions of that id, never two directories joined; an upgrade keeps old rows."""

from __future__ import annotations

import dataclasses

import pytest

from session_buddy.store import Database, StorageError, migrations
from session_buddy.store.sessions import SessionRecord, SessionRepository
from testkit.concurrency import StartSignal, race_in_processes
from testkit.store import (
    contents,
    database_at,
    database_at_revision,
    raw_execute,
    raw_query,
)

RACERS = 4
REPO_ID = "github.com/o/r"


@pytest.fixture
def repo(database: Database) -> SessionRepository:
    return SessionRepository(database)


def directory(
    session_id: str, path: str = "/p", project_id: str | None = REPO_ID, **changes: object
) -> SessionRecord:
    record = SessionRecord(
        id=session_id,
        user_id="alice",
        project_path=path,
        project_id=project_id,
        project_name="r",
        started_at=100.0,
        ended_at=None,
        snapshot_json="{}",
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def reported(session_id: str, project_id: str = REPO_ID, **changes: object) -> SessionRecord:
    return directory(session_id, None, project_id, **changes)  # type: ignore[arg-type]


def end(repo: SessionRepository, session_id: str) -> None:
    assert repo.end(session_id, ended_at=200.0, end_snapshot_json="{}", summary=None, handoff="h")


def test_a_project_session_reads_back_without_a_directory_and_is_keyed_by_its_id(
    database: Database, repo: SessionRepository
) -> None:
    stored, created = repo.create_or_get_active(reported("a" * 32))

    assert created is True
    assert repo.get(stored.id) == stored
    assert (stored.project_path, stored.project_id) == (None, REPO_ID)
    assert repo.active_project_session("alice", REPO_ID) == stored
    assert database.query("SELECT project_path, project_id FROM sessions") == [(REPO_ID, REPO_ID)]


def test_a_record_needs_a_directory_or_a_project_id() -> None:
    with pytest.raises(ValueError, match="a project directory or a project id"):
        reported("a" * 32, project_id=None)  # type: ignore[arg-type]


def test_the_database_refuses_a_second_active_project_session_of_one_user_and_id(
    database: Database,
) -> None:
    insert = (
        "INSERT INTO sessions(id, user_id, project_path, project_id, project_name, "
        "started_at, snapshot_json) VALUES (?, 'alice', 'github.com/o/r', 'github.com/o/r', "
        "'r', 1, '{}')"
    )
    with database.transaction() as conn:
        conn.execute(insert, ("a" * 32,))

    with pytest.raises(StorageError) as raised, database.transaction() as conn:
        conn.execute(insert, ("b" * 32,))

    assert raised.value.kind == "constraint"


def test_starting_an_active_project_again_returns_it(repo: SessionRepository) -> None:
    first, _ = repo.create_or_get_active(reported("a" * 32))

    again, created = repo.create_or_get_active(reported("b" * 32))

    assert (again, created) == (first, False)


def test_a_project_id_start_joins_the_directory_session_of_that_id(
    repo: SessionRepository,
) -> None:
    local, _ = repo.create_or_get_active(directory("a" * 32))

    joined, created = repo.create_or_get_active(reported("b" * 32))

    assert (joined, created) == (local, False)
    assert repo.get("b" * 32) is None


def test_a_directory_start_joins_the_project_session_of_its_id(repo: SessionRepository) -> None:
    remote, _ = repo.create_or_get_active(reported("a" * 32))

    joined, created = repo.create_or_get_active(directory("b" * 32))

    assert (joined, created) == (remote, False)


def test_two_directories_of_one_id_are_two_sessions(repo: SessionRepository) -> None:
    one, created_one = repo.create_or_get_active(directory("a" * 32, "/clone-1"))
    two, created_two = repo.create_or_get_active(directory("b" * 32, "/clone-2"))

    assert created_one and created_two
    assert [s.id for s in repo.active_with_project_id("alice", REPO_ID)] == [two.id, one.id]


def test_other_users_and_other_ids_are_never_joined(repo: SessionRepository) -> None:
    repo.create_or_get_active(directory("a" * 32))

    assert repo.create_or_get_active(reported("b" * 32, user_id="bob"))[1]
    assert repo.create_or_get_active(reported("c" * 32, "github.com/o/other"))[1]
    assert repo.create_or_get_active(directory("d" * 32, "/q", None))[1]


def test_an_ended_session_is_not_joined(repo: SessionRepository) -> None:
    remote, _ = repo.create_or_get_active(reported("a" * 32))
    end(repo, remote.id)

    assert repo.create_or_get_active(reported("b" * 32))[1]
    assert repo.active_project_session("alice", REPO_ID) == repo.get("b" * 32)


def test_sessions_of_an_id_put_the_project_session_first_then_the_newest(
    repo: SessionRepository,
) -> None:
    repo.create_or_get_active(directory("a" * 32, "/clone-1", started_at=300.0))
    with repo._db.transaction() as conn:  # a project session beside it, as a race could leave
        conn.execute(
            "INSERT INTO sessions(id, user_id, project_path, project_id, project_name, "
            "started_at, snapshot_json) VALUES (?, 'alice', ?, ?, 'r', 100, '{}')",
            ("b" * 32, REPO_ID, REPO_ID),
        )
    repo.create_or_get_active(directory("c" * 32, "/clone-2", user_id="bob", started_at=400.0))

    assert [s.id[0] for s in repo.active_with_project_id("alice", REPO_ID)] == ["b", "a"]
    assert [s.id[0] for s in repo.active_with_project_id(None, REPO_ID)] == ["b", "c", "a"]


def test_whether_anyone_has_an_active_project_session(repo: SessionRepository) -> None:
    repo.create_or_get_active(directory("a" * 32))
    assert not repo.has_active_project_sessions("alice")
    assert not repo.has_active_project_sessions(None)

    remote, _ = repo.create_or_get_active(reported("b" * 32, "github.com/o/x", user_id="bob"))

    assert not repo.has_active_project_sessions("alice")
    assert repo.has_active_project_sessions("bob")
    assert repo.has_active_project_sessions(None)
    assert repo.active_project_session(None, "github.com/o/x") == remote
    end(repo, remote.id)
    assert not repo.has_active_project_sessions(None)


def test_listing_by_project_id_finds_both_kinds(repo: SessionRepository) -> None:
    repo.create_or_get_active(directory("a" * 32, "/clone-1"))
    repo.create_or_get_active(reported("b" * 32, user_id="bob", started_at=150.0))
    repo.create_or_get_active(reported("c" * 32, "github.com/o/other", started_at=200.0))

    listed, total = repo.list_sessions(project_id=REPO_ID)
    bobs, bob_total = repo.list_sessions(project_id=REPO_ID, user_id="bob")

    assert ([s.id[0] for s in listed], total) == (["b", "a"], 2)
    assert ([s.id[0] for s in bobs], bob_total) == (["b"], 1)


def test_a_directory_lookup_never_finds_a_project_session(repo: SessionRepository) -> None:
    repo.create_or_get_active(reported("a" * 32))

    assert repo.latest_active_for_project("/p") is None
    assert repo.active_for_user("alice", "/p") is None
    assert repo.active_with_last_checkpoint("alice", "/p") is None
    assert repo.list_sessions(project_path="/p") == ([], 0)
    assert repo.active_project_session("alice", "/p") is None


# -- racing -----------------------------------------------------------------------------


def _start(start: StartSignal, location: str, number: int) -> tuple[str, bool]:
    """A racer in its own process: half start by directory, half by project id."""
    repo = SessionRepository(database_at(location).open())
    session_id = f"{number:032x}"
    record = directory(session_id) if number % 2 else reported(session_id)
    start()
    stored, created = repo.create_or_get_active(record)
    return stored.id, created


def test_processes_starting_a_directory_and_its_id_at_once_agree_on_one_session(
    database: Database,
) -> None:
    outcomes = race_in_processes(_start, [(database.location, n) for n in range(RACERS)])

    assert [outcome.error for outcome in outcomes] == [None] * RACERS
    assert sum(created for _, created in (o.value for o in outcomes)) == 1
    assert len({session_id for session_id, _ in (o.value for o in outcomes)}) == 1
    assert database.query("SELECT COUNT(*) FROM sessions")[0][0] == 1


# -- upgrading --------------------------------------------------------------------------

OLD_SESSION = (
    "INSERT INTO sessions(id, user_id, project_path, project_name, started_at, ended_at, "
    "snapshot_json, end_snapshot_json, summary, handoff) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
OLD_COLUMNS = (
    "SELECT id, user_id, project_path, project_name, started_at, ended_at, snapshot_json, "
    "end_snapshot_json, summary, handoff FROM sessions"
)
OLD_CHECKPOINT = (
    "INSERT INTO checkpoints(session_id, created_at, note, snapshot_json, "
    "commits_since_previous, changed_files) VALUES (?, ?, ?, ?, ?, ?)"
)


def test_an_upgrade_from_the_previous_revision_keeps_every_session(empty_location: str) -> None:
    database_at_revision(empty_location, "0004")
    raw_execute(
        empty_location,
        [
            (OLD_SESSION, ("a" * 32, "alice", "/p", "p", 100.0, None, '{"x": 1}', *[None] * 3)),
            (OLD_SESSION, ("b" * 32, "alice", "/p", "p", 50.0, 60.0, "{}", "{}", "s", "# h")),
            (OLD_SESSION, ("c" * 32, "bob", "/p", "p", 170.0, None, "{}", *[None] * 3)),
            (OLD_CHECKPOINT, ("a" * 32, 110.0, "before the upgrade", "{}", 2, 3)),
        ],
    )
    sessions_before = sorted(raw_query(empty_location, OLD_COLUMNS), key=repr)
    checkpoints_before = contents(empty_location)["checkpoints"]

    db = database_at(empty_location).open()
    try:
        repo = SessionRepository(db)
        assert db.query("SELECT version_num FROM alembic_version")[0][0] == migrations.HEAD
        assert sorted(raw_query(empty_location, OLD_COLUMNS), key=repr) == sessions_before
        assert raw_query(empty_location, "SELECT DISTINCT project_id FROM sessions") == [(None,)]
        assert contents(empty_location)["checkpoints"] == checkpoints_before
        active = repo.active_for_user("alice", "/p")
        assert active is not None and (active.id, active.project_id) == ("a" * 32, None)
        assert repo.last_checkpoint("a" * 32).note == "before the upgrade"  # type: ignore[union-attr]
        assert repo.latest_active_for_project("/p").id == "c" * 32  # type: ignore[union-attr]
        # The rules of the new revision hold for the old rows.
        assert repo.create_or_get_active(directory("d" * 32, project_id=None)) == (active, False)
        assert repo.create_or_get_active(reported("e" * 32))[1] is True
    finally:
        db.close()
