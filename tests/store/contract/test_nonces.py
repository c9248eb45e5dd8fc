"""Envelope nonces, on both backends: the first sighting wins, everywhere, until it expires."""

from __future__ import annotations

import threading

import pytest

from session_buddy.store import Database
from session_buddy.store.nonces import PURGE_INTERVAL_SECONDS, NonceRepository
from testkit.concurrency import StartSignal, race_in_processes, run_in_threads
from testkit.store import database_at

RACERS = 4


@pytest.fixture
def nonces(database: Database) -> NonceRepository:
    return NonceRepository(database)


def stored(database: Database) -> dict[str, float]:
    return {str(k): float(e) for k, e in database.query("SELECT * FROM envelope_nonces")}


def test_the_first_sighting_of_a_nonce_is_accepted_and_a_second_is_not(
    nonces: NonceRepository,
) -> None:
    assert nonces.first_sighting("n:one", expires_at=500.0, now=100.0) is True
    assert nonces.first_sighting("n:one", expires_at=900.0, now=101.0) is False
    assert nonces.first_sighting("n:two", expires_at=500.0, now=102.0) is True


def test_another_repository_on_the_database_sees_the_nonce_as_taken(
    database: Database, nonces: NonceRepository
) -> None:
    """Another instance: its own repository object and its own connection."""
    nonces.first_sighting("n:one", expires_at=500.0, now=100.0)
    other = database_at(database.location).open()
    try:
        assert NonceRepository(other).first_sighting("n:one", 500.0, now=101.0) is False
    finally:
        other.close()


def test_an_expired_nonce_can_be_taken_again_until_its_new_expiry(
    database: Database, nonces: NonceRepository
) -> None:
    nonces.first_sighting("n:one", expires_at=200.0, now=100.0)

    assert nonces.first_sighting("n:one", expires_at=800.0, now=199.0) is False
    assert nonces.first_sighting("n:one", expires_at=800.0, now=200.0) is True
    assert nonces.first_sighting("n:one", expires_at=900.0, now=300.0) is False
    assert stored(database) == {"n:one": 800.0}


def test_purge_forgets_only_expired_nonces(database: Database, nonces: NonceRepository) -> None:
    nonces.first_sighting("n:expired", expires_at=150.0, now=100.0)
    nonces.first_sighting("n:edge", expires_at=200.0, now=100.0)
    nonces.first_sighting("n:live", expires_at=300.0, now=100.0)

    assert nonces.purge(200.0) == 2
    assert nonces.purge(200.0) == 0
    assert stored(database) == {"n:live": 300.0}


def test_sightings_purge_expired_nonces_once_per_interval(
    database: Database, nonces: NonceRepository
) -> None:
    nonces.first_sighting("n:short", expires_at=110.0, now=100.0)  # purges (nothing yet)
    nonces.first_sighting("n:a", expires_at=500.0, now=120.0)  # within the interval

    assert set(stored(database)) == {"n:short", "n:a"}

    nonces.first_sighting("n:b", expires_at=900.0, now=100.0 + PURGE_INTERVAL_SECONDS)

    assert set(stored(database)) == {"n:a", "n:b"}


def test_threads_racing_with_one_expired_nonce_retake_it_exactly_once(
    nonces: NonceRepository,
) -> None:
    nonces.first_sighting("n:old", expires_at=150.0, now=100.0)
    barrier = threading.Barrier(8)
    firsts: list[bool] = []

    def retake(n: int) -> None:
        barrier.wait(30)
        firsts.append(nonces.first_sighting("n:old", expires_at=900.0 + n, now=200.0))

    run_in_threads(retake, range(8))

    assert sorted(firsts) == [False] * 7 + [True]


def _sight(start: StartSignal, location: str) -> bool:
    """A racer: its own process and connection; an envelope replayed to every instance."""
    nonces = NonceRepository(database_at(location).open())
    start()
    return nonces.first_sighting("n:replayed", expires_at=500.0, now=100.0)


def test_processes_racing_with_one_envelope_accept_it_exactly_once(
    database: Database,
) -> None:
    outcomes = race_in_processes(_sight, [(database.location,)] * RACERS)

    assert [outcome.error for outcome in outcomes] == [None] * RACERS
    assert sorted(outcome.value for outcome in outcomes) == [False] * (RACERS - 1) + [True]
    assert stored(database) == {"n:replayed": 500.0}
