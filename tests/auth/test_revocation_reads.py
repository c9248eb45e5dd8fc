"""A check that finds the revocation set stale while the log is being re-read waits for
that read (or uses a view that is still fresh) — it is never refused for the read itself.

The read of the log (``RevocationRepository.since``) is held on an event, so what each
check sees is decided by the test, not by timing: the clock is injected and the checks run
in threads that the test releases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from session_buddy.auth.errors import RevocationUnavailableError
from session_buddy.auth.revocation import MAX_STALE_SECONDS, RevocationStore
from session_buddy.store import SqliteDatabase, StorageError
from session_buddy.store.postgres import PostgresDatabase
from session_buddy.store.revocations import RevocationRepository
from testkit.clock import seconds_until
from testkit.pytest_postgres import PostgresDatabase as PgFixture

NEVER_POLL = 3600.0  # a sync interval no test waits for: only the push brings news
WAIT = 10.0  # how long the test waits for a thread to get somewhere (never reached)


class HeldReads:
    """Holds every read of the revocation log until :meth:`release`; ``failing`` makes a
    read raise the database error instead."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()
        self.failing = False
        since = RevocationRepository.since

        def held(repository: RevocationRepository, seq: int) -> Any:
            if self.failing:
                raise StorageError("database r.db: disk I/O error", kind="failed")
            self.entered.set()
            assert self.released.wait(WAIT), "the test never released the read"
            return since(repository, seq)

        monkeypatch.setattr(RevocationRepository, "since", held)

    def release(self) -> None:
        self.released.set()


class Check(threading.Thread):
    """``store.is_revoked(key)`` in a thread of its own: its answer, or what it raised."""

    def __init__(self, store: RevocationStore, key: str) -> None:
        super().__init__(daemon=True)
        self._store = store
        self._key = key
        self.answer: bool | None = None
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        try:
            self.answer = self._store.is_revoked(self._key)
        except Exception as exc:
            self.error = exc

    def outcome(self) -> bool | Exception | None:
        self.join(WAIT)
        return self.error if self.error is not None else self.answer


@pytest.fixture
def idle_store(tmp_path: Path) -> Iterator[tuple[RevocationStore, list[float]]]:
    """A polling store on a real SQLite file, and its clock (``monotonic``, moved by hand)."""
    database = SqliteDatabase(tmp_path / "r.db")
    tick = [0.0]
    store = RevocationStore(database, monotonic=lambda: tick[0])
    yield store, tick
    database.close()


def test_checks_arriving_while_an_idle_store_rereads_the_log_wait_for_it(
    idle_store: tuple[RevocationStore, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, tick = idle_store
    reads = HeldReads(monkeypatch)
    tick[0] += MAX_STALE_SECONDS + 1  # a pause: nothing read the log, the set is stale

    first = Check(store, "jti:first")  # re-reads the log, and is held there
    assert reads.entered.wait(WAIT)
    second = Check(store, "jti:second")  # arrives meanwhile
    seconds_until(lambda: not second.is_alive() or store.waiting == 1, WAIT)
    reads.release()

    assert second.outcome() is False  # it waited for the read; it was not refused
    assert first.outcome() is False


def test_a_check_is_refused_at_once_while_reads_fail_even_with_one_under_way(
    idle_store: tuple[RevocationStore, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that fails must not hold every request for a read that will fail too."""
    store, tick = idle_store
    reads = HeldReads(monkeypatch)
    reads.failing = True
    tick[0] += MAX_STALE_SECONDS + 1
    with pytest.raises(RevocationUnavailableError) as refused:
        store.is_revoked("jti:first")
    assert refused.value.storage is not None
    assert str(refused.value.storage) == "database r.db: disk I/O error"

    reads.failing = False
    tick[0] += 1.0  # the next read is due
    retry = Check(store, "jti:retry")  # held in its read
    assert reads.entered.wait(WAIT)
    meanwhile = Check(store, "jti:meanwhile")
    seconds_until(lambda: not meanwhile.is_alive() or store.waiting == 1, WAIT)
    assert not meanwhile.is_alive()  # refused without waiting for the read
    assert isinstance(meanwhile.outcome(), RevocationUnavailableError)
    reads.release()
    assert retry.outcome() is False  # the database answered again: fresh
    assert store.is_revoked("jti:after") is False


def test_a_read_that_hangs_holds_checks_for_a_bounded_time(
    idle_store: tuple[RevocationStore, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check waits only until the read under way is ``READ_WAIT_SECONDS`` old (made 0
    here): a database that stopped answering fails checks closed instead of piling them up."""
    monkeypatch.setattr("session_buddy.auth.revocation.READ_WAIT_SECONDS", 0.0)
    store, tick = idle_store
    reads = HeldReads(monkeypatch)
    tick[0] += MAX_STALE_SECONDS + 1
    hung = Check(store, "jti:hung")
    assert reads.entered.wait(WAIT)

    with pytest.raises(RevocationUnavailableError) as refused:
        store.is_revoked("jti:meanwhile")
    assert refused.value.storage is not None
    assert "revocations not read for 6 s" in str(refused.value.storage)
    reads.release()
    assert hung.outcome() is False


def test_checks_during_a_notified_reread_use_what_the_listener_vouched_for(
    postgres_database: PgFixture,
    open_databases: Callable[[str], PostgresDatabase],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL the log is read only when notified: after a quiet spell the last read
    is old, yet the listener vouched for the set a moment ago. While a notification's read
    is under way the set is as current as it was when the notification came."""
    offset = [-2 * MAX_STALE_SECONDS]  # the store's reads happen 10 s in the past
    store = RevocationStore(
        open_databases(postgres_database.url),
        sync_interval=NEVER_POLL,
        monotonic=lambda: time.monotonic() + offset[0],
    )
    watch = store._watch
    assert watch is not None
    seconds_until(lambda: watch.healthy, WAIT, what="the listener to connect and read")
    offset[0] = 0.0  # ... so the last read of the log is 10 s old; the listener's word is new
    assert store.is_revoked("jti:quiet") is False

    reads = HeldReads(monkeypatch)
    other = RevocationRepository(open_databases(postgres_database.url))
    other.record("jti:pushed", time.time() + 600, time.time())  # NOTIFY: the listener reads
    assert reads.entered.wait(WAIT)

    assert store.is_revoked("jti:meanwhile") is False  # not refused while it reads
    reads.release()
    seconds_until(lambda: store.is_revoked("jti:pushed"), WAIT, what="the notified read")
    store.close()
