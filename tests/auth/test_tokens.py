"""Which tokens are accepted: the rules, each with the message a caller sees."""

from __future__ import annotations

import base64
import logging
import math
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from session_buddy.auth import errors, tokens
from session_buddy.auth.principal import Principal
from session_buddy.auth.revocation import RevocationStore
from session_buddy.auth.tokens import RESERVED_CLAIMS, SigningKeys, TokenPolicy
from session_buddy.auth.verification import TokenVerification
from session_buddy.config import load_settings
from session_buddy.mcp import auth
from session_buddy.mcp.auth import AuthConfig, JWTManager
from session_buddy.store import SqliteDatabase
from testkit.concurrency import run_in_threads
from testkit.tokens import DROP, assemble, b64json, mint
from testkit.verification import shared_secret_verification

NOW = 1_800_000_000.0


def verifier(secret: str, **policy: object) -> TokenVerification:
    return shared_secret_verification(
        SigningKeys.from_secrets(secret), TokenPolicy(**policy), clock=lambda: NOW
    )


def rejected(v: TokenVerification, token: object) -> errors.AuthError:
    with pytest.raises(errors.AuthError) as info:
        v.verify(token)
    return info.value


# -- issuing -----------------------------------------------------------------------


def test_created_token_carries_the_standard_claims(auth_enabled: str) -> None:
    manager = JWTManager(clock=lambda: NOW)
    token = manager.create_token("user123", additional_claims={"role": "admin"})
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(
        token,
        auth_enabled,
        algorithms=["HS256"],
        audience="session-buddy",
        options={"verify_exp": False, "verify_iat": False},
    )
    assert header["alg"] == "HS256"
    assert claims["user_id"] == "user123"
    assert claims["sub"] == "user123"
    assert claims["aud"] == "session-buddy"
    assert claims["role"] == "admin"
    assert claims["type"] == "access"
    assert claims["iss"] == "session-buddy"
    assert claims["iat"] == int(NOW)
    assert claims["exp"] == int(NOW) + 3600
    assert len(claims["jti"]) >= 16


def test_each_token_gets_a_distinct_jti(auth_enabled: str) -> None:
    manager = JWTManager()
    ids = {
        jwt.decode(manager.create_token("u"), options={"verify_signature": False})["jti"]
        for _ in range(50)
    }
    assert len(ids) == 50


@pytest.mark.parametrize("claim", sorted(RESERVED_CLAIMS))
def test_additional_claims_cannot_overwrite_reserved_claims(auth_enabled: str, claim: str) -> None:
    with pytest.raises(ValueError, match=claim):
        JWTManager().create_token("user123", additional_claims={claim: "x"})


@pytest.mark.parametrize(
    "user_id", ["", "   ", None, 42, "x" * 257, "a\x00b", "\ud800", "a\u202eb"]
)
def test_create_token_refuses_a_useless_identity(auth_enabled: str, user_id: object) -> None:
    with pytest.raises(ValueError):
        JWTManager().create_token(user_id)  # type: ignore[arg-type]


def test_create_token_without_secret_explains_how_to_enable() -> None:
    with pytest.raises(ValueError, match="SESSION_BUDDY_SECRET"):
        auth.generate_test_token("test_user")


def test_generated_test_token_validates(auth_enabled: str) -> None:
    payload = auth.validate_token(auth.generate_test_token("test_user"))
    assert payload is not None and payload["user_id"] == "test_user"


# -- the header --------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_rejected_in_any_casing(secret: str, alg: str) -> None:
    unsigned = assemble({"alg": alg}, {"user_id": "x", "exp": NOW + 60}, None)
    assert rejected(verifier(secret), unsigned).public_message == "Invalid token"
    forged_sig = assemble({"alg": alg}, {"user_id": "x", "exp": NOW + 60}, secret)
    assert isinstance(rejected(verifier(secret), forged_sig), errors.DisallowedAlgorithmError)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_rejected(secret: str, alg: str) -> None:
    token = jwt.encode({"user_id": "x", "exp": NOW + 60}, secret, algorithm=alg)
    assert rejected(verifier(secret), token).public_message == "Invalid token"


def test_rs256_token_is_rejected(secret: str) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode({"user_id": "x", "exp": NOW + 60}, key, algorithm="RS256")
    assert rejected(verifier(secret), token).public_message == "Invalid token"


def test_hs256_header_with_other_alg_spelling_is_rejected(secret: str) -> None:
    token = assemble({"alg": "hs256"}, {"user_id": "x", "exp": NOW + 60}, secret)
    assert isinstance(rejected(verifier(secret), token), errors.DisallowedAlgorithmError)


def test_crit_header_is_rejected(secret: str) -> None:
    token = assemble(
        {"alg": "HS256", "crit": ["b64"], "b64": True}, {"user_id": "x", "exp": NOW + 60}, secret
    )
    assert isinstance(rejected(verifier(secret), token), errors.CriticalHeaderError)


# -- registered claims -------------------------------------------------------------


def test_expired_token_is_rejected_with_public_message(secret: str) -> None:
    token = mint(secret, now=NOW - 7200)
    error = rejected(verifier(secret), token)
    assert error.public_message == "Token has expired"
    assert error.user_message == "❌ Authentication failed: Token has expired"


def test_leeway_accepts_a_token_that_just_expired(secret: str) -> None:
    token = mint(secret, now=NOW, exp=int(NOW) - 5)
    assert rejected(verifier(secret), token).public_message == "Token has expired"
    assert verifier(secret, leeway_seconds=10).verify(token).claims["user_id"] == "mahavishnu"


@pytest.mark.parametrize("exp", [DROP, None, "1900000000", True, [1], {"a": 1}])
def test_exp_must_be_present_and_numeric(secret: str, exp: object) -> None:
    token = mint(secret, now=NOW, exp=exp)
    assert rejected(verifier(secret), token).public_message == "Invalid token"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_exp_must_be_finite(secret: str, value: float) -> None:
    token = assemble({"alg": "HS256"}, {"user_id": "x", "exp": value}, secret)
    assert rejected(verifier(secret), token).public_message == "Invalid token"


BEYOND_A_DOUBLE = [10**400, -(10**400), 2**1024, -(2**1024)]


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize(
    "value", BEYOND_A_DOUBLE, ids=["10**400", "-10**400", "2**1024", "-2**1024"]
)
def test_a_time_beyond_a_doubles_range_is_invalid(secret: str, claim: str, value: int) -> None:
    payload = {"user_id": "x", "exp": int(NOW) + 60, claim: value}
    token = assemble({"alg": "HS256"}, payload, secret)
    assert rejected(verifier(secret), token).public_message == "Invalid token"


def test_the_largest_double_is_still_a_time(secret: str) -> None:
    token = assemble({"alg": "HS256"}, {"user_id": "x", "exp": 1.7976931348623157e308}, secret)
    assert verifier(secret).verify(token).claims["user_id"] == "x"


@pytest.mark.parametrize("exp", [10**400, math.inf, math.nan], ids=["10**400", "inf", "nan"])
def test_a_principal_refuses_an_exp_it_cannot_hold(exp: float) -> None:
    """For claims from a verifier that let one through (PyJWT takes ``10**400``)."""
    with pytest.raises(errors.InvalidClaimError) as refused:
        Principal.from_claims({"user_id": "x", "exp": exp})
    assert refused.value.public_message == "Invalid token"


@pytest.mark.parametrize("value", [10**400, -(10**400)], ids=["10**400", "-10**400"])
@pytest.mark.parametrize("operation", ["authenticate", "refresh_token", "revoke_token"])
def test_manager_operations_refuse_a_huge_exp_cleanly(
    secret: str, tmp_path: Path, value: int, operation: str
) -> None:
    manager = JWTManager(AuthConfig(load_settings(secret=secret, data_dir=tmp_path)))
    token = assemble({"alg": "HS256"}, {"user_id": "x", "exp": value}, secret)
    with pytest.raises(errors.AuthError) as refused:
        getattr(manager, operation)(token)
    assert refused.value.public_message == "Invalid token"


@pytest.mark.parametrize("auth_time", [-(10**400), 10**400, "NaN"])
def test_refresh_survives_an_odd_auth_time(secret: str, tmp_path: Path, auth_time: object) -> None:
    """``auth_time`` is not checked on the way in: an odd one counts as "now"."""
    manager = JWTManager(AuthConfig(load_settings(secret=secret, data_dir=tmp_path)))
    token = mint(secret, auth_time=auth_time)
    assert manager.verify_token(manager.refresh_token(token))["user_id"] == "mahavishnu"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_future_nbf_or_iat_is_rejected_beyond_the_leeway(secret: str, claim: str) -> None:
    token = mint(secret, now=NOW, **{claim: int(NOW) + 30})
    assert isinstance(rejected(verifier(secret), token), errors.ImmatureTokenError)
    assert verifier(secret, leeway_seconds=60).verify(token)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_nbf_and_iat_must_be_numeric(secret: str, claim: str) -> None:
    token = mint(secret, now=NOW, **{claim: "soon"})
    assert rejected(verifier(secret), token).public_message == "Invalid token"


# -- identity and type -------------------------------------------------------------


def test_identity_falls_back_to_sub(secret: str) -> None:
    token = mint(secret, now=NOW, user_id=DROP, sub="svc-42")
    assert verifier(secret).verify(token).claims["sub"] == "svc-42"


@pytest.mark.parametrize(
    "claims",
    [
        {"user_id": ""},
        {"user_id": "   "},
        {"user_id": 7},
        {"user_id": None, "sub": "someone"},
        {"user_id": DROP},
        {"user_id": DROP, "sub": ""},
        {"user_id": "x" * 300},
        {"user_id": "ali\x00ce"},
        {"user_id": "alice\ud800"},
        {"user_id": "alice\n"},
        {"user_id": "\u202eecila"},
        {"user_id": DROP, "sub": "svc\x1b[2J"},
    ],
)
def test_identity_must_be_a_non_empty_string(secret: str, claims: dict[str, object]) -> None:
    token = mint(secret, now=NOW, **claims)
    assert rejected(verifier(secret), token).public_message == "Invalid token"


@pytest.mark.parametrize("name", ["Zoë Müller", "山田 太郎", "svc:mahavishnu/worker-1", "a b"])
def test_identity_may_be_any_printable_text(secret: str, name: str) -> None:
    assert verifier(secret).verify(mint(secret, name, now=NOW)).user_id == name


@pytest.mark.parametrize("kind", ["refresh", "Access", "", None, 1])
def test_type_other_than_access_is_rejected(secret: str, kind: object) -> None:
    token = mint(secret, now=NOW, type=kind)
    assert isinstance(rejected(verifier(secret), token), errors.WrongTokenTypeError)


def test_missing_type_is_accepted(secret: str) -> None:
    assert verifier(secret).verify(mint(secret, now=NOW, type=DROP))


# -- issuer and audience -----------------------------------------------------------


def test_issuer_allow_list(secret: str) -> None:
    v = verifier(secret, allowed_issuers=("mahavishnu",))
    assert v.verify(mint(secret, now=NOW, iss="mahavishnu"))
    assert isinstance(rejected(v, mint(secret, now=NOW, iss="mallory")), errors.InvalidIssuerError)
    assert rejected(v, mint(secret, now=NOW)).public_message == "Invalid token"


def test_any_issuer_when_no_allow_list(secret: str) -> None:
    assert verifier(secret).verify(mint(secret, now=NOW, iss="anyone"))


def test_aud_is_refused_when_no_audience_is_configured(secret: str) -> None:
    assert isinstance(
        rejected(verifier(secret), mint(secret, now=NOW, aud="elsewhere")),
        errors.InvalidAudienceError,
    )


def test_configured_audience_must_match(secret: str) -> None:
    v = verifier(secret, audience="session-buddy")
    assert v.verify(mint(secret, now=NOW, aud="session-buddy"))
    assert v.verify(mint(secret, now=NOW, aud=["other", "session-buddy"]))
    assert isinstance(rejected(v, mint(secret, now=NOW, aud="other")), errors.InvalidAudienceError)
    assert isinstance(
        rejected(v, mint(secret, now=NOW, aud=["a", "b"])), errors.InvalidAudienceError
    )


@pytest.mark.parametrize("aud", [DROP, "", [], None], ids=["absent", "empty", "[]", "null"])
def test_a_token_without_aud_is_accepted_unless_the_audience_is_required(
    secret: str, aud: object
) -> None:
    token = mint(secret, now=NOW, aud=aud)
    assert verifier(secret, audience="session-buddy").verify(token)
    refused = rejected(verifier(secret, audience="session-buddy", require_audience=True), token)
    assert isinstance(refused, errors.InvalidAudienceError)
    assert refused.public_message == "Invalid token" and refused.reason == "bad_audience"


# -- shape, size and input types -----------------------------------------------------


def test_token_over_8_kib_is_rejected_before_decoding(secret: str) -> None:
    token = mint(secret, now=NOW, padding="p" * 9000)
    assert isinstance(rejected(verifier(secret), token), errors.TokenTooLargeError)
    huge = "a" * (1024 * 1024)
    assert isinstance(rejected(verifier(secret), huge), errors.TokenTooLargeError)


def test_bearer_prefix_and_whitespace_are_stripped(secret: str) -> None:
    token = mint(secret, now=NOW)
    v = verifier(secret)
    for form in (f"Bearer {token}", f"  bearer   {token}\n", f"BEARER {token}", f"\t{token} "):
        assert v.verify(form).claims["user_id"] == "mahavishnu"


@pytest.mark.parametrize("value", [None, 42, b"bytes", ["a"], {"t": 1}, 3.5])
def test_non_string_input_returns_none_and_never_raises(auth_enabled: str, value: object) -> None:
    assert auth.validate_token(value) is None
    assert auth.get_auth_error() == "Invalid token"


@pytest.mark.parametrize(
    "token",
    ["", "   ", "Bearer ", "a.b", "a.b.c.d", "...", "x" * 100, "a.b.c", "\x00.\x00.\x00"],
)
def test_malformed_strings_are_invalid(auth_enabled: str, token: str) -> None:
    assert auth.validate_token(token) is None
    assert auth.get_auth_error() == "Invalid token"


def test_padded_or_non_canonical_base64_is_rejected(secret: str) -> None:
    token = mint(secret, now=NOW)
    head, body, sig = token.split(".")
    last = sig[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(last) ^ 1]  # same decoded bytes, other unused bits
    v = verifier(secret)
    assert rejected(v, f"{head}.{body}.{sig[:-1]}{sibling}").public_message == "Invalid token"
    assert rejected(v, f"{head}.{body}.{sig}=").public_message == "Invalid token"


@pytest.mark.parametrize("length", [2, 3, 6, 7])
def test_canonical_encoding_is_our_rule_not_left_to_pyjwt(length: int) -> None:
    # PyJWT >= 2.10 is allowed, and its releases differ on non-canonical segments (2.13
    # accepted them): one spelling per token, whatever PyJWT does (revocation by digest).
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for last in alphabet:
        segment = "A" * (length - 1) + last
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        canonical = base64.urlsafe_b64encode(data).rstrip(b"=").decode() == segment
        assert tokens._canonical(segment) is canonical, segment


# -- secrets and rotation ----------------------------------------------------------


def test_wrong_secret_is_rejected(secret: str) -> None:
    token = mint("w" * 40, now=NOW)
    assert isinstance(rejected(verifier(secret), token), errors.InvalidSignatureError)


def test_previous_secret_still_verifies_and_new_tokens_use_the_current(
    monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    old = "o" * 40
    monkeypatch.setenv("SESSION_BUDDY_SECRET", secret)
    monkeypatch.setenv("SESSION_BUDDY_PREVIOUS_SECRETS", old)
    auth.reload_auth_config()
    assert auth.validate_token(mint(old)) is not None
    new = auth.generate_test_token("rotated")
    jwt.decode(new, secret, algorithms=["HS256"], audience="session-buddy")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(new, old, algorithms=["HS256"], audience="session-buddy")


def test_tampered_payload_is_rejected(secret: str) -> None:
    token = mint(secret, now=NOW)
    head, _, sig = token.split(".")
    forged = b64json({"user_id": "admin", "exp": NOW + 60})
    assert rejected(verifier(secret), f"{head}.{forged}.{sig}").public_message == "Invalid token"


# -- what the caller and the log see -------------------------------------------------


def test_log_gets_the_reason_and_a_fingerprint_never_the_token(
    auth_enabled: str, caplog: pytest.LogCaptureFixture
) -> None:
    token = mint(auth_enabled, exp=1000)
    with caplog.at_level(logging.DEBUG):
        assert auth.validate_token(token) is None
    text = caplog.text
    assert "reason=expired" in text
    assert "token_fp=" in text
    assert token not in text
    for part in token.split("."):
        assert part not in text
    assert auth_enabled not in text
    assert auth.get_auth_error() == "Token has expired"


def test_success_clears_the_previous_error(auth_enabled: str) -> None:
    assert auth.validate_token("garbage") is None
    assert auth.get_auth_error() == "Invalid token"
    assert auth.validate_token(mint(auth_enabled)) is not None
    assert auth.get_auth_error() is None


def test_cached_token_is_rejected_once_it_expires(secret: str) -> None:
    now = [NOW]
    v = shared_secret_verification(SigningKeys.from_secrets(secret), clock=lambda: now[0])
    token = mint(secret, now=NOW, exp=int(NOW) + 10)
    assert v.verify(token)
    now[0] = NOW + 11
    assert isinstance(rejected(v, token), errors.ExpiredTokenError)


def test_only_a_cached_token_is_answered_from_memory(secret: str) -> None:
    v = verifier(secret)
    token = mint(secret, now=NOW)
    assert not v.answers_from_memory(token)  # never seen: a signature to compute
    v.verify(token)
    assert v.answers_from_memory(token)
    assert not v.answers_from_memory(mint(secret, now=NOW, user_id="other"))
    assert not v.answers_from_memory(token.encode())  # verify() would refuse it, not a hit


def test_a_cached_token_is_not_answered_from_memory_while_a_revocation_sync_is_due(
    secret: str, tmp_path: Path
) -> None:
    tick = [0.0]
    store = RevocationStore(SqliteDatabase(tmp_path / "r.db"), monotonic=lambda: tick[0]).open()
    v = shared_secret_verification(SigningKeys.from_secrets(secret), None, store, clock=lambda: NOW)
    token = mint(secret, now=NOW)
    v.verify(token)
    assert v.answers_from_memory(token)
    tick[0] += 0.6  # the 0.5 s interval is over: the next check reads the database
    assert store.sync_due
    assert not v.answers_from_memory(token)
    v.verify(token)  # that read
    assert not store.sync_due
    assert v.answers_from_memory(token)


def test_cache_is_bounded(secret: str) -> None:
    v = shared_secret_verification(
        SigningKeys.from_secrets(secret), clock=lambda: NOW, cache_size=100
    )
    for i in range(250):
        v.verify(mint(secret, now=NOW, user_id=f"u{i}"))
    assert v.cache_len == 100


def test_reload_with_a_new_secret_drops_cached_tokens(
    monkeypatch: pytest.MonkeyPatch, auth_enabled: str
) -> None:
    token = mint(auth_enabled)
    assert auth.validate_token(token) is not None
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "z" * 40)
    auth.reload_auth_config()
    assert auth.validate_token(token) is None
    assert AuthConfig().secret == "z" * 40


def test_created_token_carries_the_configured_audience(
    monkeypatch: pytest.MonkeyPatch, auth_enabled: str
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_AUDIENCE", "session-buddy")
    auth.reload_auth_config()
    token = auth.generate_test_token("alice")
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == "session-buddy"
    assert auth.validate_token(token) is not None


def test_full_cache_under_concurrent_threads_never_raises(secret: str) -> None:
    v = shared_secret_verification(
        SigningKeys.from_secrets(secret), clock=lambda: NOW, cache_size=50
    )
    pools = [[mint(secret, now=NOW, user_id=f"t{t}-{i}") for i in range(300)] for t in range(8)]
    failures: list[BaseException] = []

    def worker(tokens: list[str]) -> None:
        try:
            for _ in range(3):
                for token in tokens:
                    v.verify(token)
        except BaseException as exc:  # any escape is a failure
            failures.append(exc)

    run_in_threads(worker, pools)
    assert failures == []
    assert v.cache_len <= 50 + len(pools)
