"""Refused-credential counts and blocks, on both backends: summed over every instance."""

from __future__ import annotations

import threading

import pytest

from session_buddy.store import Database
from session_buddy.store.failures import BUCKET_SECONDS, FailureRepository, bucket_of
from testkit.concurrency import run_in_threads
from testkit.store import database_at


@pytest.fixture
def failures(database: Database) -> FailureRepository:
    return FailureRepository(database)


def test_buckets_are_ten_seconds_of_unix_time() -> None:
    assert BUCKET_SECONDS == 10
    assert (bucket_of(0.0), bucket_of(9.99), bucket_of(10.0), bucket_of(1234.5)) == (0, 0, 1, 123)


def test_added_counts_are_summed_per_client_over_the_buckets_asked_for(
    failures: FailureRepository,
) -> None:
    failures.add({("10.0.0.1", 100): 3, ("10.0.0.1", 101): 2, ("10.0.0.2", 101): 7})
    failures.add({("10.0.0.1", 101): 4, ("10.0.0.1", 99): 50})

    assert failures.totals(["10.0.0.1", "10.0.0.2", "10.0.0.3"], since_bucket=100) == {
        "10.0.0.1": 9,
        "10.0.0.2": 7,
    }
    assert failures.totals(["10.0.0.1"], since_bucket=101) == {"10.0.0.1": 6}
    assert failures.totals(["10.0.0.1", "10.0.0.1"], since_bucket=0) == {"10.0.0.1": 59}
    assert failures.totals([], since_bucket=0) == {}


def test_two_instances_add_to_the_same_counts(database: Database) -> None:
    other = database_at(database.location).open()
    try:
        FailureRepository(database).add({("10.0.0.1", 100): 3})
        FailureRepository(other).add({("10.0.0.1", 100): 4})

        assert FailureRepository(other).totals(["10.0.0.1"], 0) == {"10.0.0.1": 7}
    finally:
        other.close()


def test_adding_nothing_writes_nothing(database: Database, failures: FailureRepository) -> None:
    failures.add({})
    failures.block({})

    assert database.query("SELECT COUNT(*) FROM auth_failures")[0][0] == 0
    assert database.query("SELECT COUNT(*) FROM auth_blocks")[0][0] == 0


def test_threads_adding_at_once_lose_no_count(failures: FailureRepository) -> None:
    barrier = threading.Barrier(8)

    def add(n: int) -> None:
        barrier.wait(30)
        for _ in range(5):
            failures.add({("10.0.0.1", 100): 1, (f"10.0.1.{n}", 100): 1})

    run_in_threads(add, range(8))

    totals = failures.totals(["10.0.0.1", *(f"10.0.1.{n}" for n in range(8))], 0)
    assert totals == {"10.0.0.1": 40, **{f"10.0.1.{n}": 5 for n in range(8)}}


def test_a_block_keeps_the_latest_end_and_lasts_until_then(failures: FailureRepository) -> None:
    failures.block({"10.0.0.1": 500.0, "10.0.0.2": 300.0})
    failures.block({"10.0.0.1": 400.0})
    failures.block({"10.0.0.2": 600.0})

    assert failures.blocked(now=100.0) == {"10.0.0.1": 500.0, "10.0.0.2": 600.0}
    assert failures.blocked(now=500.0) == {"10.0.0.2": 600.0}
    assert failures.blocked(now=600.0) == {}


def test_purge_forgets_old_buckets_and_ended_blocks(
    database: Database, failures: FailureRepository
) -> None:
    failures.add({("10.0.0.1", 98): 1, ("10.0.0.1", 99): 2, ("10.0.0.1", 100): 4})
    failures.block({"10.0.0.1": 300.0, "10.0.0.2": 200.0})

    failures.purge(before_bucket=100, now=200.0)

    assert failures.totals(["10.0.0.1"], since_bucket=0) == {"10.0.0.1": 4}
    assert failures.blocked(now=0.0) == {"10.0.0.1": 300.0}
    assert database.query("SELECT COUNT(*) FROM auth_failures")[0][0] == 1
