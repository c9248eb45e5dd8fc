"""AuthFailureThrottle: 20 bad credentials in 60 s block a client for 60 s."""

from __future__ import annotations

import pytest

from session_buddy.auth import errors
from session_buddy.auth.throttle import AuthFailureThrottle
from testkit.clock import FixedClock


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(1000.0)


@pytest.fixture
def throttle(clock: FixedClock) -> AuthFailureThrottle:
    return AuthFailureThrottle(clock=clock)


def fail(throttle: AuthFailureThrottle, times: int, client: str = "10.0.0.1") -> list[bool]:
    return [throttle.record_failure(client) for _ in range(times)]


def test_nineteen_failures_do_not_block(throttle: AuthFailureThrottle) -> None:
    assert fail(throttle, 19) == [False] * 19
    assert throttle.retry_after("10.0.0.1") is None


def test_the_twentieth_failure_within_a_minute_blocks_for_sixty_seconds(
    throttle: AuthFailureThrottle, clock: FixedClock
) -> None:
    for _ in range(19):
        throttle.record_failure("10.0.0.1")
        clock.now += 3  # 19 failures over 57 s
    assert throttle.record_failure("10.0.0.1") is True
    assert throttle.retry_after("10.0.0.1") == 60.0


def test_failures_older_than_the_window_are_forgotten(
    throttle: AuthFailureThrottle, clock: FixedClock
) -> None:
    fail(throttle, 10)
    clock.now += 60
    assert fail(throttle, 19) == [False] * 19
    assert throttle.retry_after("10.0.0.1") is None


def test_block_ends_after_sixty_seconds_and_counting_starts_afresh(
    throttle: AuthFailureThrottle, clock: FixedClock
) -> None:
    fail(throttle, 20)
    clock.now += 59.5
    assert throttle.retry_after("10.0.0.1") == pytest.approx(0.5)
    clock.now += 0.5
    assert throttle.retry_after("10.0.0.1") is None
    assert fail(throttle, 19) == [False] * 19


def test_failures_while_blocked_do_not_extend_the_block(
    throttle: AuthFailureThrottle, clock: FixedClock
) -> None:
    fail(throttle, 20)
    clock.now += 30
    assert fail(throttle, 50) == [False] * 50
    assert throttle.retry_after("10.0.0.1") == 30.0


def test_clients_are_counted_separately(throttle: AuthFailureThrottle) -> None:
    fail(throttle, 20, client="10.0.0.1")
    fail(throttle, 19, client="10.0.0.2")
    assert throttle.retry_after("10.0.0.1") is not None
    assert throttle.retry_after("10.0.0.2") is None


def test_limits_are_configurable(clock: FixedClock) -> None:
    throttle = AuthFailureThrottle(limit=3, window=10, block=5, clock=clock)
    assert fail(throttle, 3) == [False, False, True]
    assert throttle.retry_after("10.0.0.1") == 5


def test_memory_stays_bounded_under_a_flood_from_many_addresses(clock: FixedClock) -> None:
    throttle = AuthFailureThrottle(clock=clock, max_clients=100)
    for number in range(10_000):
        throttle.record_failure(f"10.{number // 65536}.{number // 256 % 256}.{number % 256}")
    assert len(throttle._failures) <= 100


@pytest.mark.parametrize(
    "error",
    [
        errors.InvalidTokenError(),
        errors.MalformedTokenError(),
        errors.InvalidSignatureError(),
        errors.ExpiredTokenError(),
        errors.RevokedTokenError(),
        errors.IdentityMismatchError(),
    ],
)
def test_refused_credentials_count(error: errors.AuthError) -> None:
    throttle = AuthFailureThrottle(limit=1, clock=FixedClock(1000.0))
    throttle.record_refusal("10.0.0.1", error)
    assert throttle.retry_after("10.0.0.1") is not None


@pytest.mark.parametrize(
    "error",
    [
        errors.TokenRequiredError(),
        errors.RoleNotAllowedError("dev"),
        errors.RevocationUnavailableError(),
        errors.SecretConfigError(),
    ],
)
def test_missing_tokens_roles_and_server_problems_do_not_count(error: errors.AuthError) -> None:
    throttle = AuthFailureThrottle(limit=1, clock=FixedClock(1000.0))
    throttle.record_refusal("10.0.0.1", error)
    assert throttle.retry_after("10.0.0.1") is None
