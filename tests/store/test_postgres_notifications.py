"""PostgreSQL pushes changes: a NOTIFY reaches a watcher at once, whenever it subscribed.

The listener waits for notifications in windows of ``LISTEN_POLL_SECONDS`` (checking its
connection between them); these tests stretch the window to 2.5 s, so anything delivered only
when a window ends would take seconds instead of milliseconds.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest

from session_buddy.auth.revocation import RevocationStore
from session_buddy.store import postgres
from session_buddy.store.postgres import PostgresDatabase

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
        store = RevocationStore(here)
        other = RevocationStore(elsewhere, push=False)
        other.revoke("jti-0", time.time() + 3600)
        deadline = time.monotonic() + 10
        while not store.is_revoked("jti-0"):  # listening, however long that took
            assert time.monotonic() < deadline
            time.sleep(0.01)
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
