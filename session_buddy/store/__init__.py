"""Storage: one interface (:class:`~session_buddy.store.base.Database`), two backends.

``SESSION_BUDDY_DATABASE_URL`` (or ``…_FILE``) set to ``postgresql://…`` selects
PostgreSQL; unset, sessions and revocations live in the SQLite file under the data dir.
:func:`shared_database` gives each process one :class:`Database` per location (an
explicit cache), so every part of a process — sessions, revocations, the original design
note's module-level functions — shares its connections and its listener.
"""

from __future__ import annotations

import threading

from session_buddy.config import DatabaseUrlFileError, Settings
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
    "shared_database",
]

_shared_lock = threading.Lock()
_shared: dict[str, Database] = {}


def database_for(settings: Settings) -> Database:
    """The process's database for ``settings`` (not opened: call ``open()``).

    :class:`StorageError` (kind ``bad_url``) when the configured URL is unusable.
    """
    try:
        url = settings.resolved_database_url()
    except DatabaseUrlFileError as exc:
        raise StorageError(str(exc), kind="bad_url", fix=exc.fix) from None
    if url is None:
        return shared_database(str(settings.database_path))
    check_url(url)
    return shared_database(url, postgres=True)


def shared_database(location: str, *, postgres: bool = False) -> Database:
    """The process's :class:`Database` for a SQLite path (or a ``postgresql://`` URL)."""
    with _shared_lock:
        database = _shared.get(location)
        if database is None:
            if postgres:  # the driver is imported only where PostgreSQL is configured
                from session_buddy.store.postgres import PostgresDatabase

                database = PostgresDatabase(location)
            else:
                database = SqliteDatabase(location)
            _shared[location] = database
        return database


def close_shared_databases() -> None:
    """Close and forget every shared database (tests, and processes switching databases)."""
    with _shared_lock:
        databases = list(_shared.values())
        _shared.clear()
    for database in databases:
        database.close()
