"""The product's verifier agrees with an independent reference on every token, valid or not.

The production path: ``TokenVerification.verify`` with the shared-secret verifier
(normalise, then ``decode_access_token``). The reference: ``testkit.reference.
decode_with_pyjwt`` — PyJWT plus the rules written out again, sharing nothing with
``session_buddy``, so a bug on either side shows as a disagreement. Hypothesis generates
headers, claims, secrets, policies and byte-level mutations; both paths must give the same
verdict, the same public message and the same claims. ``make fuzz`` runs 100,000 examples
(SESSION_BUDDY_FUZZ_EXAMPLES); ``make test`` a few thousand.
"""

from __future__ import annotations

import ast
import os
import time
from pathlib import Path
from typing import Any

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from session_buddy.auth import errors
from session_buddy.auth.tokens import SigningKeys, TokenPolicy, decode_access_token
from testkit import reference
from testkit.mutations import mutate, mutation_recipes
from testkit.tokens import assemble
from testkit.verification import shared_secret_verification

EXAMPLES = int(os.environ.get("SESSION_BUDDY_FUZZ_EXAMPLES", "2500"))
CURRENT = "current-secret-0123456789abcdefghijklmnop"
PREVIOUS = "previous-secret-0123456789abcdefghijklmno"
WRONG = "wrong-secret-0123456789abcdefghijklmnopqrs"
KEYS = SigningKeys.from_secrets(CURRENT, [PREVIOUS])
SECRETS = [CURRENT, PREVIOUS]
MISSING = object()

# Offsets from "now" that stay clear of every boundary (leeway is at most 30 s here).
past = st.integers(-(10**7), -40)
future = st.integers(40, 10**7)
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=8),
    st.sampled_from(["1900000000", " 12 ", "1.5", "1_000", "NaN"]),
    st.lists(st.integers(), max_size=2),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**400, -(10**400), 2**1024, -(2**1024), 2**1024 - 2**970]),
)


class Offset:
    """A time relative to "now", resolved when the test runs (strategies stay replayable)."""

    def __init__(self, seconds: int, fractional: bool) -> None:
        self.seconds, self.fractional = seconds, fractional

    def resolve(self, now: float) -> float | int:
        value = int(now) + self.seconds
        return value + 0.25 if self.fractional else value


@st.composite
def time_claim(draw: st.DrawFn, usual: st.SearchStrategy[int]) -> Any:
    kind = draw(st.sampled_from(["usual"] * 5 + ["other", "odd", "missing", "missing"]))
    if kind == "missing":
        return MISSING
    if kind == "odd":
        return draw(odd_values)
    seconds = draw(usual if kind == "usual" else st.one_of(past, future))
    return Offset(seconds, draw(st.booleans()))


identities = st.one_of(
    st.sampled_from(["mahavishnu", "alice", "mahavishnu", "", "   ", "x" * 300]),
    st.text(max_size=12),
    st.integers(),
    st.none(),
)


@st.composite
def recipes(draw: st.DrawFn) -> dict[str, Any]:
    """Well-formed tokens with small variations, valid tokens broken at one rule's edge,
    and anything goes — a third each."""
    return draw(st.one_of(plausible_recipes(), edge_recipes(), wild_recipes()))


@st.composite
def plausible_recipes(draw: st.DrawFn) -> dict[str, Any]:
    """Tokens a real client would send, most of them valid, some near the rules' edges."""
    issuers = draw(st.sampled_from([(), ("mahavishnu", "session-buddy")]))
    audience = draw(st.sampled_from([None, "session-buddy"]))
    payload: dict[str, Any] = {
        "exp": Offset(draw(future), draw(st.booleans())),
        draw(st.sampled_from(["user_id", "sub"])): draw(st.sampled_from(["mahavishnu", "alice"])),
    }
    if draw(st.booleans()):
        payload["iat"] = Offset(draw(past), draw(st.booleans()))
    if draw(st.booleans()):
        payload["type"] = "access"
    if issuers or draw(st.booleans()):
        payload["iss"] = draw(st.sampled_from(["mahavishnu", "session-buddy"]))
    if audience and draw(st.integers(0, 3)) > 0:  # some without aud: older Mahavishnu shapes
        payload["aud"] = draw(st.sampled_from([audience, [audience, "other"]]))
    if draw(st.booleans()):
        payload["role"] = draw(st.sampled_from(["admin", "orchestrator", "dev"]))
        payload["jti"] = draw(st.text(min_size=1, max_size=12))
    return {
        "header": {"alg": "HS256", "typ": "JWT"},
        "payload": payload,
        "secret": draw(st.sampled_from([CURRENT, CURRENT, PREVIOUS])),
        "mutation": draw(mutation_recipes()) if draw(st.integers(0, 5)) == 0 else None,
        "policy": TokenPolicy(
            leeway_seconds=draw(st.sampled_from([0, 30])),
            allowed_issuers=issuers,
            audience=audience,
            require_audience=draw(st.booleans()),
        ),
    }


EDGE_HEADERS = st.sampled_from(
    [
        {"crit": ["exp"]},
        {"crit": []},
        {"kid": 7},
        {"kid": "k1"},
        {"b64": False},
        {"b64": True},
        {"alg": "HS512"},
        {"alg": "hs256"},
        {"typ": "at+jwt"},
    ]
)
EDGE_IDENTITIES = st.sampled_from(
    ["", "   ", "\u3000", "x" * 256, "x" * 257, "x" * 300, 7, None, True, ["alice"]]
)
EDGE_TYPES = st.sampled_from(["access", "refresh", "Access", "", None, 1])
EDGE_PRESENTATIONS = st.sampled_from(
    ["{}", " {}", "{} ", "\t{}\n", "Bearer {}", "bearer  {}", "BEARER {} ", "Bearer\t{}", "Bearer"]
)


@st.composite
def edge_recipes(draw: st.DrawFn) -> dict[str, Any]:
    """A valid token with one rule pushed to its edge: the header, a time claim, the
    caller, the type, or how the token is presented. These are the rules a verifier adds
    to PyJWT's, so each is where the product and the reference could part."""
    recipe = draw(plausible_recipes())
    recipe["mutation"] = None
    payload = recipe["payload"]
    edge = draw(st.sampled_from(["header", "time", "caller", "type", "presentation"]))
    if edge == "header":
        recipe["header"] = {**recipe["header"], **draw(EDGE_HEADERS)}
    elif edge == "time":
        payload[draw(st.sampled_from(["exp", "iat", "nbf"]))] = draw(odd_values)
    elif edge == "caller":
        payload.pop("sub", None)
        payload[draw(st.sampled_from(["user_id", "sub"]))] = draw(EDGE_IDENTITIES)
    elif edge == "type":
        payload["type"] = draw(EDGE_TYPES)
    else:
        recipe["presentation"] = draw(EDGE_PRESENTATIONS)
    return recipe


@st.composite
def wild_recipes(draw: st.DrawFn) -> dict[str, Any]:
    """Everything random about a token, with times kept symbolic."""
    algs = ["HS256"] * 12 + ["none", "HS512", "hs256", "RS256"]
    header: dict[str, Any] = {"alg": draw(st.sampled_from(algs))}
    for name, values in (
        ("typ", st.sampled_from(["JWT", "at+jwt", 1])),
        ("kid", st.one_of(st.text(max_size=4), st.integers())),
        ("crit", st.sampled_from([["b64"], [], "b64", ["exp"]])),
        ("b64", st.sampled_from([True, False, "no"])),
    ):
        if draw(st.integers(0, 14)) == 0:
            header[name] = draw(values)
    payload: dict[str, Any] = {}
    for claim, usual in (("exp", future), ("iat", past), ("nbf", past)):
        value = draw(time_claim(usual))
        if value is not MISSING:
            payload[claim] = value
    if draw(st.integers(0, 5)) > 0:
        payload["user_id"] = draw(identities)
    if draw(st.integers(0, 2)) == 0:
        payload["sub"] = draw(identities)
    for name, values in (
        ("type", st.sampled_from(["access", "access", "access", "refresh", "", None, 1])),
        ("iss", st.sampled_from(["mahavishnu", "session-buddy", "mallory", 7, None])),
        ("aud", st.sampled_from(["session-buddy", ["session-buddy", "x"], "x", [], "", [1], 3])),
        ("jti", st.sampled_from(["abc", 12, None, ""])),
        ("role", st.sampled_from(["admin", "orchestrator", None])),
    ):
        if draw(st.integers(0, 3)) == 0:
            payload[name] = draw(values)
    if draw(st.integers(0, 5)) == 0:
        payload["extra"] = draw(
            st.recursive(
                st.none() | st.integers() | st.text(max_size=5),
                lambda c: st.lists(c, max_size=3),
                max_leaves=8,
            )
        )
    return {
        "header": header,
        "payload": payload,
        "secret": draw(st.sampled_from([CURRENT] * 4 + [PREVIOUS, WRONG])),
        "mutation": draw(mutation_recipes()) if draw(st.integers(0, 3)) == 0 else None,
        "policy": TokenPolicy(
            leeway_seconds=draw(st.sampled_from([0, 0, 30])),
            allowed_issuers=draw(st.sampled_from([(), (), ("mahavishnu", "session-buddy")])),
            audience=draw(st.sampled_from([None, "session-buddy", "session-buddy"])),
            require_audience=draw(st.booleans()),
        ),
    }


def build(recipe: dict[str, Any], now: float) -> tuple[str, TokenPolicy]:
    payload = {
        k: v.resolve(now) if isinstance(v, Offset) else v for k, v in recipe["payload"].items()
    }
    token = assemble(recipe["header"], payload, recipe["secret"])
    if recipe["mutation"] is not None:
        token = mutate(token, recipe["mutation"])
    if "presentation" in recipe:
        token = recipe["presentation"].replace("{}", token)
    return token, recipe["policy"]


def verdict(decode: Any) -> tuple[str, Any]:
    """What a caller would learn: the claims, or the message of the refusal."""
    try:
        return "accept", decode()
    except errors.AuthError as exc:  # the product's refusals
        return "reject", exc.public_message
    except reference.Refused as exc:  # the reference's
        return "reject", exc.message


def reference_policy(policy: TokenPolicy) -> reference.Policy:
    """The same settings, handed to the reference as its own data."""
    return reference.Policy(
        leeway_seconds=policy.leeway_seconds,
        allowed_issuers=policy.allowed_issuers,
        audience=policy.audience,
        require_audience=policy.require_audience,
        max_token_chars=policy.max_token_bytes,
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(recipes())
def test_verifier_and_independent_reference_agree(recipe: dict[str, Any]) -> None:
    token, policy = build(recipe, time.time())
    # The production path exactly: a fresh verification (normalising, then verifying).
    product = verdict(lambda: dict(shared_secret_verification(KEYS, policy).verify(token).claims))
    expected = verdict(
        lambda: reference.decode_with_pyjwt(token, SECRETS, reference_policy(policy))
    )
    assert product == expected, (token, policy)


def test_generator_produces_both_verdicts() -> None:
    """Guard against a generator that only ever makes invalid tokens."""
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    @given(recipes())
    def collect(recipe: dict[str, Any]) -> None:
        token, policy = build(recipe, time.time())
        seen.add(verdict(lambda: decode_access_token(token, KEYS, policy, time.time()))[0])

    collect()
    assert seen == {"accept", "reject"}


def test_reference_accepts_what_pyjwt_accepts_for_a_plain_token() -> None:
    token = jwt.encode({"user_id": "u", "exp": int(time.time()) + 600}, CURRENT, algorithm="HS256")
    assert reference.decode_with_pyjwt(token, SECRETS, reference.Policy())["user_id"] == "u"
    assert decode_access_token(token, KEYS, TokenPolicy(), time.time())["user_id"] == "u"


def test_the_reference_shares_nothing_with_the_product() -> None:
    """An independent reference imports nothing from session_buddy: where the two shared a
    function, a bug in it could never be caught."""
    tree = ast.parse(Path(reference.__file__).read_text(encoding="utf-8"))
    imported = {
        name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    }
    assert not {name for name in imported if name.split(".")[0] == "session_buddy"}
