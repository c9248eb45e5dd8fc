"""Sessions and checkpoints, on both backends: one active session per user and project."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from session_buddy.store import Database, StorageError
from session_buddy.store.sessions import SessionRecord, SessionRepository
from testkit.concurrency import StartSignal, race_in_processes, run_in_threads
from testkit.store import database_at

RACERS = 4


@pytest.fixture
def repo(database: Database) -> SessionRepository:
    return SessionRepository(database)


def record(
    session_id: str = "a" * 32,
    user: str = "alice",
    path: str = "/p",
    started_at: float = 100.0,
) -> SessionRecord:
    return SessionRecord(
        id=session_id,
        user_id=user,
        project_path=path,
        project_name="p",
        started_at=started_at,
        ended_at=None,
        snapshot_json='{"branch": "main", "note": "héllo ✓"}',
    )


def add(repo: SessionRepository, session_id: str, note: str | None = None) -> int | None:
    """A checkpoint in the session: its number, or None when it was not recorded."""
    added = repo.add_checkpoint(
        session_id,
        created_at=150.0,
        note=note,
        snapshot_json="{}",
        commits_since_previous=2,
        changed_files=None,
    )
    return None if added is None else added.number


def end(repo: SessionRepository, session_id: str, at: float = 200.0) -> SessionRecord | None:
    return repo.end(session_id, ended_at=at, end_snapshot_json="{}", summary="s", handoff="# h")


# -- creating and reading ---------------------------------------------------------------


def test_create_returns_the_new_session_as_created_and_reads_it_back_unchanged(
    repo: SessionRepository,
) -> None:
    stored, created = repo.create_or_get_active(record(started_at=1_700_000_000.123456))

    assert created is True
    assert repo.get(stored.id) == stored
    assert repo.active_for_user("alice", "/p") == stored


def test_an_unknown_session_reads_as_none(repo: SessionRepository) -> None:
    assert repo.get("f" * 32) is None
    assert repo.active_for_user("alice", "/p") is None
    assert repo.latest_active_for_project("/p") is None
    assert repo.last_checkpoint("f" * 32) is None
    assert repo.checkpoints("f" * 32) == []


def test_create_returns_the_existing_active_session_instead_of_a_duplicate(
    repo: SessionRepository,
) -> None:
    first, _ = repo.create_or_get_active(record("a" * 32))

    second, created = repo.create_or_get_active(record("b" * 32))

    assert created is False
    assert second == first
    assert repo.get("b" * 32) is None


def test_the_database_itself_refuses_a_second_active_session(database: Database) -> None:
    insert = (
        "INSERT INTO sessions(id, user_id, project_path, project_name, started_at, "
        "snapshot_json) VALUES (?, 'alice', '/p', 'p', 1, '{}')"
    )
    with database.transaction() as conn:
        conn.execute(insert, ("a" * 32,))

    with pytest.raises(StorageError) as raised, database.transaction() as conn:
        conn.execute(insert, ("b" * 32,))

    assert raised.value.kind == "constraint"
    assert database.query("SELECT COUNT(*) FROM sessions")[0][0] == 1


def test_ended_sessions_do_not_count_against_the_one_active_rule(
    repo: SessionRepository,
) -> None:
    first, _ = repo.create_or_get_active(record("a" * 32))
    end(repo, first.id)

    second, created = repo.create_or_get_active(record("b" * 32))

    assert created is True
    assert second.id == "b" * 32
    assert repo.active_for_user("alice", "/p") == second


def test_different_users_and_projects_may_each_have_an_active_session(
    repo: SessionRepository,
) -> None:
    assert repo.create_or_get_active(record("a" * 32, "alice", "/p"))[1]
    assert repo.create_or_get_active(record("b" * 32, "bob", "/p"))[1]
    assert repo.create_or_get_active(record("c" * 32, "alice", "/q"))[1]


# -- ending ---------------------------------------------------------------------------------


def test_end_closes_the_session_once_and_keeps_the_first_ending(
    repo: SessionRepository,
) -> None:
    stored, _ = repo.create_or_get_active(record())

    ended = repo.end(
        stored.id, ended_at=200.0, end_snapshot_json='{"x": 1}', summary="s", handoff="h"
    )
    again = repo.end(stored.id, ended_at=300.0, end_snapshot_json="{}", summary="x", handoff="x")

    assert ended is not None
    assert not ended.active
    assert (ended.ended_at, ended.end_snapshot_json, ended.summary, ended.handoff) == (
        200.0,
        '{"x": 1}',
        "s",
        "h",
    )
    assert again is None
    assert repo.get(stored.id) == ended
    assert repo.active_for_user("alice", "/p") is None


def test_end_of_an_unknown_session_returns_none(repo: SessionRepository) -> None:
    assert end(repo, "f" * 32) is None


# -- listing --------------------------------------------------------------------------------


def test_list_is_newest_first_with_ties_in_reverse_insertion_order(
    repo: SessionRepository,
) -> None:
    for session_id, user, started_at in [
        ("a" * 32, "u1", 100.0),
        ("b" * 32, "u2", 200.0),
        ("c" * 32, "u3", 200.0),  # same instant as b, inserted after it
        ("d" * 32, "u4", 150.0),
    ]:
        repo.create_or_get_active(record(session_id, user, started_at=started_at))

    everything, total = repo.list_sessions(limit=10)
    first_two, total_again = repo.list_sessions(limit=2)

    assert [s.id[0] for s in everything] == ["c", "b", "d", "a"]
    assert [s.id[0] for s in first_two] == ["c", "b"]
    assert total == total_again == 4


def test_list_includes_ended_sessions(repo: SessionRepository) -> None:
    first, _ = repo.create_or_get_active(record("a" * 32))
    end(repo, first.id)
    repo.create_or_get_active(record("b" * 32, started_at=300.0))

    listed, total = repo.list_sessions()

    assert [(s.id[0], s.active) for s in listed] == [("b", True), ("a", False)]
    assert total == 2


def test_list_filters_by_user_and_project_and_counts_all_matches(
    repo: SessionRepository,
) -> None:
    repo.create_or_get_active(record("a" * 32, "alice", "/p"))
    repo.create_or_get_active(record("b" * 32, "alice", "/q", started_at=110.0))
    repo.create_or_get_active(record("c" * 32, "bob", "/p", started_at=120.0))

    mine, total_mine = repo.list_sessions(user_id="alice", limit=1)
    on_p, total_p = repo.list_sessions(project_path="/p", limit=10)
    alice_on_p, total_both = repo.list_sessions(user_id="alice", project_path="/p")
    nobody, total_nobody = repo.list_sessions(user_id="carol")

    assert ([s.id[0] for s in mine], total_mine) == (["b"], 2)
    assert ([s.id[0] for s in on_p], total_p) == (["c", "a"], 2)
    assert ([s.id[0] for s in alice_on_p], total_both) == (["a"], 1)
    assert (nobody, total_nobody) == ([], 0)


def test_latest_active_for_project_is_the_most_recently_started_then_the_last_inserted(
    repo: SessionRepository,
) -> None:
    older = record("a" * 32, "alice")
    repo.create_or_get_active(older)
    repo.create_or_get_active(dataclasses.replace(older, id="b" * 32, user_id="bob"))
    newest, _ = repo.create_or_get_active(record("c" * 32, "carol", started_at=200.0))

    assert (latest := repo.latest_active_for_project("/p")) is not None
    assert latest.id == "c" * 32

    end(repo, newest.id)

    assert (latest := repo.latest_active_for_project("/p")) is not None
    assert latest.id == "b" * 32  # a tie at 100.0: the later insertion wins


# -- checkpoints ------------------------------------------------------------------------------


def test_checkpoints_are_numbered_from_one_within_their_session(
    repo: SessionRepository,
) -> None:
    one, _ = repo.create_or_get_active(record("a" * 32, path="/one"))
    two, _ = repo.create_or_get_active(record("b" * 32, path="/two"))

    numbers = [add(repo, one.id, "1a"), add(repo, two.id, "2a"), add(repo, one.id, "1b")]

    assert numbers == [1, 1, 2]
    assert [(c.number, c.note) for c in repo.checkpoints(one.id)] == [(1, "1a"), (2, "1b")]
    last = repo.last_checkpoint(one.id)
    assert last is not None
    assert (last.note, last.number, last.commits_since_previous, last.changed_files) == (
        "1b",
        2,
        2,
        None,
    )
    assert repo.checkpoint_counts([one.id, two.id, "c" * 32]) == {one.id: 2, two.id: 1}
    assert repo.checkpoint_counts([]) == {}


def test_the_status_read_is_the_active_session_its_last_checkpoint_and_their_count(
    repo: SessionRepository,
) -> None:
    mine, _ = repo.create_or_get_active(record("a" * 32, path="/p"))
    other, _ = repo.create_or_get_active(record("b" * 32, path="/other"))
    for note in ("1", "2", "3"):
        add(repo, mine.id, note)
    add(repo, other.id, "elsewhere")

    found = repo.active_with_last_checkpoint("alice", "/p")

    assert found is not None
    session, last = found
    assert session == mine
    assert last == repo.last_checkpoint(mine.id)
    assert last is not None and (last.note, last.number) == ("3", 3)


def test_the_status_read_of_a_session_without_checkpoints_has_none(
    repo: SessionRepository,
) -> None:
    stored, _ = repo.create_or_get_active(record())

    assert repo.active_with_last_checkpoint("alice", "/p") == (stored, None)


def test_the_status_read_ignores_ended_sessions_and_other_users(
    repo: SessionRepository,
) -> None:
    ended, _ = repo.create_or_get_active(record("a" * 32))
    add(repo, ended.id, "before the end")
    end(repo, ended.id)
    repo.create_or_get_active(record("b" * 32, user="bob"))

    assert repo.active_with_last_checkpoint("alice", "/p") is None


def test_a_checkpoint_of_an_ended_or_unknown_session_is_not_recorded(
    database: Database, repo: SessionRepository
) -> None:
    stored, _ = repo.create_or_get_active(record())
    add(repo, stored.id, "in time")
    end(repo, stored.id)

    assert add(repo, stored.id, "late") is None
    assert add(repo, "f" * 32, "nowhere") is None
    assert [c.note for c in repo.checkpoints(stored.id)] == ["in time"]
    assert database.query("SELECT COUNT(*) FROM checkpoints")[0][0] == 1


def test_deleting_a_session_deletes_its_checkpoints(
    database: Database, repo: SessionRepository
) -> None:
    stored, _ = repo.create_or_get_active(record("a" * 32, path="/one"))
    other, _ = repo.create_or_get_active(record("b" * 32, path="/two"))
    add(repo, stored.id)
    add(repo, stored.id)
    add(repo, other.id)

    with database.transaction() as conn:
        conn.execute("DELETE FROM sessions WHERE id = ?", (stored.id,))

    assert repo.checkpoints(stored.id) == []
    assert database.query("SELECT COUNT(*) FROM checkpoints")[0][0] == 1


def test_the_database_refuses_a_checkpoint_without_a_session(database: Database) -> None:
    with pytest.raises(StorageError) as raised, database.transaction() as conn:
        conn.execute(
            "INSERT INTO checkpoints(session_id, created_at, snapshot_json) "
            "VALUES ('missing', 1, '{}')"
        )

    assert raised.value.kind == "constraint"


def test_a_failed_transaction_writes_nothing_and_the_database_stays_usable(
    database: Database,
) -> None:
    with pytest.raises(RuntimeError), database.transaction() as conn:
        conn.execute("INSERT INTO revoked_tokens VALUES ('k', 1, 1)")
        raise RuntimeError("boom")

    assert database.query("SELECT COUNT(*) FROM revoked_tokens")[0][0] == 0
    with database.transaction() as conn:
        conn.execute("INSERT INTO revoked_tokens VALUES ('k', 1, 1)")
    assert database.query("SELECT COUNT(*) FROM revoked_tokens")[0][0] == 1


# -- racing ---------------------------------------------------------------------------------


def test_threads_racing_to_start_create_exactly_one_active_session(
    repo: SessionRepository,
) -> None:
    barrier = threading.Barrier(8)
    answers: list[tuple[str, bool]] = []

    def start(n: int) -> None:
        barrier.wait(30)
        stored, created = repo.create_or_get_active(record(f"{n:032x}"))
        answers.append((stored.id, created))

    run_in_threads(start, range(8))

    assert len(answers) == 8
    assert sum(created for _, created in answers) == 1
    assert len({session_id for session_id, _ in answers}) == 1
    assert repo.list_sessions()[1] == 1


def _start_session(start: StartSignal, location: str, session_id: str) -> tuple[str, bool]:
    """A racer: its own process and connection, then create at the same moment."""
    repo = SessionRepository(database_at(location).open())
    start()
    stored, created = repo.create_or_get_active(record(session_id))
    return stored.id, created


def test_processes_racing_to_start_create_exactly_one_active_session(
    database: Database,
) -> None:
    """Server processes, not threads: a lock inside one process cannot make this pass."""
    outcomes = race_in_processes(
        _start_session, [(database.location, f"{n:032x}") for n in range(RACERS)]
    )

    assert [outcome.error for outcome in outcomes] == [None] * RACERS
    assert sum(created for _, created in (o.value for o in outcomes)) == 1
    assert len({session_id for session_id, _ in (o.value for o in outcomes)}) == 1
    assert database.query("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL")[0][0] == 1
