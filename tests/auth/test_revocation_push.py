"""Revocations while PostgreSQL's push is down: polling keeps them flowing, and the
listener re-reads what it missed when it reconnects. (That a NOTIFY arrives at once is
tests/store/test_postgres_notifications.)

Two "instances" in one test process: each a :class:`PostgresDatabase` of its own (its own
pool and listener). The revoking one is the superuser, whom a revoked CONNECT does not
stop, so a test can keep the listener of the other from reconnecting while the database
itself stays up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from session_buddy.auth.revocation import RevocationStore
from session_buddy.store.base import Watch
from session_buddy.store.postgres import LISTENER_NAME, PostgresDatabase
from session_buddy.store.revocations import RevocationRepository
from testkit.clock import seconds_until
from testkit.pytest_postgres import PostgresDatabase as PgFixture

NEVER_POLL = 3600.0  # a sync interval no test waits for: only the push can bring news


@pytest.fixture
def revoker(
    postgres_database: PgFixture, open_databases: Callable[[str], PostgresDatabase]
) -> RevocationRepository:
    """Another instance (as the superuser) recording revocations in the same database,
    whose schema the database's own role created (and so owns)."""
    open_databases(postgres_database.url)
    superuser = postgres_database.server.url(dbname=postgres_database.dbname)
    return RevocationRepository(open_databases(superuser))


def store_on(
    pg: PgFixture, open_databases: Callable[[str], PostgresDatabase], sync_interval: float
) -> RevocationStore:
    """An instance's revocation store, once its listener is up."""
    store = RevocationStore(open_databases(pg.url), sync_interval=sync_interval)
    seconds_until(lambda: watch_of(store).healthy, 5.0, what="the listener to connect")
    return store


def watch_of(store: RevocationStore) -> Watch:
    watch = store._watch  # the push channel; None would mean no push at all
    assert watch is not None
    return watch


def test_while_the_listener_is_down_polling_keeps_revocations_flowing(
    postgres_database: PgFixture,
    open_databases: Callable[[str], PostgresDatabase],
    revoker: RevocationRepository,
) -> None:
    pg = postgres_database
    store = store_on(pg, open_databases, sync_interval=0.2)
    pg.forbid_connect()  # the listener cannot come back; the pool keeps its connection
    try:
        assert pg.terminate(LISTENER_NAME)
        seconds_until(lambda: not watch_of(store).healthy, 5.0, what="the listener to notice")

        revoker.record("jti:polled", expires_at=time.time() + 600, now=time.time())
        seconds_until(lambda: store.is_revoked("jti:polled"), 2.0, what="the poller")

        assert not watch_of(store).healthy  # still no push: it was polling
    finally:
        pg.allow_connect()


def test_a_revocation_missed_while_the_listener_was_down_is_read_on_reconnect(
    postgres_database: PgFixture,
    open_databases: Callable[[str], PostgresDatabase],
    revoker: RevocationRepository,
) -> None:
    pg = postgres_database
    store = store_on(pg, open_databases, sync_interval=NEVER_POLL)
    pg.forbid_connect()
    try:
        assert pg.terminate(LISTENER_NAME)
        seconds_until(lambda: not watch_of(store).healthy, 5.0, what="the listener to notice")
        revoker.record("jti:missed", expires_at=time.time() + 600, now=time.time())
        time.sleep(0.6)  # longer than the listener's reconnect delay: it tried and failed

        assert not store.is_revoked("jti:missed")  # its NOTIFY went to nobody
    finally:
        pg.allow_connect()

    seconds_until(lambda: store.is_revoked("jti:missed"), 3.0, what="the reconnect to re-read")
    assert watch_of(store).healthy
