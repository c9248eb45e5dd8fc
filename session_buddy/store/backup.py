"""Backing up and restoring the database: ``session-buddy db backup`` and ``db restore``.

SQLite: :func:`backup_sqlite` copies the live file with SQLite's online backup API in one
step, that is inside one read transaction: the copy is the database as of one moment, while
servers go on reading and writing it (WAL lets writers commit during the read). The copy
is written beside its destination with mode 0600, checked, and then renamed into place, so a
failed backup never leaves a partial file under the destination's name.

:func:`restore_sqlite` copies a backup back with the same API, but only while no other
process has the database open: a running server keeps every revocation and its position in
the revocation log in memory, and would go on with state the restore took away.

PostgreSQL: its own tools do it. :func:`pg_dump_command` and :func:`pg_restore_command`
are the exact commands — the schema's tables, and a URL without its password (the tools
read it from ``PGPASSWORD``, ``~/.pgpass`` or a prompt).
"""

# SQL here is assembled only from the schema's table names; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from session_buddy.store import migrations
from session_buddy.store.sqlite import BUSY_TIMEOUT_MS, SqliteDatabase
from session_buddy.text import plural

BackupProblem = Literal[
    "missing", "exists", "not_a_file", "same_file", "in_use", "not_a_backup", "damaged"
]
# Every connection to a WAL database holds a shared lock on this byte of the "-shm" file
# while it is open (SQLite's "DMS" lock, documented in its walformat.html for unix).
SHM_DMS_BYTE = 128
# Tables that hold no data of their own: the schema revision, the count of sessions.
BOOKKEEPING = (migrations.VERSION_TABLE, "session_totals")
# What a row of each table is, for people ("3 sessions, 1 revoked token"), in that order.
ROW_NAMES = {
    "sessions": "session",
    "checkpoints": "checkpoint",
    "revoked_tokens": "revoked token",
    "revocation_log": "revocation log entry",
    "envelope_nonces": "envelope nonce",
    "auth_failures": "failure-count bucket",
    "auth_blocks": "throttle block",
    "audit_events": "audit row",
}
STOP_SERVERS_FIX = (
    "stop every session-buddy process on this data dir (servers, Claude Code's and "
    "Mahavishnu's stdio servers), then run it again"
)


class BackupError(Exception):
    """A backup or restore that was refused or failed; ``kind`` says why, ``fix`` what to do.

    ``str()`` names the files involved, never anything inside them.
    """

    def __init__(self, message: str, *, kind: BackupProblem, fix: str) -> None:
        super().__init__(message)
        self.kind: BackupProblem = kind
        self.fix = fix


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a backup (or a restored database) holds: its schema revision and the number of
    rows of each table (:data:`BOOKKEEPING` left out)."""

    revision: str | None
    rows: Mapping[str, int]


def others_have_open(path: Path) -> bool:
    """Whether another process has the SQLite database at ``path`` open right now.

    Each process with a connection to a WAL database holds a shared POSIX lock on the DMS
    byte of its ``-shm`` file until its last connection closes (a process that dies loses
    it with its locks): when this process can lock that byte exclusively, nobody else has
    the file open. The probe's lock is released at once (SQLite retries anyone who meets
    it). Call this before this process opens ``path``: closing the probe's descriptor drops
    every POSIX lock this process holds on the ``-shm`` file, SQLite's own included.
    """
    import fcntl  # POSIX only: imported here so the CLI itself loads anywhere

    shm = path.with_name(path.name + "-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except FileNotFoundError:
        return False  # the last connection removed it, or nobody opened the file in WAL mode
    except OSError as exc:
        raise BackupError(
            f"cannot tell whether another process uses {path}: {shm}: {exc.strerror}",
            kind="in_use",
            fix="run this as the user the servers run as",
        ) from None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, SHM_DMS_BYTE, os.SEEK_SET)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EAGAIN):
                return True
            raise
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, SHM_DMS_BYTE, os.SEEK_SET)
        return False
    finally:
        os.close(fd)


def snapshot_of(conn: sqlite3.Connection) -> Snapshot:
    """The revision and row counts of the session-buddy database ``conn`` is connected to."""
    present = {
        str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    revision = None
    if migrations.VERSION_TABLE in present:
        row = conn.execute(f"SELECT version_num FROM {migrations.VERSION_TABLE}").fetchone()
        revision = None if row is None else str(row[0])
    elif "schema_version" in present:  # a file from before Alembic: adopted when opened
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        revision = None if row is None or row[0] is None else f"{int(row[0]):04d}"
    rows = {
        table: int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        for table in migrations.TABLES
        if table in present and table not in BOOKKEEPING
    }
    return Snapshot(revision, rows)


def describe_rows(rows: Mapping[str, int]) -> str:
    """``"3 sessions, 0 checkpoints, 1 revoked token, …"`` (tables without a name last)."""
    order = list(ROW_NAMES)
    ranked = sorted(rows, key=lambda t: order.index(t) if t in ROW_NAMES else len(order))
    return ", ".join(
        plural(rows[table], ROW_NAMES[table])
        if table in ROW_NAMES
        else f"{rows[table]} rows of {table}"
        for table in ranked
    )


@dataclass(frozen=True, slots=True)
class Restored:
    """A finished restore: what the database holds now, the backup's schema revision (older
    ones were migrated), and whether another process opened the database while the restore
    ran (it may hold what the restore replaced: restart it)."""

    snapshot: Snapshot
    backup_revision: str | None
    opened_meanwhile: bool


@contextlib.contextmanager
def _connection(path: Path | str, *, uri: bool = False) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, uri=uri)
    try:
        yield conn
    finally:
        conn.close()


def _same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        return a.samefile(b)
    return False


def _check_destination(target: Path, database: Path, *, overwrite: bool) -> None:
    if not target.parent.is_dir():
        raise BackupError(
            f"cannot write {target}: directory {target.parent} does not exist",
            kind="missing",
            fix="create the directory first, or choose another path",
        )
    if target.is_dir():
        raise BackupError(
            f"{target} is a directory", kind="not_a_file", fix="give the backup file's path"
        )
    for live in (database, *_companions(database)):
        if _same_file(target, live) or target.resolve() == live.resolve():
            raise BackupError(
                f"{target} is the database itself",
                kind="same_file",
                fix="write the backup somewhere else",
            )
    if target.exists() and not overwrite:
        raise BackupError(
            f"{target} exists already", kind="exists", fix="choose another path, or pass --force"
        )


def _companions(database: Path) -> tuple[Path, Path]:
    return database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")


def _private_file(directory: Path, name: str) -> Path:
    """A new empty file of mode 0600 in ``directory`` (whatever the umask)."""
    path = directory / f".{name}.{secrets.token_hex(4)}.partial"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _quick_check(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA quick_check").fetchone()
    return "?" if row is None else str(row[0])


def backup_sqlite(database: Path, target: Path, *, overwrite: bool = False) -> Snapshot:
    """Copy the SQLite ``database`` to ``target`` (mode 0600) while it may be in use.

    The copy is one consistent moment of the database, checked (``PRAGMA quick_check``)
    before it takes ``target``'s name; ``target`` is replaced only with ``overwrite``.
    The copy uses a rollback journal, so it is one self-contained file. Raises
    :class:`BackupError`.
    """
    if not database.is_file():
        raise BackupError(
            f"no database at {database} (nothing to back up)",
            kind="missing",
            fix="check SESSION_BUDDY_DATA_DIR (see: session-buddy auth status)",
        )
    _check_destination(target, database, overwrite=overwrite)
    partial = _private_file(target.parent, target.name)
    try:
        try:
            with _connection(database) as source, _connection(partial) as copy:
                source.backup(copy)  # all pages in one step: one read transaction
                copy.execute("PRAGMA journal_mode = DELETE")
                verdict = _quick_check(copy)
                snapshot = snapshot_of(copy) if verdict == "ok" else None
        except sqlite3.Error as exc:
            raise BackupError(
                f"cannot back up {database}: {exc}",
                kind="damaged",
                fix="check the database with: session-buddy auth status",
            ) from None
        if snapshot is None:
            raise BackupError(
                f"the copy of {database} failed its integrity check ({verdict}): the "
                "database itself is damaged",
                kind="damaged",
                fix="restore the last good backup (session-buddy db restore PATH)",
            )
        _sync(partial)
        if overwrite:
            os.replace(partial, target)
        else:
            try:
                os.link(partial, target)  # never replaces a file created meanwhile
            except FileExistsError:
                raise BackupError(
                    f"{target} exists already",
                    kind="exists",
                    fix="choose another path, or pass --force",
                ) from None
        _sync(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return snapshot


def inspect_backup(backup: Path) -> Snapshot:
    """The revision and row counts of the backup file ``backup``, checked whole.

    :class:`BackupError` when it is missing, damaged or not a session-buddy database;
    :class:`~session_buddy.store.StorageError` (kind ``newer_schema``) when a newer
    session-buddy wrote it.
    """
    if not backup.is_file():
        raise BackupError(
            f"no backup file at {backup}", kind="missing", fix="give the path of a backup file"
        )
    try:
        with _connection(f"file:{quote(str(backup))}?mode=ro", uri=True) as conn:
            verdict = _quick_check(conn)
            snapshot = snapshot_of(conn) if verdict == "ok" else None
    except sqlite3.Error as exc:
        raise BackupError(
            f"{backup} is not a readable SQLite database ({exc})",
            kind="not_a_backup",
            fix="give a file written by: session-buddy db backup PATH",
        ) from None
    if snapshot is None:
        raise BackupError(
            f"backup {backup} failed its integrity check ({verdict})",
            kind="damaged",
            fix="use another backup",
        )
    if snapshot.revision is None:
        raise BackupError(
            f"{backup} is not a session-buddy database (it has no schema revision)",
            kind="not_a_backup",
            fix="give a file written by: session-buddy db backup PATH",
        )
    migrations.needs_upgrade(snapshot.revision, str(backup))  # a newer one: refused
    return snapshot


def restore_sqlite(backup: Path, database: Path, *, replace: bool = False) -> Restored:
    """Make the SQLite ``database`` a copy of ``backup``, then open it (migrating a backup
    from an older version to the current schema).

    Refused (:class:`BackupError`) while another process has ``database`` open, and when
    ``database`` holds any row unless ``replace``. Nothing is changed when it is refused.
    """
    if _same_file(backup, database):
        raise BackupError(
            f"{backup} is the database itself", kind="same_file", fix="give a backup file"
        )
    backed_up = inspect_backup(backup)
    if others_have_open(database):
        raise BackupError(
            f"another process has {database} open (a running server?)",
            kind="in_use",
            fix=STOP_SERVERS_FIX,
        )
    if database.exists():
        try:
            with _connection(database) as conn:
                held = {table: n for table, n in snapshot_of(conn).rows.items() if n}
        except sqlite3.Error as exc:
            raise BackupError(
                f"cannot read {database} ({exc})",
                kind="damaged",
                fix="move the damaged file aside, then restore",
            ) from None
        if held and not replace:
            raise BackupError(
                f"{database} holds data already ({describe_rows(held)})",
                kind="exists",
                fix="back it up first if you need it (session-buddy db backup PATH), "
                "then pass --force to replace it",
            )
    else:
        database.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        with (
            _connection(f"file:{quote(str(backup))}?mode=ro", uri=True) as source,
            _connection(database) as live,
        ):
            source.backup(live)  # one write transaction on the live file
            live.execute("PRAGMA journal_mode = WAL")
    except sqlite3.Error as exc:
        raise BackupError(
            f"cannot restore {backup} into {database}: {exc}",
            kind="damaged",
            fix="check both files; the database was left as it was",
        ) from None
    restored = SqliteDatabase(database)
    try:
        restored.open()  # migrates a backup of an older schema, and checks the file
        with _connection(database) as conn:
            snapshot = snapshot_of(conn)
    finally:
        restored.close()
    return Restored(snapshot, backed_up.revision, opened_meanwhile=others_have_open(database))


def password_free_url(url: str) -> str:
    """``url`` without its password, for PostgreSQL's own tools (which read the password
    from ``PGPASSWORD``, ``~/.pgpass`` or a prompt)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    if parts.username is not None:
        netloc = f"{quote(unquote(parts.username), safe='')}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def pg_dump_command(url: str, path: str) -> list[str]:
    """The ``pg_dump`` command that backs up session-buddy's tables to ``path``."""
    return [
        "pg_dump",
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        *(f"--table={table}" for table in migrations.TABLES),
        f"--file={path}",
        f"--dbname={password_free_url(url)}",
    ]


def pg_restore_command(url: str, path: str) -> list[str]:
    """The ``pg_restore`` command that puts a :func:`pg_dump_command` backup back, replacing
    session-buddy's tables (in one transaction: all of it, or nothing)."""
    return [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={password_free_url(url)}",
        path,
    ]


__all__ = [
    "BackupError",
    "Restored",
    "Snapshot",
    "backup_sqlite",
    "describe_rows",
    "inspect_backup",
    "others_have_open",
    "password_free_url",
    "pg_dump_command",
    "pg_restore_command",
    "restore_sqlite",
]
