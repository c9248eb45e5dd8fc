"""PostgreSQL pushes changes: a NOTIFY reaches a watcher at once, whenever it subscribed, and
what was pushed stays trusted for a while after the connection is lost.

The listener waits for notifications in windows of ``LISTEN_POLL_SECONDS`` (checking its
connection between them); these tests stretch the window to 2.5 s, so anything delivered only
when a window ends would take seconds instead of milliseconds.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest

from session_buddy.auth.errors import RevocationUnavailableError
from session_buddy.auth.revocation import MAX_STALE_SECONDS, RevocationStore
from session_buddy.store import StorageError, postgres
from session_buddy.store.postgres import PostgresDatabase
from session_buddy.store.revocations import RevocationRepository
from testkit.clock import seconds_until
from testkit.pytest_postgres import PostgresDatabase as KitDatabase

LONG_WINDOW = 2.5
AT_ONCE = 0.75  # far below LONG_WINDOW, far above a loaded machine's scheduling delays


@pytest.fixture
def long_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "LISTEN_POLL_SECONDS", LONG_WINDOW)


@pytest.fixture
def database(postgres_url: str, long_window: None) -> Iterator[PostgresDatabase]:
    db = PostgresDatabase(postgres_url).open()
    yield db
    db.close()


def notify(database: PostgresDatabase, channel: str) -> float:
    with database.transaction() as conn:
        database.notify(conn, channel)
    return time.monotonic()


def watched(database: PostgresDatabase, channel: str) -> queue.Queue[float]:
    calls: queue.Queue[float] = queue.Queue()
    database.watch(channel, lambda: calls.put(time.monotonic()))
    return calls


def test_a_notification_reaches_the_watcher_at_once_not_when_the_listen_window_ends(
    database: PostgresDatabase,
) -> None:
    calls = watched(database, "sb_test_changes")
    calls.get(timeout=10)  # told once when listening starts: re-read what you missed

    for _ in range(3):
        sent = notify(database, "sb_test_changes")
        assert calls.get(timeout=2 * LONG_WINDOW) - sent < AT_ONCE


def test_a_channel_watched_after_the_listener_started_is_told_when_it_is_subscribed(
    database: PostgresDatabase,
) -> None:
    first = watched(database, "sb_test_first")
    first.get(timeout=10)
    notify(database, "sb_test_first")
    first.get(timeout=2 * LONG_WINDOW)  # the listener is inside a window now

    later = watched(database, "sb_test_later")

    later.get(timeout=2 * LONG_WINDOW)  # subscribed: re-read what you missed
    sent = notify(database, "sb_test_later")
    assert later.get(timeout=2 * LONG_WINDOW) - sent < AT_ONCE


def test_a_revocation_by_another_process_is_honoured_at_once(
    postgres_url: str, long_window: None
) -> None:
    here, elsewhere = PostgresDatabase(postgres_url).open(), PostgresDatabase(postgres_url).open()
    try:
        store = RevocationStore(here).open()
        other = RevocationStore(elsewhere, push=False).open()
        other.revoke("jti-0", time.time() + 3600)
        seconds_until(lambda: store.is_revoked("jti-0"), 10)  # listening, however long that took
        time.sleep(0.2)  # inside a listen window

        other.revoke("jti-1", time.time() + 3600)
        revoked_at = time.monotonic()
        while not store.is_revoked("jti-1"):
            assert time.monotonic() - revoked_at < AT_ONCE, "revocation not pushed at once"
            time.sleep(0.005)
        store.close()
    finally:
        here.close()
        elsewhere.close()


def test_revocations_stay_trusted_for_5_s_after_the_push_connection_is_lost(
    postgres_database: KitDatabase,
) -> None:
    """The set was current when the listener last proved alive, however long ago the last
    revocation was read; it fails closed 5 s after that moment, not at once."""
    offset = [-2 * MAX_STALE_SECONDS]  # as if the last read of the log were 10 s old
    database = PostgresDatabase(postgres_database.url).open()
    try:
        store = RevocationStore(database, monotonic=lambda: time.monotonic() + offset[0]).open()
        store.revoke("jti-1", time.time() + 3600)
        time.sleep(0.5)  # the listener connects, reads the log (10 s ago), proves alive
        offset[0] = 0.0

        postgres_database.server.stop()
        time.sleep(1.0)  # the listener has noticed

        assert store.is_revoked("jti-1")
        assert not store.is_revoked("jti-2")
        offset[0] = MAX_STALE_SECONDS + 1
        with pytest.raises(RevocationUnavailableError):
            store.is_revoked("jti-2")
        store.close()
    finally:
        database.close()


def test_a_revocation_whose_read_failed_is_read_again_while_the_listener_stays_healthy(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notification arrived but reading the log failed: the revocation is not lost until the
    next notification; it is read as soon as the database answers again."""
    here, elsewhere = PostgresDatabase(postgres_url).open(), PostgresDatabase(postgres_url).open()
    try:
        store = RevocationStore(here).open()
        other = RevocationStore(elsewhere, push=False).open()
        other.revoke("jti-0", time.time() + 3600)
        seconds_until(lambda: store.is_revoked("jti-0"), 10)  # listening

        reads_fail = [True]
        since = RevocationRepository.since

        def flaky_since(repository: RevocationRepository, seq: int) -> Any:
            if reads_fail[0]:
                raise StorageError("PostgreSQL at somewhere: no connection within 3 s")
            return since(repository, seq)

        monkeypatch.setattr(RevocationRepository, "since", flaky_since)
        other.revoke("jti-1", time.time() + 3600)
        time.sleep(0.5)  # notified; the read failed
        assert not store.is_revoked("jti-1")

        reads_fail[0] = False
        answered = time.monotonic()
        while not store.is_revoked("jti-1"):
            assert time.monotonic() - answered < 2.0, "a notified revocation was lost"
            time.sleep(0.01)
        store.close()
    finally:
        here.close()
        elsewhere.close()
