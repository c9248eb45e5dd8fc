"""Revoked tokens, on both backends: one first writer, a feed other processes follow, purge."""

from __future__ import annotations

import threading

import pytest

from session_buddy.store import Database
from session_buddy.store.revocations import Revocation, RevocationRepository
from testkit.concurrency import StartSignal, race_in_processes, run_in_threads
from testkit.store import database_at

RACERS = 4


@pytest.fixture
def repo(database: Database) -> RevocationRepository:
    return RevocationRepository(database)


def test_the_first_record_of_a_token_revokes_it_and_later_ones_do_not(
    repo: RevocationRepository,
) -> None:
    assert repo.record("jti:a", expires_at=500.0, now=100.0) is True
    assert repo.record("jti:a", expires_at=500.0, now=101.0) is False
    assert repo.record("jti:b", expires_at=500.0, now=102.0) is True

    assert repo.in_force(0.0) == {"jti:a": 500.0, "jti:b": 500.0}


def test_a_token_recorded_again_keeps_the_latest_expiry_and_when_it_was_first_revoked(
    repo: RevocationRepository,
) -> None:
    repo.record("jti:a", expires_at=500.0, now=100.0)

    repo.record("jti:a", expires_at=900.0, now=101.0)
    repo.record("jti:a", expires_at=300.0, now=102.0)

    assert repo.in_force(0.0) == {"jti:a": 900.0}
    assert repo.since(0)[0][-1] == Revocation("jti:a", 900.0, revoked_at=100.0)


def test_in_force_and_count_see_only_tokens_expiring_after_the_cutoff(
    repo: RevocationRepository,
) -> None:
    for key, expires_at in [("jti:old", 100.0), ("jti:edge", 200.0), ("jti:new", 300.0)]:
        repo.record(key, expires_at=expires_at, now=50.0)

    assert repo.in_force(200.0) == {"jti:new": 300.0}
    assert repo.count(200.0) == 1
    assert repo.count(99.0) == 3
    assert repo.in_force(300.0) == {}


def test_the_feed_gives_every_revocation_after_a_position_and_the_position_it_reached(
    repo: RevocationRepository,
) -> None:
    assert repo.log_position() == 0
    assert repo.since(0) == ([], 0)
    repo.record("jti:a", expires_at=500.0, now=100.0)
    repo.record("jti:b", expires_at=600.0, now=100.0)

    first, position = repo.since(0)
    assert position == repo.log_position() > 0
    repo.record("jti:c", expires_at=700.0, now=110.0)
    later, later_position = repo.since(position)

    assert first == [Revocation("jti:a", 500.0, 100.0), Revocation("jti:b", 600.0, 100.0)]
    # At least once: everything after the position, possibly earlier ones again (PostgreSQL
    # also looks back in time, as sequence numbers may commit out of order there).
    assert Revocation("jti:c", 700.0, 110.0) in later
    assert set(later) <= {*first, Revocation("jti:c", 700.0, 110.0)}
    assert later_position == repo.log_position() > position


def test_purge_forgets_expired_revocations_and_their_feed_entries(
    repo: RevocationRepository,
) -> None:
    repo.record("jti:expired", expires_at=100.0, now=50.0)
    repo.record("jti:edge", expires_at=200.0, now=50.0)
    repo.record("jti:live", expires_at=300.0, now=50.0)

    assert repo.purge(200.0) == 2
    assert repo.purge(200.0) == 0

    assert repo.in_force(0.0) == {"jti:live": 300.0}
    assert [r.token_key for r in repo.since(0)[0]] == ["jti:live"]
    assert repo.count(0.0) == 1


def test_a_purged_token_can_be_revoked_again_as_a_first(repo: RevocationRepository) -> None:
    repo.record("jti:a", expires_at=100.0, now=50.0)
    repo.purge(200.0)

    assert repo.record("jti:a", expires_at=900.0, now=250.0) is True


def test_threads_racing_to_revoke_one_token_have_exactly_one_winner(
    repo: RevocationRepository,
) -> None:
    barrier = threading.Barrier(8)
    firsts: list[bool] = []

    def revoke(n: int) -> None:
        barrier.wait(30)
        firsts.append(repo.record("jti:raced", expires_at=500.0 + n, now=100.0))

    run_in_threads(revoke, range(8))

    assert sorted(firsts) == [False] * 7 + [True]
    assert repo.in_force(0.0) == {"jti:raced": 507.0}


def _refresh(start: StartSignal, location: str) -> bool:
    """A racer: its own process and connection; the refresh's revocation of the old token."""
    repo = RevocationRepository(database_at(location).open())
    start()
    return repo.record("jti:refreshed", expires_at=500.0, now=100.0)


def test_processes_racing_to_revoke_one_token_have_exactly_one_winner(
    database: Database,
) -> None:
    """The refresh single-winner across instances: only one rotation of a token succeeds."""
    outcomes = race_in_processes(_refresh, [(database.location,)] * RACERS)

    assert [outcome.error for outcome in outcomes] == [None] * RACERS
    assert sorted(outcome.value for outcome in outcomes) == [False] * (RACERS - 1) + [True]
    assert RevocationRepository(database).count(0.0) == 1
