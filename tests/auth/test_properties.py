"""Properties: verification never raises, ``validate_token`` accepts only claims that obey
every rule (and says why it refuses the rest), and no mutation of a valid token is accepted."""

from __future__ import annotations

import collections
import json
import math
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from session_buddy.auth import errors
from session_buddy.auth.tokens import SigningKeys, TokenPolicy
from session_buddy.mcp import auth
from testkit.mutations import mutate, mutation_recipes
from testkit.tokens import assemble, mint
from testkit.verification import shared_secret_verification

SECRET = "property-secret-0123456789abcdefghijklmnop"
KEYS = SigningKeys.from_secrets(SECRET)
VALID = mint(SECRET, now=time.time() + 0, exp=int(time.time()) + 10**6)


@settings(max_examples=1500, deadline=None, database=None)
@given(st.lists(mutation_recipes(), min_size=1, max_size=3))
def test_no_mutation_of_a_valid_token_is_accepted(recipe: list[tuple[str, int, int]]) -> None:
    mutant = VALID
    for step in recipe:
        mutant = mutate(mutant, step)
    verification = shared_secret_verification(KEYS, TokenPolicy())
    try:
        claims = verification.verify(mutant).claims
    except errors.AuthError:
        return
    # Only whitespace around the original (stripped by design) may still verify.
    assert mutant.strip() == VALID, mutant
    assert claims["user_id"] == "mahavishnu"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
CLAIM_NAMES = ["user_id", "sub", "exp", "iat", "nbf", "type", "iss", "aud", "jti", "role", "x"]


def _from_now(low: int, high: int) -> st.SearchStrategy[int]:
    """A time ``low``..``high`` seconds from now, read when drawn (never near a boundary)."""
    return st.integers(low, high).map(lambda seconds: int(time.time()) + seconds)


past = _from_now(-(10**6), -60)
future = _from_now(60, 10**6)
plausible_claims = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(["mahavishnu", "alice"]),
        "exp": st.one_of(future, future, past),  # most live, some expired
    },
    optional={
        "iat": past,
        "type": st.just("access"),
        "iss": st.just("mahavishnu"),
        "role": st.sampled_from(["orchestrator", "admin"]),
        "jti": st.text(min_size=1, max_size=8),
    },
)
odd_values = st.one_of(
    past,
    future,
    st.sampled_from(["", " ", "access", "refresh", "mahavishnu", "session-buddy"]),
    json_values,
)
odd_claims = st.dictionaries(st.sampled_from(CLAIM_NAMES), odd_values, min_size=1, max_size=2)
claim_sets = st.one_of(
    plausible_claims,  # as Mahavishnu mints them, some expired
    st.builds(lambda usual, odd: {**usual, **odd}, plausible_claims, odd_claims),
    st.dictionaries(st.sampled_from(CLAIM_NAMES), odd_values),  # anything at all
)


def signed(claims: dict[str, Any], secret: str) -> str:
    """HS256 over any claims (PyJWT's encoder refuses some, such as ``iss: null``)."""
    return assemble({"alg": "HS256", "typ": "JWT"}, claims, secret)


def as_json(claims: dict[str, Any]) -> str:
    """Claims as they travel (NaN included), for comparing what was signed and returned."""
    return json.dumps(claims, sort_keys=True)


@settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # one secret for all
)
@given(claims=claim_sets)
def test_random_claims_never_raise_past_validate_token(
    auth_enabled: str, claims: dict[str, Any]
) -> None:
    token = signed(claims, auth_enabled)
    before = time.time()
    payload = auth.validate_token(token)  # raises nothing, whatever the claims
    after = time.time()
    if payload is None:
        assert auth.get_auth_error() in {"Invalid token", "Token has expired"}
        return
    assert auth.get_auth_error() is None
    assert as_json(payload) == as_json(claims)
    identity = payload.get("user_id", payload.get("sub"))
    assert isinstance(identity, str) and identity.strip()
    assert is_time(payload["exp"]) and int(payload["exp"]) > before
    for claim in ("iat", "nbf"):
        assert claim not in payload or (is_time(payload[claim]) and int(payload[claim]) <= after)
    assert payload.get("type", "access") == "access"
    aud = payload.get("aud")  # the default audience, session-buddy, or none at all
    assert not aud or aud == "session-buddy" or (isinstance(aud, list) and "session-buddy" in aud)
    assert all(isinstance(payload.get(claim, ""), str) for claim in ("sub", "jti"))


def is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_claim_generator_produces_both_verdicts(auth_enabled: str) -> None:
    """Guard against a generator whose tokens are all refused (or all accepted): it makes
    accepted tokens, expired ones and otherwise invalid ones, each in some number."""
    verdicts: collections.Counter[str | None] = collections.Counter()

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(claim_sets)
    def collect(claims: dict[str, Any]) -> None:
        auth.validate_token(signed(claims, auth_enabled))
        verdicts[auth.get_auth_error()] += 1

    collect()
    assert set(verdicts) == {None, "Invalid token", "Token has expired"}, verdicts
    assert min(verdicts.values()) >= 15, verdicts


@settings(max_examples=300, deadline=None, database=None)
@given(st.one_of(st.text(), st.binary(), st.integers(), st.none(), st.lists(st.text())))
def test_validate_token_never_raises(value: object) -> None:
    import os

    os.environ["SESSION_BUDDY_SECRET"] = SECRET
    try:
        auth.reload_auth_config()
        assert auth.validate_token(value) is None
        assert auth.get_auth_error() is not None
    finally:
        del os.environ["SESSION_BUDDY_SECRET"]
        auth.reload_auth_config()
