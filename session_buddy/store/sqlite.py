"""The SQLite backend: the embedded default, one file shared by every process on a data dir.

WAL journal, foreign keys on, a busy timeout so several server processes (Claude Code's
and Mahavishnu's) can write the same file, and every write inside ``BEGIN IMMEDIATE`` …
``COMMIT``. A data directory it creates is 0700, a database file 0600 (its ``-wal`` and
``-shm`` files follow). The schema is migrated by :mod:`session_buddy.store.migrations`. Failures of
the file itself (missing directory, corrupted or read-only file) surface as
:class:`StorageError` with a message naming the file, never as a raw ``sqlite3``
traceback.
"""

# SQL here is assembled only from constants and dialect keywords; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

from session_buddy.store import migrations
from session_buddy.store.base import SQLITE, Connection, Params, Row, Watch
from session_buddy.store.errors import StorageError

BUSY_TIMEOUT_MS = 10_000
WAL_RETRY_SECONDS = 0.01


def _blocking_file(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` that exists but is not a directory, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _result_code(exc: BaseException) -> int | None:
    """SQLite's primary result code of an error (``SQLITE_BUSY``, …), or None."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def _describe(path: Path, exc: sqlite3.Error | OSError | UnicodeEncodeError) -> StorageError:
    """A :class:`StorageError` for what SQLite (by its result code) or the file system said
    about ``path``; the message keeps SQLite's own words for the operator. A string the
    driver cannot encode (a lone surrogate) is a ``bad_value``: the row, not the file."""
    text = str(exc)
    code = _result_code(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return StorageError(f"database {path}: {text}", kind="constraint")
    if isinstance(exc, UnicodeEncodeError | sqlite3.DataError):
        return StorageError(f"database {path} cannot store a value: {text}", kind="bad_value")
    if isinstance(exc, OSError) or code == sqlite3.SQLITE_CANTOPEN:
        blocker = _blocking_file(path)
        if blocker is not None:
            return StorageError(
                f"cannot use data directory for database {path}: {blocker} is not a directory",
                kind="not_a_directory",
                fix="move that file aside or choose another SESSION_BUDDY_DATA_DIR",
            )
    if isinstance(exc, OSError):
        return StorageError(
            f"cannot use data directory for database {path}: {exc.strerror or text}",
            kind="unusable_directory",
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StorageError(
            f"database {path} is corrupted or is not a session-buddy database ({text})",
            kind="corrupted",
            fix="move the file aside to start fresh, or restore it from a backup",
        )
    if code == sqlite3.SQLITE_READONLY:
        return StorageError(
            f"database {path} is read-only ({text})",
            kind="read_only",
            fix="make the database file and its directory writable",
        )
    if code == sqlite3.SQLITE_CANTOPEN:
        return StorageError(
            f"database {path} cannot be opened ({text})",
            kind="cannot_open",
            fix="check that its directory exists and is writable",
        )
    return StorageError(f"database {path}: {text}")


PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def _create_private(path: Path) -> None:
    """Create the data directory (0700) and an empty database file (0600) if missing.

    Sessions, revocations and the audit trail are nobody else's business. SQLite creates
    its files 0644 (less the umask) but gives the ``-wal``, ``-shm`` and journal files the
    database file's mode, so creating that file first makes them all private. Existing
    directories and files keep the modes they have (an operator may have chosen them).
    """
    path.parent.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)  # an empty file is an empty SQLite database


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL, waiting (up to the busy timeout) for other writers.

    SQLite answers "database is locked" at once, without calling the busy handler, when
    another connection writes while this one changes the journal mode: several processes
    opening a new file together would otherwise see one of them fail.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = _result_code(exc) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(WAL_RETRY_SECONDS)


class SqliteDatabase:
    """One SQLite file; a connection per thread, opened lazily.

    ``path`` may be a filesystem path or, for read-only use, a ``file:…?mode=ro`` URI.
    """

    dialect = SQLITE

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path: Path | str = Path(path) if not str(path).startswith("file:") else path
        self._uri = str(path).startswith("file:")
        self._create = create and not self._uri
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrated = False
        self._checked = False  # open() passed since the last close()

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def display(self) -> str:
        return str(self.path)

    @property
    def superuser(self) -> bool | None:
        return None  # a file has no roles

    def __repr__(self) -> str:
        return f"SqliteDatabase({self.display!r})"

    def open(self) -> SqliteDatabase:
        """Open (creating the directory and schema if needed) and check the file now.

        Raises :class:`StorageError` with a precise message; call at startup so a broken
        file stops the server before it accepts requests. The check reads the whole file,
        so it runs once per object until :meth:`close` (as PostgreSQL's connects once).
        """
        if self._checked:
            return self
        conn = self.connection()
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        if row is None or row[0] != "ok":
            raise StorageError(
                f"database {self.path} failed its integrity check ({row[0] if row else '?'})",
                kind="corrupted",
                fix="move the file aside to start fresh, or restore it from a backup",
            )
        self._checked = True
        return self

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        path = Path(str(self.path))
        try:
            if self._create:
                _create_private(path)
            conn = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                uri=self._uri,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise _describe(path, exc) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            if not self._uri:
                _use_wal(conn)
                conn.execute("PRAGMA synchronous = NORMAL")
            with self._lock:
                if not self._migrated:
                    self._migrate(conn)
                    self._migrated = True
        except sqlite3.Error as exc:
            conn.close()
            raise _describe(path, exc) from None
        except StorageError:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            row = conn.execute(f"SELECT version_num FROM {migrations.VERSION_TABLE}").fetchone()
            revision = None if row is None else str(row[0])
        except sqlite3.OperationalError:  # no such table: new, or from before Alembic
            revision = None
        if not migrations.needs_upgrade(revision, str(self.path)):
            return
        if self._uri:
            raise StorageError(
                f"database {self.path} is opened read-only but its schema is behind "
                f"(revision {revision or 'none'}, this session-buddy needs {migrations.HEAD})",
                kind="read_only",
                fix="open it once read-write with this version of session-buddy",
            )
        try:
            migrations.upgrade(self._sqlalchemy_url())
        except Exception as exc:  # SQLAlchemy wraps the driver's error
            cause = getattr(exc, "orig", None)
            if isinstance(cause, sqlite3.Error):
                raise cause from None
            raise

    def _sqlalchemy_url(self) -> str:
        return f"sqlite:///{quote(str(self.path))}"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): all of it commits, or none of it.

        A storage failure inside the block (read-only file, corruption, full disk) is
        raised as :class:`StorageError`.
        """
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        try:
            yield conn
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            self._rollback(conn)
            raise self._error(exc) from None
        except BaseException:
            self._rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise self._error(exc) from None

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite may already have rolled back (disk full, I/O error); never mask the cause.
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a read; storage failures become :class:`StorageError`."""
        try:
            return self.connection().execute(sql, params).fetchall()
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise self._error(exc) from None

    def ping(self, timeout: float) -> None:
        """``SELECT 1`` on this thread's connection (it never waits for a lock)."""
        self.query("SELECT 1")

    def notify(self, conn: Connection, channel: str) -> None:
        """Nothing is pushed: other processes on the file poll."""

    def watch(self, channel: str, on_change: Callable[[], None]) -> Watch | None:
        return None

    def _error(self, exc: sqlite3.Error | UnicodeEncodeError) -> StorageError:
        return _describe(Path(str(self.path)), exc)

    def close(self) -> None:
        """Close every connection this object opened (in any thread)."""
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
        self._checked = False
