"""SQLite only: which damage is found when, and that finding it loses nothing.

Opening checks what costs the same at any size — the header, the schema, the first page of
every table — so a start never reads the whole file. A damaged page elsewhere is reported,
in SQLite's words and naming the file, by the read that meets it (that request alone), by
``check()`` (``session-buddy db check``), and at start when the machine went down with the
file open (its write-ahead log predates this boot): then every page is checked before use.
No check writes to the file.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from session_buddy.store import SqliteDatabase, StorageError
from session_buddy.store.sessions import SessionRepository
from session_buddy.store.sqlite import boot_time, went_down_open
from testkit.damage import change_in_page, damage_page, leave_log, page_holding, root_page
from testkit.history import History, fill

HISTORY = History(users=5, sessions=50, checkpoints=2_000, audit=0, revoked=0)
MARKER = "marker-of-the-damaged-page"
MALFORMED = "database disk image is malformed"


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, str, str]:
    """A closed database with sessions and checkpoints, the last checkpoint of the last
    session marked; returns (file, first session id, last session id)."""
    path = tmp_path / "data" / "session-buddy.db"
    db = SqliteDatabase(path).open()
    fill(db, HISTORY)
    ((first, last),) = db.query(
        "SELECT (SELECT session_id FROM checkpoints ORDER BY id LIMIT 1), "
        "(SELECT session_id FROM checkpoints ORDER BY id DESC LIMIT 1)"
    )
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO checkpoints(session_id, created_at, note, snapshot_json) "
            "VALUES (?, 1, ?, '{}')",
            (last, MARKER),
        )
    db.close()  # the last connection folds the log into the file and removes it
    assert not went_down_open(path)
    return path, first, last


def test_a_damaged_page_deep_in_a_table_is_reported_by_the_read_that_meets_it_only(
    history: tuple[Path, str, str],
) -> None:
    path, first, last = history
    page = page_holding(path, MARKER)
    assert page != root_page(path, "checkpoints")
    damaged = damage_page(path, page)

    db = SqliteDatabase(path).open()  # the start does not read that page
    try:
        repo = SessionRepository(db)
        with pytest.raises(StorageError) as raised:
            repo.checkpoints(last)
        assert raised.value.kind == "corrupted"
        assert str(raised.value) == (
            f"database {path} is corrupted or is not a session-buddy database ({MALFORMED})"
        )
        # every other session's checkpoints are still there, and the server keeps serving
        assert len(repo.checkpoints(first)) == HISTORY.checkpoints // HISTORY.sessions
        assert repo.list_sessions(limit=5)[1] == HISTORY.sessions
    finally:
        db.close()
    assert path.read_bytes() == damaged


def test_check_reads_every_page_and_names_the_damaged_table_in_sqlites_words(
    history: tuple[Path, str, str],
) -> None:
    path, _, _ = history
    damaged = damage_page(path, page_holding(path, MARKER))

    db = SqliteDatabase(path).open()
    try:
        problems = db.check()
    finally:
        db.close()

    assert problems == [f"table checkpoints: {MALFORMED}"]
    assert path.read_bytes() == damaged


def test_an_index_that_no_longer_matches_its_table_passes_the_start_but_not_the_check(
    history: tuple[Path, str, str],
) -> None:
    """A page that is well-formed but says the wrong thing: only ``integrity_check`` (what
    ``check()`` runs, not the start's ``quick_check``) compares indexes with their tables."""
    path, _, _ = history
    changed = change_in_page(path, root_page(path, "sessions_by_user"), "user-00004", "user-00009")

    db = SqliteDatabase(path).open()
    try:
        assert db.query("PRAGMA quick_check") == [("ok",)]
        problems = db.check()
    finally:
        db.close()

    assert len(problems) == 1
    assert re.fullmatch(r"row \d+ missing from index sessions_by_user", problems[0])
    assert path.read_bytes() == changed


def test_a_sound_database_passes_its_check(history: tuple[Path, str, str]) -> None:
    db = SqliteDatabase(history[0]).open()
    try:
        assert db.check() == []
    finally:
        db.close()


def test_a_damaged_first_page_of_a_table_stops_the_start(history: tuple[Path, str, str]) -> None:
    path, _, _ = history
    damaged = damage_page(path, root_page(path, "checkpoints"))

    with pytest.raises(StorageError) as raised:
        SqliteDatabase(path).open()

    assert raised.value.kind == "corrupted"
    assert str(raised.value) == (
        f"database {path} is corrupted or is not a session-buddy database ({MALFORMED})"
    )
    assert path.read_bytes() == damaged


def test_after_the_machine_went_down_with_the_file_open_every_page_is_checked_before_use(
    history: tuple[Path, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    path, _, _ = history
    damaged = damage_page(path, page_holding(path, MARKER))
    leave_log(path, boot_time() - 3600)
    assert went_down_open(path)

    with caplog.at_level(logging.WARNING), pytest.raises(StorageError) as raised:
        SqliteDatabase(path).open()

    assert raised.value.kind == "corrupted"
    assert str(raised.value) == (
        f"database {path} failed its integrity check (table checkpoints: {MALFORMED})"
    )
    assert "session-buddy db restore" in raised.value.fix
    assert f"database {path} was open when this machine last went down" in caplog.text
    assert path.read_bytes() == damaged


def test_a_process_that_died_is_not_taken_for_a_machine_that_went_down(
    history: tuple[Path, str, str],
) -> None:
    """SQLite's commits survive a process killed mid-write; only a crash of the machine
    (a disk that lied about what it wrote) makes the whole file suspect."""
    path, _, _ = history
    damage_page(path, page_holding(path, MARKER))
    leave_log(path, boot_time() + 60)
    assert not went_down_open(path)

    SqliteDatabase(path).open().close()  # the cheap start


def test_a_database_checked_after_the_machine_went_down_opens_when_sound_and_once(
    history: tuple[Path, str, str],
) -> None:
    path, first, _ = history
    leave_log(path, boot_time() - 3600)

    db = SqliteDatabase(path).open()
    try:
        assert len(SessionRepository(db).checkpoints(first)) == 40
        assert not went_down_open(path)  # checked since this boot: the next opener need not
    finally:
        db.close()


def test_no_log_means_no_crash(tmp_path: Path) -> None:
    assert not went_down_open(tmp_path / "session-buddy.db")
