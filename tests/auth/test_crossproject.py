"""Cross-project messages: Mahavishnu's exact signature format, and replay-safe envelopes."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from session_buddy.auth.crossproject import CrossProjectAuth, MemoryNonces

SECRET = "shared-secret-for-cross-project-tests-0123456789"
NOW = 1_800_000_000.0


def reference(message: dict) -> str:
    data = json.dumps(message, sort_keys=True).encode()
    return hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    "message",
    [
        {"a": 1},
        {"from": "mahavishnu", "to": "session-buddy", "action": "start"},
        {"text": "héllo wörld ✓ 日本語", "emoji": "🚀"},
        {"nested": {"z": [1, 2, {"y": None}], "a": True}, "n": 1.5},
        {},
    ],
)
def test_signature_matches_mahavishnu_wire_format(message: dict) -> None:
    auth = CrossProjectAuth(SECRET)
    assert auth.sign_message(message) == reference(message)
    assert auth.verify_message(message, reference(message))


def test_known_vector() -> None:
    auth = CrossProjectAuth(SECRET)
    message = {"b": 2, "a": "ü"}
    # json.dumps(sort_keys=True) -> '{"a": "\\u00fc", "b": 2}'
    expected = hmac.new(SECRET.encode(), b'{"a": "\\u00fc", "b": 2}', hashlib.sha256).hexdigest()
    assert auth.sign_message(message) == expected


def test_key_order_does_not_matter() -> None:
    auth = CrossProjectAuth(SECRET)
    assert auth.sign_message({"a": 1, "b": 2}) == auth.sign_message({"b": 2, "a": 1})


@pytest.mark.parametrize(
    ("message", "signature"),
    [
        ({"a": 1}, None),
        ({"a": 1}, 12345),
        ({"a": 1}, "zz" * 32),
        ({"a": 1}, "é" * 64),
        ({"a": 1}, "00" * 31),
        ({"a": 1}, "00" * 32),
        ({"a": object()}, "00" * 32),
        ({"a": {1, 2}}, "00" * 32),
        (["a"], "00" * 32),
        ("text", "00" * 32),
        (None, "00" * 32),
    ],
)
def test_verify_message_returns_false_and_never_raises(message: object, signature: object) -> None:
    assert CrossProjectAuth(SECRET).verify_message(message, signature) is False


def test_uppercase_hex_signature_verifies() -> None:
    auth = CrossProjectAuth(SECRET)
    assert auth.verify_message({"a": 1}, reference({"a": 1}).upper())


def test_wrong_secret_does_not_verify() -> None:
    other = CrossProjectAuth("another-secret-that-is-long-enough-000000")
    assert not other.verify_message({"a": 1}, reference({"a": 1}))


def test_short_shared_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 characters"):
        CrossProjectAuth("short")


def test_repr_hides_the_secret() -> None:
    assert SECRET not in repr(CrossProjectAuth(SECRET))


def make(now: float) -> CrossProjectAuth:
    return CrossProjectAuth(SECRET, clock=lambda: now)


def test_envelope_round_trip_and_format() -> None:
    envelope = make(NOW).sign_envelope("mahavishnu", "session-buddy", {"op": "start"})
    assert envelope["algorithm"] == "HMAC-SHA256"
    assert set(envelope["message"]) == {
        "from_project",
        "to_project",
        "content",
        "timestamp",
        "nonce",
    }
    assert envelope["signature"] == reference(envelope["message"])
    assert make(NOW + 1).verify_envelope(envelope)


def test_replayed_envelope_is_rejected() -> None:
    receiver = make(NOW)
    envelope = make(NOW).sign_envelope("mahavishnu", "session-buddy", "hi")
    assert receiver.verify_envelope(envelope)
    assert not receiver.verify_envelope(envelope)


def legacy_envelope(timestamp: object) -> dict:
    message = {"from_project": "m", "to_project": "s", "content": "x", "timestamp": timestamp}
    return {"message": message, "signature": reference(message), "algorithm": "HMAC-SHA256"}


def test_replayed_legacy_envelope_without_nonce_is_rejected() -> None:
    receiver = make(NOW)
    envelope = legacy_envelope(datetime.fromtimestamp(NOW, tz=UTC).isoformat())
    assert receiver.verify_envelope(envelope)
    assert not receiver.verify_envelope(envelope)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-299, True), (-301, False), (29, True), (31, False)],
)
def test_envelope_age_window(offset: float, accepted: bool) -> None:
    stamp = datetime.fromtimestamp(NOW, tz=UTC) + timedelta(seconds=offset)
    assert make(NOW).verify_envelope(legacy_envelope(stamp.isoformat())) is accepted


@pytest.mark.parametrize("timestamp", [None, "", "yesterday", True, float("nan"), [1]])
def test_envelope_without_a_usable_timestamp_is_rejected(timestamp: object) -> None:
    envelope = legacy_envelope(timestamp)
    if timestamp is not None and not isinstance(timestamp, float):
        pass
    assert make(NOW).verify_envelope(envelope) is False


def test_envelope_with_naive_iso_timestamp_is_taken_as_utc() -> None:
    stamp = datetime.fromtimestamp(NOW, tz=UTC).replace(tzinfo=None).isoformat()
    assert make(NOW).verify_envelope(legacy_envelope(stamp))


def test_tampered_envelope_is_rejected() -> None:
    envelope = make(NOW).sign_envelope("mahavishnu", "session-buddy", "hi")
    envelope["message"]["content"] = "rm -rf"
    assert not make(NOW).verify_envelope(envelope)


@pytest.mark.parametrize("envelope", [None, "x", [], {}, {"message": {}}, {"signature": "00"}])
def test_malformed_envelopes_are_rejected(envelope: object) -> None:
    assert make(NOW).verify_envelope(envelope) is False


# -- the recipient ----------------------------------------------------------------------


def receiving_as(name: str) -> CrossProjectAuth:
    return CrossProjectAuth(SECRET, clock=lambda: NOW, recipient=name)


@pytest.mark.parametrize("addressed_to", ["session-buddy", "session_buddy"])
def test_an_envelope_for_the_recipient_is_accepted_in_either_spelling(addressed_to: str) -> None:
    envelope = make(NOW).sign_envelope("mahavishnu", addressed_to, {"op": "sync"})
    assert receiving_as("session-buddy").verify_envelope(envelope)


@pytest.mark.parametrize("addressed_to", ["crackerjack", "Session-Buddy", "session-buddy2", ""])
def test_an_envelope_for_another_project_is_refused_and_its_nonce_kept(addressed_to: str) -> None:
    envelope = make(NOW).sign_envelope("mahavishnu", addressed_to, {"op": "sync"})
    nonces = MemoryNonces()
    ours = CrossProjectAuth(SECRET, clock=lambda: NOW, nonces=nonces, recipient="session-buddy")
    theirs = CrossProjectAuth(SECRET, clock=lambda: NOW, nonces=nonces, recipient=addressed_to)

    check = ours.check_envelope(envelope)

    assert (check.accepted, check.problem) == (False, "wrong_recipient")
    assert theirs.verify_envelope(envelope)  # not spent by the refusal


@pytest.mark.parametrize("to_project", [None, 7, ["session-buddy"], {"name": "session-buddy"}])
def test_a_recipient_that_is_not_a_string_names_no_one(to_project: object) -> None:
    message = {
        "from_project": "m",
        "to_project": to_project,
        "content": "x",
        "timestamp": datetime.fromtimestamp(NOW, tz=UTC).isoformat(),
    }
    envelope = {"message": message, "signature": reference(message), "algorithm": "HMAC-SHA256"}
    assert receiving_as("session-buddy").check_envelope(envelope).problem == "wrong_recipient"


def test_without_a_recipient_any_project_is_accepted() -> None:
    envelope = make(NOW).sign_envelope("mahavishnu", "crackerjack", "hi")
    assert make(NOW).verify_envelope(envelope)
