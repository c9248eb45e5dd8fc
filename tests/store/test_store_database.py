"""Database file failures surface as StorageError naming the file; the file is never harmed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from session_buddy.store.db import MIGRATIONS, Database, StorageError


def test_a_new_database_gets_every_migration(tmp_path: Path) -> None:
    db = Database(tmp_path / "deep" / "dir" / "new.db").open()

    assert db.query("SELECT version FROM schema_version")[0][0] == len(MIGRATIONS)
    tables = {row[0] for row in db.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"revoked_tokens", "sessions", "checkpoints"} <= tables


def test_an_existing_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO revoked_tokens VALUES ('k', 1, 1)")
    conn.commit()
    conn.close()

    db = Database(path).open()

    assert db.query("SELECT version FROM schema_version")[0][0] == len(MIGRATIONS)
    assert db.query("SELECT token_key FROM revoked_tokens")[0][0] == "k"


def test_a_corrupted_file_is_reported_by_name_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    garbage = bytes(range(256)) * 64
    path.write_bytes(garbage)

    with pytest.raises(StorageError) as raised:
        Database(path).open()

    assert str(path) in str(raised.value)
    assert "corrupted" in str(raised.value)
    assert path.read_bytes() == garbage


def test_a_database_with_a_damaged_page_fails_its_check_and_is_left_unchanged(
    tmp_path: Path,
) -> None:
    path = tmp_path / "damaged.db"
    db = Database(path).open()
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
        Database(path).open()

    assert str(path) in str(raised.value)
    assert path.read_bytes() == bytes(data)


def test_a_parent_that_is_a_file_is_named_as_not_a_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("i am a file")

    with pytest.raises(StorageError) as raised:
        Database(blocker / "session-buddy.db").open()

    message = str(raised.value)
    assert f"{blocker} is not a directory" in message
    assert "File exists" not in message


def test_a_grandparent_that_is_a_file_is_named_as_not_a_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("i am a file")

    with pytest.raises(StorageError, match=f"{blocker} is not a directory"):
        Database(blocker / "sub" / "session-buddy.db").open()


def test_a_read_only_uri_refuses_writes_with_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    Database(path).open().close()
    before = path.read_bytes()
    db = Database(f"file:{path}?mode=ro").open()

    with pytest.raises(StorageError, match="read-only") as raised, db.transaction() as conn:
        conn.execute("INSERT INTO revoked_tokens VALUES ('k', 1, 1)")

    assert str(path) in str(raised.value)
    assert db.query("SELECT COUNT(*) FROM revoked_tokens")[0][0] == 0
    assert path.read_bytes() == before


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.db").open()

    with pytest.raises(RuntimeError), db.transaction() as conn:
        conn.execute("INSERT INTO revoked_tokens VALUES ('k', 1, 1)")
        raise RuntimeError("boom")

    assert db.query("SELECT COUNT(*) FROM revoked_tokens")[0][0] == 0
    with db.transaction() as conn:  # the connection is usable again
        conn.execute("INSERT INTO revoked_tokens VALUES ('k', 1, 1)")
