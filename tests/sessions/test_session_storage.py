"""The session layer over a shared, damaged or read-only database file."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions.service import SessionService
from session_buddy.store import SqliteDatabase, StorageError
from testkit.clock import FixedClock

RACERS = 4
RACE_TIMEOUT = 60.0


def _start_when_all_are_ready(
    path: Path,
    user_id: str,
    project: str,
    clock: FixedClock,
    barrier: Barrier,
    results: Queue[tuple[int, str, bool]],
) -> None:
    """One racer, in its own process: its own connection, then start at the same moment."""
    service = SessionService(SqliteDatabase(path).open(), clock=clock)
    user = Principal(user_id=user_id, authenticated=True, role="user")
    barrier.wait(RACE_TIMEOUT)
    info = service.start(user, project)
    results.put((os.getpid(), info.id, info.created))


def test_two_processes_racing_start_create_exactly_one_active_session(
    tmp_path: Path, clock: FixedClock, alice: Principal, project: Path
) -> None:
    """Server processes, not threads: a lock inside one process cannot make this pass."""
    path = tmp_path / "shared.db"
    SqliteDatabase(path).open().close()  # the schema exists, as after the first server started
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(RACERS)
    results: Queue[tuple[int, str, bool]] = spawn.Queue()
    racers = [
        spawn.Process(
            target=_start_when_all_are_ready,
            args=(path, alice.user_id, str(project), clock, barrier, results),
        )
        for _ in range(RACERS)
    ]
    try:
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(RACE_TIMEOUT)
    finally:
        for racer in racers:
            if racer.is_alive():
                racer.kill()

    assert [racer.exitcode for racer in racers] == [0] * RACERS  # else: its traceback above
    answers = [results.get(timeout=5) for _ in racers]
    pids = {pid for pid, _, _ in answers}
    assert len(pids) == RACERS and os.getpid() not in pids  # separate processes
    assert sum(created for _, _, created in answers) == 1
    assert len({session_id for _, session_id, _ in answers}) == 1
    rows = SqliteDatabase(path).query("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL")
    assert rows[0][0] == 1


def test_a_session_started_by_one_process_is_seen_by_another(
    tmp_path: Path, clock, alice: Principal, project: Path
) -> None:
    path = tmp_path / "shared.db"
    first = SessionService(SqliteDatabase(path), clock=clock)
    second = SessionService(SqliteDatabase(path), clock=clock)

    started = first.start(alice, str(project))
    second.checkpoint(alice, str(project), "from the other process")

    status = first.status(alice, str(project))
    assert status.session is not None
    assert status.session.id == started.id
    assert status.session.checkpoint_count == 1


def test_a_corrupted_database_gives_a_storage_error_naming_the_file_and_is_left_untouched(
    tmp_path: Path, clock, alice: Principal, project: Path
) -> None:
    path = tmp_path / "session-buddy.db"
    garbage = b"this is not a database, just some bytes " * 200
    path.write_bytes(garbage)
    service = SessionService(SqliteDatabase(path), clock=clock)

    with pytest.raises(StorageError) as raised:
        service.start(alice, str(project))

    assert str(path) in str(raised.value)
    assert "corrupted" in str(raised.value)
    assert path.read_bytes() == garbage


def test_a_read_only_database_serves_reads_and_refuses_writes(
    tmp_path: Path, clock, alice: Principal, project: Path
) -> None:
    path = tmp_path / "session-buddy.db"
    writer_db = SqliteDatabase(path)
    writer = SessionService(writer_db, clock=clock)
    started = writer.start(alice, str(project))
    writer_db.close()
    before = path.read_bytes()
    reader = SessionService(SqliteDatabase(f"file:{path}?mode=ro"), clock=clock)

    status = reader.status(alice, str(project))
    with pytest.raises(StorageError) as raised:
        reader.checkpoint(alice, str(project), "cannot be written")
    with pytest.raises(StorageError):
        reader.end(alice, str(project))

    assert status.session is not None
    assert status.session.id == started.id
    assert "read-only" in str(raised.value)
    assert str(path) in str(raised.value)
    assert path.read_bytes() == before
