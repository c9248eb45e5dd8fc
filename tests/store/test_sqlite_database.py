"""SQLite only: the file itself — its directory, adoption from before Alembic, corruption,
read-only use. Failures surface as StorageError naming the file; the file is never harmed.

What both backends do alike (schema at HEAD, a newer schema refused, transactions) is in
the contract suite, ``tests/store/contract/``.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from session_buddy.store import SqliteDatabase, StorageError, migrations

VERSIONS = Path(migrations.__file__).parent / "versions"


def legacy_statements(revision: str) -> list[str]:
    """The SQLite statements of a revision, as the pre-Alembic runner executed them."""
    (path,) = VERSIONS.glob(f"v{revision}_*.py")
    spec = importlib.util.spec_from_file_location(f"revision_{revision}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.SQLITE)


def test_a_new_database_creates_its_directories(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "deep" / "dir" / "new.db").open()

    assert db.query("SELECT version_num FROM alembic_version")[0][0] == migrations.HEAD
    assert (tmp_path / "deep" / "dir" / "new.db").is_file()


@pytest.fixture
def common_umask() -> Iterator[None]:
    """The usual umask (022), under which SQLite's defaults would be world-readable."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("common_umask")
def test_a_new_data_dir_and_database_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "parent" / "data"
    db = SqliteDatabase(data_dir / "session-buddy.db").open()
    with db.transaction() as conn:
        conn.execute("CREATE TABLE probe (x)")  # the -wal file now holds a write

    files = {path.name: _mode(path) for path in data_dir.iterdir()}

    assert _mode(data_dir) == 0o700
    assert files == {
        "session-buddy.db": 0o600,
        "session-buddy.db-wal": 0o600,
        "session-buddy.db-shm": 0o600,
    }
    db.close()


@pytest.mark.usefixtures("common_umask")
def test_an_existing_directory_and_database_keep_their_modes(tmp_path: Path) -> None:
    tmp_path.chmod(0o750)
    SqliteDatabase(tmp_path / "shared.db").open().close()
    (tmp_path / "shared.db").chmod(0o640)

    SqliteDatabase(tmp_path / "shared.db").open().close()

    assert (_mode(tmp_path), _mode(tmp_path / "shared.db")) == (0o750, 0o640)


@pytest.mark.parametrize("legacy_version", [1, 2])
def test_a_database_from_before_alembic_is_adopted_and_migrated_in_place(
    tmp_path: Path, legacy_version: int
) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for revision in range(1, legacy_version + 1):
        for statement in legacy_statements(f"{revision:04d}"):
            conn.execute(statement)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (legacy_version,))
    conn.execute("INSERT INTO revoked_tokens VALUES ('k', 1, 1)")
    conn.commit()
    conn.close()

    db = SqliteDatabase(path).open()

    assert db.query("SELECT version_num FROM alembic_version")[0][0] == migrations.HEAD
    assert db.query("SELECT token_key FROM revoked_tokens")[0][0] == "k"
    assert db.query("SELECT COUNT(*) FROM sessions")[0][0] == 0


def test_opening_waits_for_another_process_that_is_writing_a_new_file(tmp_path: Path) -> None:
    """Switching a new file to WAL needs the file to itself, and SQLite answers "database
    is locked" at once, without the busy timeout, while another connection writes: several
    processes starting together on a fresh data dir once made one of them fail."""
    path = tmp_path / "new.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.3, writer.execute, args=("ROLLBACK",))
    releaser.start()
    try:
        db = SqliteDatabase(path).open()
    finally:
        releaser.join()
        writer.close()

    assert db.query("PRAGMA journal_mode")[0][0] == "wal"
    assert db.query("SELECT version_num FROM alembic_version")[0][0] == migrations.HEAD


def test_a_corrupted_file_is_reported_by_name_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)

    with pytest.raises(StorageError) as raised:
        SqliteDatabase(path).open()

    assert str(path) in str(raised.value)
    assert "corrupted" in str(raised.value)
    assert path.read_bytes() == garbage


def test_a_database_with_a_damaged_page_fails_its_check_and_is_left_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "damaged.db"
    db = SqliteDatabase(path).open()
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO revoked_tokens VALUES (?, 1, 1)", [(f"k{n:05}",) for n in range(2000)]
        )
    db.close()  # the last connection to close checkpoints the WAL into the file
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[page_size * 3 : page_size * 3 + 200] = b"\xa5" * 200
    path.write_bytes(bytes(data))

    with pytest.raises(StorageError) as raised:
        SqliteDatabase(path).open()

    assert str(path) in str(raised.value)
    assert path.read_bytes() == bytes(data)


def test_a_parent_that_is_a_file_is_named_as_not_a_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("i am a file")

    with pytest.raises(StorageError) as raised:
        SqliteDatabase(blocker / "session-buddy.db").open()

    message = str(raised.value)
    assert f"{blocker} is not a directory" in message
    assert "File exists" not in message


def test_a_grandparent_that_is_a_file_is_named_as_not_a_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("i am a file")

    with pytest.raises(StorageError, match=f"{blocker} is not a directory"):
        SqliteDatabase(blocker / "sub" / "session-buddy.db").open()


def test_a_read_only_uri_refuses_writes_with_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    SqliteDatabase(path).open().close()
    before = path.read_bytes()
    db = SqliteDatabase(f"file:{path}?mode=ro").open()

    with pytest.raises(StorageError, match="read-only") as raised, db.transaction() as conn:
        conn.execute("INSERT INTO revoked_tokens VALUES ('k', 1, 1)")

    assert str(path) in str(raised.value)
    assert db.query("SELECT COUNT(*) FROM revoked_tokens")[0][0] == 0
    assert path.read_bytes() == before
