"""Storage: one interface (:class:`~session_buddy.store.base.Database`), two backends.

``SESSION_BUDDY_DATABASE_URL`` (or ``…_FILE``) set to ``postgresql://…`` selects
PostgreSQL; unset, sessions and revocations live in the SQLite file under the data dir.
:func:`shared_database` gives each process one :class:`Database` per location (an
explicit cache), so every part of a process — sessions, revocations, the original design
note's module-level functions — shares its connections and its listener.
"""

from __future__ import annotations

from session_buddy.config import DatabaseUrlFileError, Settings
from session_buddy.shared import SharedParts
from session_buddy.store.base import Database, Dialect
from session_buddy.store.errors import StorageError
from session_buddy.store.sqlite import SqliteDatabase
from session_buddy.store.urls import check_url

__all__ = [
    "Database",
    "Dialect",
    "SqliteDatabase",
    "StorageError",
    "close_shared_databases",
    "database_for",
    "release_database",
    "shared_database",
]

_databases: SharedParts[Database] = SharedParts(lambda database: database.close())


def database_for(settings: Settings, *, hold: bool = False) -> Database:
    """The process's database for ``settings`` (not opened: call ``open()``); ``hold``: the
    caller holds it until :func:`release_database` (see :mod:`session_buddy.shared`).

    :class:`StorageError` (kind ``bad_url``) when the configured URL is unusable.
    """
    try:
        url = settings.resolved_database_url()
    except DatabaseUrlFileError as exc:
        raise StorageError(str(exc), kind="bad_url", fix=exc.fix) from None
    if url is None:
        return shared_database(str(settings.database_path), hold=hold)
    check_url(url)
    return shared_database(url, postgres=True, hold=hold)


def shared_database(location: str, *, postgres: bool = False, hold: bool = False) -> Database:
    """The process's :class:`Database` for a SQLite path (or a ``postgresql://`` URL)."""

    def build() -> Database:
        if postgres:  # the driver is imported only where PostgreSQL is configured
            from session_buddy.store.postgres import PostgresDatabase

            return PostgresDatabase(location)
        return SqliteDatabase(location)

    return (_databases.hold if hold else _databases.get)(location, build)


def release_database(database: Database) -> None:
    """A holder of ``database`` (see :func:`database_for`) is done with it."""
    _databases.release(database.location)


def close_shared_databases() -> None:
    """Close and forget every shared database no runtime holds (tests, and processes
    switching databases); a held one stays open and shared until its holders close."""
    _databases.forget()
