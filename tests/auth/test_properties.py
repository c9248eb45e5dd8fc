"""Properties: verification never raises, and no mutation of a valid token is accepted."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from session_buddy.auth import errors
from session_buddy.auth.tokens import SigningKeys, TokenPolicy
from session_buddy.auth.verifier import TokenVerifier
from session_buddy.mcp import auth
from testkit.mutations import mutate, mutation_recipes
from testkit.tokens import mint

SECRET = "property-secret-0123456789abcdefghijklmnop"
KEYS = SigningKeys.from_secrets(SECRET)
VALID = mint(SECRET, now=time.time() + 0, exp=int(time.time()) + 10**6)


@settings(max_examples=1500, deadline=None, database=None)
@given(st.lists(mutation_recipes(), min_size=1, max_size=3))
def test_no_mutation_of_a_valid_token_is_accepted(recipe: list[tuple[str, int, int]]) -> None:
    mutant = VALID
    for step in recipe:
        mutant = mutate(mutant, step)
    verifier = TokenVerifier(KEYS, TokenPolicy())
    try:
        claims = verifier.verify(mutant)
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


@settings(max_examples=500, deadline=None, database=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["user_id", "sub", "exp", "iat", "nbf", "type", "iss", "aud", "jti", "role", "x"]
        ),
        json_values,
    )
)
def test_random_claims_never_raise_past_validate_token(claims: dict) -> None:
    import jwt

    try:
        token = jwt.encode(claims, SECRET, algorithm="HS256")
    except (TypeError, ValueError):
        return
    result = TokenVerifier(KEYS, TokenPolicy())
    try:
        payload = result.verify(token)
    except errors.AuthError:
        return
    identity = payload.get("user_id", payload.get("sub"))
    assert isinstance(identity, str) and identity.strip()
    assert isinstance(payload["exp"], int | float) and not isinstance(payload["exp"], bool)
    assert payload["exp"] > time.time()


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
