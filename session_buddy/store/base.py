"""The storage interface: what the repositories need from a database, for both backends.

A :class:`Database` is SQLite (:mod:`session_buddy.store.sqlite`, the embedded default) or
PostgreSQL (:mod:`session_buddy.store.postgres`, for several instances on several
machines). Repositories (sessions, revocations, envelope nonces, failure counters) write
their SQL once, with ``?`` placeholders, and read the few dialect differences from
:class:`Dialect`; every behaviour is proven on both backends by one contract suite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Row = Sequence[Any]
Params = Sequence[Any]


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL that differs between the backends."""

    name: Literal["sqlite", "postgresql"]
    greatest: str  # the two-argument maximum: MAX(a, b) / GREATEST(a, b)
    insertion_order: str  # a column that increases with every inserted session
    lock_row: str  # appended to a SELECT to lock the rows it reads until commit
    same: str  # equality that holds for two NULLs too: a IS b / a IS NOT DISTINCT FROM b
    # A statement taking a lock on one text key (a ``?``) until the transaction ends; empty
    # where write transactions are serialized anyway (SQLite's BEGIN IMMEDIATE).
    lock_key: str = ""


SQLITE = Dialect("sqlite", greatest="MAX", insertion_order="rowid", lock_row="", same="IS")
POSTGRESQL = Dialect(
    "postgresql",
    greatest="GREATEST",
    insertion_order="seq",
    lock_row=" FOR UPDATE",
    same="IS NOT DISTINCT FROM",
    lock_key="SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
)


def where_clause(*conditions: tuple[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """``WHERE a = ? AND …`` of the conditions whose value is not None (each condition one
    ``?``), and their values in order; ``""`` and ``()`` when none applies."""
    kept = [(condition, value) for condition, value in conditions if value is not None]
    if not kept:
        return "", ()
    return "WHERE " + " AND ".join(c for c, _ in kept), tuple(v for _, v in kept)


class Cursor(Protocol):
    """The part of a DB-API cursor the repositories use."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """A connection inside a transaction; SQL uses ``?`` placeholders on both backends."""

    def execute(self, sql: str, params: Params = ..., /) -> Cursor: ...

    def executemany(self, sql: str, params: Iterable[Params], /) -> Cursor: ...


class Watch(Protocol):
    """A subscription to change notifications pushed by the database (PostgreSQL)."""

    @property
    def healthy(self) -> bool:
        """True while notifications are known to arrive (connected and caught up)."""
        ...

    @property
    def confirmed_at(self) -> float:
        """``time.monotonic()`` when the connection last proved alive with every change
        notified before delivered (0: never); kept while the connection is lost."""
        ...


class Database(Protocol):
    """One database, shared by every repository of a process."""

    dialect: Dialect

    @property
    def location(self) -> str:
        """What the database is, for caches (may hold a password: never show it)."""
        ...

    @property
    def display(self) -> str:
        """What the database is, for messages: a file path or ``host:port/db``."""
        ...

    @property
    def superuser(self) -> bool | None:
        """Whether it is used with a database superuser's rights (None: not known yet, or
        the notion does not apply)."""
        ...

    def open(self) -> Database:
        """Connect, migrate to the current schema and check it; :class:`StorageError`
        with a precise message when the database cannot be used."""
        ...

    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction: all of it commits, or none of it."""
        ...

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """Run one read outside any explicit transaction."""
        ...

    def ping(self, timeout: float) -> None:
        """Check that the database answers, waiting at most ``timeout`` seconds for a
        connection (a query may wait longer); :class:`StorageError` when it does not."""
        ...

    def notify(self, conn: Connection, channel: str) -> None:
        """Tell every other process watching ``channel`` that it changed, when the
        transaction ``conn`` belongs to commits (a no-op where nothing is pushed)."""
        ...

    def watch(self, channel: str, on_change: Callable[[], None]) -> Watch | None:
        """Call ``on_change`` (from another thread) after another process notifies
        ``channel``, and after a reconnect (something may have been missed); None when
        this backend pushes nothing and readers must poll."""
        ...

    def close(self) -> None:
        """Release every connection (and stop any watcher)."""
        ...
