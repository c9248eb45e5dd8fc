"""The PostgreSQL backend: one database shared by several instances on several machines.

Connections come from a ``psycopg_pool`` pool (checked on checkout, so a connection broken
by a restart of the server is replaced, not used; see :func:`check_idle_connection`). SQL
keeps the repositories' ``?`` placeholders; they become psycopg's ``%s`` here.
:meth:`PostgresDatabase.watch` runs one listener thread per process (``LISTEN`` on its own
connection) that calls back on every ``NOTIFY`` and after every reconnect, so a revocation
reaches every instance at once and one missed while disconnected is re-read.

Failures become :class:`StorageError` naming ``host:port/db`` — never the password — with
a kind per cause: unreachable, wrong password, missing database, permission denied.
"""

# SQL here is assembled only from constants and dialect keywords; every value is bound.
# ruff: noqa: S608

from __future__ import annotations

import functools
import logging
import select
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
import psycopg_pool

from session_buddy.store import migrations
from session_buddy.store.base import POSTGRESQL, Connection, Cursor, Params, Row, Watch
from session_buddy.store.errors import StorageError, StorageProblem
from session_buddy.store.urls import check_url, describe_url

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 3
POOL_TIMEOUT_SECONDS = 3.0
POOL_MAX_SIZE = 16
LISTEN_POLL_SECONDS = 0.5  # how often the listener also checks its connection is alive
RECONNECT_DELAY_SECONDS = 0.5
RECONNECT_GIVE_UP_SECONDS = 2.0
# The listener's application_name: an operator finds (or ends) it in pg_stat_activity.
LISTENER_NAME = "session-buddy listener"


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """Our ``?`` placeholders as psycopg's ``%s`` (no SQL of ours contains ``?`` or ``%``)."""
    return sql.replace("?", "%s")


SSL_REFUSED_FIX = (
    "turn SSL on in the server (ssl = on in postgresql.conf, with its certificate and key), "
    "or — only on a network you trust — connect without it: sslmode=prefer (or disable) in "
    "the URL"
)


def _classify(message: str) -> tuple[StorageProblem, str, str]:
    """(kind, what, fix) for libpq's text: connection errors carry no SQLSTATE."""
    if "server does not support SSL" in message:
        return ("ssl", "the server does not accept SSL connections", SSL_REFUSED_FIX)
    if "certificate verify failed" in message or "root certificate file" in message:
        return (
            "ssl",
            "the server's certificate could not be verified",
            "name the CA that signed it with sslrootcert=/path/to/ca.crt in the URL (or use "
            "sslmode=require, which encrypts without verifying)",
        )
    if "no pg_hba.conf entry" in message:
        unencrypted = "no encryption" in message or "SSL off" in message
        return (
            "not_allowed",
            "the server's pg_hba.conf has no entry for this address, user and database",
            "add sslmode=require to the URL if the server accepts only SSL connections, or "
            "add a host line for this user and database to pg_hba.conf"
            if unencrypted
            else "add a hostssl (or host) line for this user and database to pg_hba.conf",
        )
    if "password authentication failed" in message or "no password supplied" in message:
        return (
            "auth_failed",
            "the password was refused",
            "check the user and password in SESSION_BUDDY_DATABASE_URL",
        )
    if "does not exist" in message and "database" in message:
        return (
            "no_database",
            "the database does not exist",
            "create it (createdb -O <user> <dbname>) or fix the name in the URL",
        )
    if "permission denied" in message:
        return (
            "permission_denied",
            "permission denied",
            "GRANT CONNECT (and CREATE on the schema) to the user in the URL",
        )
    return (
        "unreachable",
        "cannot connect",
        "check that PostgreSQL is running and reachable at that address",
    )


def _first_line(message: str) -> str:
    """libpq's message without its line breaks, hints and "FATAL:" prefix."""
    text = message.split("\n", 1)[0] if "FATAL:" not in message else message
    if "FATAL:" in text:
        text = text.split("FATAL:", 1)[1]
    text = text.split("DETAIL:", 1)[0].split("HINT:", 1)[0]
    return " ".join(text.split())[:200]


def check_idle_connection(conn: psycopg.Connection[Any]) -> None:
    """The pool's check on checkout: raise if ``conn`` is broken, without a round trip
    when its socket shows it is not.

    An idle connection in the pool has nothing to read. When the server ends it (a
    restart, a crash, ``pg_terminate_backend``) the socket becomes readable — an error
    message or end of file — and only then is the full check run (a round trip, which
    raises, so the pool replaces the connection). The pool's own check makes that round
    trip on every checkout, which on a fast local database doubled the round trips of
    every query.
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        psycopg_pool.ConnectionPool.check_connection(conn)


class PostgresDatabase:
    """One PostgreSQL database, through a connection pool opened by :meth:`open`."""

    dialect = POSTGRESQL

    def __init__(
        self,
        url: str,
        *,
        pool_timeout: float = POOL_TIMEOUT_SECONDS,
        max_size: int = POOL_MAX_SIZE,
    ) -> None:
        check_url(url)
        self._url = url
        self._where = describe_url(url)
        self._pool_timeout = pool_timeout
        self._max_size = max_size
        self._pool: psycopg_pool.ConnectionPool | None = None
        self._lock = threading.Lock()
        self._listener: _Listener | None = None
        self._superuser: bool | None = None

    @property
    def location(self) -> str:
        return self._url

    @property
    def display(self) -> str:
        return self._where

    @property
    def superuser(self) -> bool | None:
        """Whether the URL's user is a PostgreSQL superuser (known once :meth:`open` has
        connected; None before). The server reports it at connect, so it costs nothing."""
        return self._superuser

    def __repr__(self) -> str:
        return f"PostgresDatabase({self._where!r})"

    # -- connecting ---------------------------------------------------------------------

    def connect(self, **options: Any) -> psycopg.Connection[Any]:
        """A new connection of its own (not from the pool), or :class:`StorageError`."""
        try:
            return psycopg.connect(self._url, connect_timeout=CONNECT_TIMEOUT_SECONDS, **options)
        except psycopg.Error as exc:
            raise self._error(exc) from None

    def open(self) -> PostgresDatabase:
        """Connect (a precise error if that fails), migrate, and start the pool."""
        with self._lock:
            if self._pool is not None:
                return self
            first = self.connect(autocommit=True)
            self._superuser = first.info.parameter_status("is_superuser") == "on"
            try:
                self._migrate(first)
            finally:
                first.close()
            pool = psycopg_pool.ConnectionPool(
                self._url,
                min_size=1,
                max_size=self._max_size,
                timeout=self._pool_timeout,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
                check=check_idle_connection,
                # Give up a background reconnection quickly: the next request starts a
                # fresh one at once, so a database that comes back is used within a
                # moment instead of after an ever longer backoff.
                reconnect_timeout=RECONNECT_GIVE_UP_SECONDS,
                open=False,
                name="session-buddy",
            )
            pool.open(wait=False)
            self._pool = pool
        return self

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        try:
            row = conn.execute(f"SELECT version_num FROM {migrations.VERSION_TABLE}").fetchone()
            revision = None if row is None else str(row[0])
        except psycopg.errors.UndefinedTable:
            revision = None
        except psycopg.Error as exc:
            raise self._error(exc) from None
        if not migrations.needs_upgrade(revision, self._where):
            return
        try:
            migrations.upgrade("postgresql+psycopg://", creator=self.connect)
        except StorageError:
            raise
        except Exception as exc:  # SQLAlchemy wraps the driver's error
            cause = getattr(exc, "orig", exc)
            if isinstance(cause, psycopg.errors.InsufficientPrivilege):
                raise StorageError(
                    f"PostgreSQL at {self._where}: permission denied creating the schema "
                    f"({_first_line(str(cause))})",
                    kind="permission_denied",
                    fix="GRANT CREATE ON SCHEMA public (or make the URL's user own the "
                    "database) so session-buddy can create its tables",
                ) from None
            if isinstance(cause, psycopg.Error):
                raise self._error(cause) from None
            raise

    def _connection(self) -> Any:
        if self._pool is None:
            self.open()
        assert self._pool is not None
        return self._pool.connection(timeout=self._pool_timeout)

    # -- using ----------------------------------------------------------------------------

    @contextmanager
    def _storage_errors(self, waited: float | None = None) -> Iterator[None]:
        """The driver's and the pool's errors as :class:`StorageError` (``waited``: how
        long the pool was asked to wait for a connection, if not its own timeout)."""
        try:
            yield
        except psycopg_pool.PoolTimeout:  # a psycopg.Error too: caught first
            raise self._unavailable(waited or self._pool_timeout) from None
        except psycopg.Error as exc:
            raise self._error(exc) from None
        except UnicodeEncodeError as exc:  # a lone surrogate: no encoding takes it
            raise StorageError(
                f"PostgreSQL at {self._where} cannot store a value: {exc}", kind="bad_value"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._storage_errors(), self._connection() as conn, conn.transaction():
            yield _Placeholders(conn)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        with self._storage_errors(), self._connection() as conn:
            rows: list[Row] = conn.execute(_pg(sql), params).fetchall()
            return rows

    def ping(self, timeout: float) -> None:
        """``SELECT 1`` on a pooled connection, waiting at most ``timeout`` for one: while
        the server is down the pool has none, and a query would wait the pool timeout."""
        if self._pool is None:
            self.open()
        assert self._pool is not None
        with self._storage_errors(timeout), self._pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")

    def notify(self, conn: Connection, channel: str) -> None:
        conn.execute("SELECT pg_notify(?, '')", (channel,))

    def watch(self, channel: str, on_change: Callable[[], None]) -> Watch:
        with self._lock:
            listener = self._listener
            if listener is None:
                listener = self._listener = _Listener(self)
                listener.add(channel, on_change)  # before it connects: told on connect
                listener.start()
                return listener
        listener.add(channel, on_change)
        return listener

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        if pool is not None:
            pool.close(timeout=1.0)

    # -- errors ---------------------------------------------------------------------------

    def storage_error(self, exc: psycopg.Error) -> StorageError:
        """The driver's ``exc`` as the :class:`StorageError` this database raises for it
        (for callers that use a connection of their own, from :meth:`connect`)."""
        return self._error(exc)

    def _error(self, exc: psycopg.Error) -> StorageError:
        if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
            kind, what, fix = _classify(str(exc))
            return StorageError(
                f"PostgreSQL at {self._where}: {what} ({_first_line(str(exc))})",
                kind=kind,
                fix=fix,
            )
        if isinstance(exc, psycopg.IntegrityError):
            return StorageError(
                f"PostgreSQL at {self._where}: {_first_line(str(exc))}", kind="constraint"
            )
        if isinstance(exc, psycopg.DataError):  # a NUL in text, an invalid byte sequence, …
            return StorageError(
                f"PostgreSQL at {self._where} cannot store a value: {_first_line(str(exc))}",
                kind="bad_value",
            )
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return StorageError(
                f"PostgreSQL at {self._where}: permission denied ({_first_line(str(exc))})",
                kind="permission_denied",
                fix="GRANT the URL's user the privileges on session-buddy's tables",
            )
        return StorageError(f"PostgreSQL at {self._where}: {_first_line(str(exc))}")

    def _unavailable(self, waited: float) -> StorageError:
        return StorageError(
            f"PostgreSQL at {self._where}: no connection within {waited:g} s "
            "(is the server down or unreachable?)",
            kind="unreachable",
            fix="check that PostgreSQL is running and reachable at that address",
        )


class _Placeholders:
    """A psycopg connection that takes ``?`` placeholders."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = (), /) -> Cursor:
        return self._conn.execute(_pg(sql), params)

    def executemany(self, sql: str, params: Iterable[Params], /) -> Cursor:
        cursor = self._conn.cursor()
        cursor.executemany(_pg(sql), params)
        return cursor


class _Listener:
    """``LISTEN`` on a dedicated connection in a daemon thread; reconnects forever.

    ``healthy`` is true while the connection is up and was confirmed alive within the
    last ``3 × LISTEN_POLL_SECONDS``; every (re)connect calls every callback once, and so
    does subscribing a channel added later, so a subscriber re-reads whatever it may have
    missed. A notification is delivered as soon as it arrives; the wait for the next one
    ends every ``LISTEN_POLL_SECONDS`` to check the connection and subscribe new channels.
    """

    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database
        self._callbacks: dict[str, list[Callable[[], None]]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="session-buddy-listen", daemon=True)
        self._alive_at = 0.0
        self._connected = False
        self._conn: psycopg.Connection[Any] | None = None
        self._subscribed: set[str] = set()

    @property
    def healthy(self) -> bool:
        return self._connected and time.monotonic() - self._alive_at < 3 * LISTEN_POLL_SECONDS

    @property
    def confirmed_at(self) -> float:
        """When the connection last proved alive, everything notified before delivered;
        kept while disconnected, so a subscriber can tell how stale it may be."""
        return self._alive_at

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        conn = self._conn
        if conn is not None:
            with suppress(Exception):
                conn.cancel_safe(timeout=1.0)
        self._thread.join(timeout=3.0)

    def add(self, channel: str, callback: Callable[[], None]) -> None:
        with self._lock:
            self._callbacks.setdefault(channel, []).append(callback)

    def _channels(self) -> dict[str, list[Callable[[], None]]]:
        with self._lock:
            return {channel: list(callbacks) for channel, callbacks in self._callbacks.items()}

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except (psycopg.Error, StorageError) as exc:
                if self._connected:
                    logger.warning(
                        "change notifications from %s lost: %s", self._database.display, exc
                    )
            finally:
                self._connected = False
                conn, self._conn = self._conn, None
                if conn is not None:
                    with suppress(Exception):
                        conn.close()
            self._stopping.wait(RECONNECT_DELAY_SECONDS)

    def _listen(self) -> None:
        conn = self._database.connect(autocommit=True, application_name=LISTENER_NAME)
        self._conn = conn
        self._subscribed = set()
        reconnected = True
        while not self._stopping.is_set():
            channels = self._channels()
            new = channels.keys() - self._subscribed
            for channel in new:
                conn.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel)))
                self._subscribed.add(channel)
            conn.execute("SELECT 1")
            alive_at = time.monotonic()
            if reconnected:
                # Up and listening: what happened before is read by the callbacks now.
                self._deliver(list(channels))
                self._connected = True
                reconnected = False
                logger.info("listening for changes on %s", self._database.display)
            elif new:
                self._deliver(new)
            self._alive_at = alive_at
            # stop_after=1: return with the first notification (and any that came with it)
            # instead of collecting until the window ends.
            notifies = conn.notifies(timeout=LISTEN_POLL_SECONDS, stop_after=1)
            changed = {n.channel for n in notifies}
            if changed:
                self._deliver(changed)

    def _deliver(self, channels: Iterable[str]) -> None:
        callbacks = self._channels()
        for channel in channels:
            for callback in callbacks.get(channel, []):
                try:
                    callback()
                except Exception:  # a subscriber's failure must not stop the listener
                    logger.exception("change callback for %s failed", channel)
