"""Every refusal knows its HTTP status and whether it is a bad credential (class data).

401: the caller's credential is bad or missing; 403: it may not do this; 429: throttled;
503: the server's own fault (its secret, its database), with a Retry-After; 400: a token
sent where this server takes none. Only bad credentials count towards the throttle.
"""

from __future__ import annotations

import inspect

import pytest

from session_buddy.auth import errors
from session_buddy.auth.throttle import is_bad_credential
from session_buddy.store import StorageError

EXPECTED: dict[type[errors.AuthError], tuple[int, bool, int | None]] = {
    errors.AuthError: (401, False, None),
    errors.TokenRequiredError: (401, False, None),
    errors.ExpiredTokenError: (401, True, None),
    errors.RevokedTokenError: (401, True, None),
    errors.TokenLifetimeExceededError: (401, False, None),
    errors.InvalidTokenError: (401, True, None),
    errors.MalformedTokenError: (401, True, None),
    errors.TokenTooLargeError: (401, True, None),
    errors.InvalidSignatureError: (401, True, None),
    errors.DisallowedAlgorithmError: (401, True, None),
    errors.CriticalHeaderError: (401, True, None),
    errors.InvalidClaimError: (401, True, None),
    errors.ImmatureTokenError: (401, True, None),
    errors.MissingIdentityError: (401, True, None),
    errors.WrongTokenTypeError: (401, True, None),
    errors.InvalidIssuerError: (401, True, None),
    errors.InvalidAudienceError: (401, True, None),
    errors.IdentityMismatchError: (401, True, None),
    errors.AuthorizationError: (403, False, None),
    errors.RoleNotAllowedError: (403, False, None),
    errors.MissingScopeError: (403, False, None),
    errors.TokenArgumentRefusedError: (400, False, None),
    errors.ThrottledError: (429, False, None),
    errors.SecretConfigError: (503, False, 60),
    errors.SecretFileUnusableError: (503, False, 60),
    errors.SecretSourcesDisagreeError: (503, False, 60),
    errors.SecretNotConfiguredError: (503, False, 60),
    errors.RevocationUnavailableError: (503, False, 5),
}


def test_every_refusal_class_is_in_the_table() -> None:
    classes = {
        c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, errors.AuthError)
    }
    assert classes == set(EXPECTED)


@pytest.mark.parametrize("error_class", list(EXPECTED), ids=lambda c: c.__name__)
def test_each_refusal_carries_its_status_and_whether_it_is_a_bad_credential(
    error_class: type[errors.AuthError],
) -> None:
    status, bad_credential, retry_after = EXPECTED[error_class]
    assert (error_class.status, error_class.bad_credential, error_class.retry_after) == (
        status,
        bad_credential,
        retry_after,
    )


def test_the_throttle_counts_what_the_class_calls_a_bad_credential() -> None:
    class Guessed(errors.AuthError):
        bad_credential = True

    assert is_bad_credential(Guessed())
    assert not is_bad_credential(errors.RevocationUnavailableError())


def test_an_unreadable_revocation_store_carries_the_storage_failure_and_its_fix() -> None:
    failure = StorageError("PostgreSQL at db:5432/sb: no connection within 3 s", kind="unreachable")
    error = errors.RevocationUnavailableError("unconfirmed for 6 s", storage=failure)
    assert error.storage is failure
    assert error.fix == failure.fix
    assert error.public_message == "Authentication unavailable: revocation store cannot be read"
    assert errors.RevocationUnavailableError().storage is None
