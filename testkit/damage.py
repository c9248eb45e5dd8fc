"""What a failing disk and a crashed machine do to a SQLite file, for tests of what is found
when: a page overwritten in place, a key changed inside an index, and the write-ahead log a
machine leaves when it goes down with the file open.

Work on a closed file whose log was folded in (the last connection to close does that):
bytes written over a page the ``-wal`` also holds would be hidden by the log's copy.
"""

from __future__ import annotations

import os
from pathlib import Path

from session_buddy.store import SqliteDatabase


def page_size(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[16:18], "big")


def page_holding(path: Path, text: str) -> int:
    """The (1-based) page of the file whose bytes hold ``text`` first."""
    return path.read_bytes().index(text.encode()) // page_size(path) + 1


def root_page(path: Path, name: str) -> int:
    """The first page of the table or index ``name``."""
    db = SqliteDatabase(path, create=False)
    try:
        rows = db.query("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,))
    finally:
        db.close()
    return int(rows[0][0])


def damage_page(path: Path, page: int) -> bytes:
    """Overwrite the start of ``page`` with garbage, as a failing disk might; the file's
    new bytes."""
    data = bytearray(path.read_bytes())
    start = (page - 1) * page_size(path)
    data[start : start + 200] = b"\xa5" * 200
    path.write_bytes(bytes(data))
    return bytes(data)


def change_in_page(path: Path, page: int, old: str, new: str) -> bytes:
    """Replace ``old`` by ``new`` (same length) where it first appears in ``page``: the
    page stays well-formed, its content is wrong. The file's new bytes."""
    assert len(old) == len(new)
    data = bytearray(path.read_bytes())
    size = page_size(path)
    start = (page - 1) * size
    at = data.index(old.encode(), start, start + size)
    data[at : at + len(old)] = new.encode()
    path.write_bytes(bytes(data))
    return bytes(data)


def leave_log(path: Path, written: float) -> Path:
    """The ``-wal`` a machine (or process) that went down with the database open leaves,
    last written at ``written`` (Unix time)."""
    wal = path.with_name(path.name + "-wal")
    wal.write_bytes(b"")
    os.utime(wal, (written, written))
    return wal
