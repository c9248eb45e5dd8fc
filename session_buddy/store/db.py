"""The SQLite database shared by sessions and revocations, and by every process on a data dir.

WAL journal, foreign keys on, a busy timeout so several server processes (Claude Code's
and Mahavishnu's) can write the same file, a ``schema_version`` table with ordered
migrations, and every write inside ``BEGIN IMMEDIATE`` … ``COMMIT``. Failures of the file
itself (missing directory, corrupted or read-only file) surface as :class:`StorageError`
with a message naming the file, never as a raw ``sqlite3`` traceback.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

BUSY_TIMEOUT_MS = 10_000

# Each entry moves the schema from version N to N+1. Append only; never edit a shipped one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE revoked_tokens (
        token_key  TEXT PRIMARY KEY,
        expires_at REAL NOT NULL,
        revoked_at REAL NOT NULL
    );
    CREATE INDEX revoked_tokens_expires ON revoked_tokens(expires_at);
    CREATE TABLE revocation_log (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        token_key TEXT NOT NULL
    );
    """,
    # 2: coding sessions and their checkpoints (session_buddy.store.sessions).
    """
    CREATE TABLE sessions (
        id                TEXT PRIMARY KEY,
        user_id           TEXT NOT NULL,
        project_path      TEXT NOT NULL,
        project_name      TEXT NOT NULL,
        started_at        REAL NOT NULL,
        ended_at          REAL,
        snapshot_json     TEXT NOT NULL,
        end_snapshot_json TEXT,
        summary           TEXT,
        handoff           TEXT
    );
    CREATE UNIQUE INDEX sessions_one_active_per_user_project
        ON sessions(user_id, project_path) WHERE ended_at IS NULL;
    CREATE INDEX sessions_by_user ON sessions(user_id, started_at);
    CREATE INDEX sessions_by_project ON sessions(project_path, started_at);
    CREATE TABLE checkpoints (
        id                     INTEGER PRIMARY KEY,
        session_id             TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        created_at             REAL NOT NULL,
        note                   TEXT,
        snapshot_json          TEXT NOT NULL,
        commits_since_previous INTEGER,
        changed_files          INTEGER
    );
    CREATE INDEX checkpoints_by_session ON checkpoints(session_id, id);
    """,
]


StorageProblem = Literal[
    "not_a_directory", "unusable_directory", "corrupted", "read_only", "cannot_open", "failed"
]
DATA_DIR_FIX = "check SESSION_BUDDY_DATA_DIR (see: session-buddy auth status)"


class StorageError(Exception):
    """The database cannot be used. ``str()`` names it and says what is wrong;
    ``kind`` says which way it failed and ``fix`` what to do about it."""

    def __init__(
        self, message: str, *, kind: StorageProblem = "failed", fix: str = DATA_DIR_FIX
    ) -> None:
        super().__init__(message)
        self.kind: StorageProblem = kind
        self.fix = fix


def _blocking_file(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` that exists but is not a directory, if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _describe(path: Path, exc: sqlite3.Error | OSError) -> StorageError:
    """A :class:`StorageError` for what SQLite (or the file system) said about ``path``.

    SQLite reports most problems only as text; this is the one place that reads it.
    """
    text = str(exc)
    if isinstance(exc, OSError) or "unable to open" in text:
        blocker = _blocking_file(path)
        if blocker is not None:
            return StorageError(
                f"cannot use data directory for database {path}: {blocker} is not a "
                "directory; move that file aside or choose another SESSION_BUDDY_DATA_DIR",
                kind="not_a_directory",
                fix="move that file aside or choose another SESSION_BUDDY_DATA_DIR",
            )
    if isinstance(exc, OSError):
        return StorageError(
            f"cannot use data directory for database {path}: {exc.strerror or text}",
            kind="unusable_directory",
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StorageError(
            f"database {path} is corrupted or is not a session-buddy database ({text}); "
            "move it aside to start fresh, or restore it from a backup",
            kind="corrupted",
            fix="move the file aside to start fresh, or restore it from a backup",
        )
    if "readonly" in text or "read-only" in text:
        return StorageError(
            f"database {path} is read-only ({text}); check the file and its directory",
            kind="read_only",
            fix="make the database file and its directory writable",
        )
    if "unable to open" in text:
        return StorageError(
            f"database {path} cannot be opened ({text}); "
            "check that its directory exists and is writable",
            kind="cannot_open",
        )
    return StorageError(f"database {path}: {text}")


class Database:
    """One SQLite file; a connection per thread, opened lazily.

    ``path`` may be a filesystem path or, for read-only use, a ``file:…?mode=ro`` URI.
    """

    def __init__(self, path: Path | str, *, create: bool = True) -> None:
        self.path: Path | str = Path(path) if not str(path).startswith("file:") else path
        self._uri = str(path).startswith("file:")
        self._create = create and not self._uri
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._migrate_lock = threading.Lock()
        self._migrated = False

    @property
    def location(self) -> str:
        """What this database is, for caches and messages (the file path or URI)."""
        return str(self.path)

    def open(self) -> Database:
        """Open (creating the directory and schema if needed) and check the file now.

        Raises :class:`StorageError` with a precise message; call at startup so a broken
        file stops the server before it accepts requests.
        """
        conn = self.connection()
        try:
            row = conn.execute("PRAGMA quick_check").fetchone()
        except sqlite3.Error as exc:
            raise _describe(Path(str(self.path)), exc) from None
        if row is None or row[0] != "ok":
            raise StorageError(
                f"database {self.path} failed its integrity check ({row[0] if row else '?'}); "
                "move it aside to start fresh, or restore it from a backup",
                kind="corrupted",
                fix="move the file aside to start fresh, or restore it from a backup",
            )
        return self

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._migrate_lock:
                self._connections.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        path = Path(str(self.path))
        try:
            if self._create:
                path.parent.mkdir(parents=True, exist_ok=True)
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
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.row_factory = sqlite3.Row
            with self._migrate_lock:
                if not self._migrated:
                    self._migrate(conn)
                    self._migrated = True
        except sqlite3.Error as exc:
            conn.close()
            raise _describe(path, exc) from None
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = self._version(conn)
        if version == len(MIGRATIONS):
            return
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(
                f"schema version {version} is newer than this session-buddy "
                f"({len(MIGRATIONS)}); upgrade session-buddy"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = self._version(conn)  # another process may have migrated meanwhile
            for number in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("DELETE FROM schema_version")
                conn.execute("INSERT INTO schema_version(version) VALUES (?)", (number + 1,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): all of it commits, or none of it.

        A storage failure inside the block (read-only file, corruption, full disk) is
        raised as :class:`StorageError`; ``sqlite3.IntegrityError`` passes through so a
        repository can react to a constraint it relies on.
        """
        conn = self.connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _describe(Path(str(self.path)), exc) from None
        try:
            yield conn
        except sqlite3.IntegrityError:
            self._rollback(conn)
            raise
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise _describe(Path(str(self.path)), exc) from None
        except BaseException:
            self._rollback(conn)
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise _describe(Path(str(self.path)), exc) from None

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        # SQLite may already have rolled back (disk full, I/O error); never mask the cause.
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        """Run a read; storage failures become :class:`StorageError`."""
        try:
            return self.connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise _describe(Path(str(self.path)), exc) from None

    def close(self) -> None:
        """Close every connection this object opened (in any thread)."""
        with self._migrate_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()


_shared_lock = threading.Lock()
_shared: dict[str, Database] = {}


def shared_database(path: Path | str) -> Database:
    """The process's :class:`Database` for ``path`` (an explicit cache, one per file).

    Everything one process builds on a data dir — sessions, revocations, the design
    note's module-level functions — shares it. Not opened here: call :meth:`Database.open`.
    """
    key = str(path)
    with _shared_lock:
        database = _shared.get(key)
        if database is None:
            database = _shared[key] = Database(path)
        return database


def close_shared_databases() -> None:
    """Close and forget every shared database (tests, and processes switching data dirs)."""
    with _shared_lock:
        databases = list(_shared.values())
        _shared.clear()
    for database in databases:
        database.close()
