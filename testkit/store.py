"""A session-buddy database by its location, for the contract suite and its child processes.

A location is what ``Database.location`` returns: a SQLite file path, or a
``postgresql://`` URL. :func:`database_at` builds a private, unopened
:class:`~session_buddy.store.Database` for it (not the process's shared one), so a test or
a racing process holds its own connections. :func:`table_names` and :func:`contents` read
the database with the driver alone — no schema check, no migration — so a test can look at
a database session-buddy refuses to open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from session_buddy.store import Database, SqliteDatabase, migrations

TABLES = migrations.TABLES
"""Every table of the schema at HEAD."""


def is_postgres_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def database_at(location: str) -> Database:
    """A new, unopened database object for ``location`` (call ``open()``)."""
    if is_postgres_url(location):
        from session_buddy.store.postgres import PostgresDatabase

        return PostgresDatabase(location)
    return SqliteDatabase(location)


def database_at_revision(location: str, revision: str) -> None:
    """Give the empty database at ``location`` the schema of an older ``revision``, as an
    older session-buddy left it (to test the upgrade from there)."""
    if is_postgres_url(location):
        migrations.upgrade(
            "postgresql+psycopg://", creator=lambda: psycopg.connect(location), revision=revision
        )
        return
    Path(location).parent.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(f"sqlite:///{quote(location)}", revision=revision)


def raw_execute(location: str, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
    """Run writes through the driver alone, in one transaction (``?`` placeholders)."""
    if is_postgres_url(location):
        with psycopg.connect(location, connect_timeout=5) as conn:
            for sql, params in statements:
                conn.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
        return
    with closing(sqlite3.connect(location)) as conn, conn:
        for sql, params in statements:
            conn.execute(sql, params)


def raw_query(location: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one read, through the driver only (SQLite: the file opened read-only)."""
    if is_postgres_url(location):
        with psycopg.connect(location, connect_timeout=5) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]
    with closing(sqlite3.connect(f"file:{location}?mode=ro", uri=True)) as conn:
        return [tuple(row) for row in conn.execute(sql).fetchall()]


def table_names(location: str) -> set[str]:
    """The tables the database holds (in PostgreSQL's ``public`` schema)."""
    if is_postgres_url(location):
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    return {str(row[0]) for row in raw_query(location, sql)}


def contents(location: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: two snapshots are equal when nothing changed."""
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for table in sorted(table_names(location)):
        rows = raw_query(location, f"SELECT * FROM {table}")  # noqa: S608 - from the catalog
        snapshot[table] = sorted(rows, key=repr)
    return snapshot
