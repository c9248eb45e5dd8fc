"""The session layer over a shared, damaged or read-only database file."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from session_buddy.auth.principal import Principal
from session_buddy.sessions.models import SessionInfo
from session_buddy.sessions.service import SessionService
from session_buddy.store import SqliteDatabase, StorageError


def test_two_processes_racing_start_create_exactly_one_active_session(
    tmp_path: Path, clock, alice: Principal, project: Path
) -> None:
    path = tmp_path / "shared.db"
    databases = [SqliteDatabase(path), SqliteDatabase(path)]  # as two server processes would
    services = [SessionService(db, clock=clock) for db in databases]
    racers = 8
    barrier = threading.Barrier(racers)

    def race(index: int) -> SessionInfo:
        barrier.wait()
        return services[index % 2].start(alice, str(project))

    with ThreadPoolExecutor(max_workers=racers) as pool:
        results = list(pool.map(race, range(racers)))

    assert sum(info.created for info in results) == 1
    assert len({info.id for info in results}) == 1
    rows = databases[0].query("SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL")
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
