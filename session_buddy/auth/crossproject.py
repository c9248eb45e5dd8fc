"""Signed messages between projects (Mahavishnu's wire format), and replay-safe envelopes.

``sign_message`` is exactly Mahavishnu's::

    hmac.new(secret.encode(), json.dumps(message, sort_keys=True).encode(), sha256).hexdigest()

An envelope wraps a message with ``from_project``, ``to_project``, ``content`` and
``timestamp`` (plus a random ``nonce`` in envelopes we create); verification rejects
envelopes that are addressed to another project (when the verifier knows its own name),
stale (older than 5 minutes), from the future (more than 30 s ahead), undated, or already
seen. A project's name is compared with ``-`` and ``_`` alike: Mahavishnu writes ours
``session_buddy``, we write ``session-buddy``. "Seen" is remembered by a
:class:`NonceStore`: in memory by default (one process), or in the database
(``session_buddy.store.nonces``), where every process and every instance sharing it
refuses a replay. A refused envelope is never remembered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from session_buddy.auth.errors import MIN_SECRET_LENGTH, SECRET_HINT, SECRET_TOO_SHORT

ENVELOPE_ALGORITHM = "HMAC-SHA256"
MAX_AGE_SECONDS = 300.0
MAX_FUTURE_SECONDS = 30.0
MAX_SEEN_ENTRIES = 100_000
_HEX = frozenset("0123456789abcdefABCDEF")

EnvelopeProblem = Literal[
    "malformed",
    "bad_algorithm",
    "bad_signature",
    "missing_field",
    "wrong_recipient",
    "undated",
    "stale",
    "from_the_future",
    "replayed",
]


class NonceStore(Protocol):
    """Remembers accepted envelopes: True only the first time a key is offered."""

    def first_sighting(self, nonce_key: str, expires_at: float, now: float) -> bool: ...


class MemoryNonces:
    """A :class:`NonceStore` for one process (bounded; forgets expired keys)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # key -> when it may be forgotten

    def first_sighting(self, nonce_key: str, expires_at: float, now: float) -> bool:
        with self._lock:
            if len(self._seen) >= MAX_SEEN_ENTRIES or len(self._seen) % 1024 == 0:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            if self._seen.get(nonce_key, 0.0) > now:
                return False
            self._seen[nonce_key] = expires_at
            return True


@dataclass(frozen=True, slots=True)
class EnvelopeCheck:
    """The verdict on an envelope: accepted, or the one reason it was not."""

    accepted: bool
    problem: EnvelopeProblem | None = None
    message: dict[str, Any] | None = None

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self.problem] if self.problem else "valid"


_EXPLANATIONS: dict[EnvelopeProblem, str] = {
    "malformed": "not an envelope (a JSON object with message and signature)",
    "bad_algorithm": "signed with another algorithm than HMAC-SHA256",
    "bad_signature": "bad signature",
    "missing_field": "the message lacks from_project, to_project or content",
    "wrong_recipient": "addressed to another project (to_project names someone else)",
    "undated": "the message has no usable timestamp",
    "stale": f"stale (older than {MAX_AGE_SECONDS / 60:g} minutes)",
    "from_the_future": f"dated in the future (by more than {MAX_FUTURE_SECONDS:g} s)",
    "replayed": "already accepted once (a replay)",
}


def _timestamp_seconds(value: object) -> float | None:
    """Epoch seconds from an ISO 8601 string (naive means UTC) or a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def same_project(one: object, other: str) -> bool:
    """Whether ``one`` names the project ``other``, ``-`` and ``_`` counting alike."""
    return isinstance(one, str) and one.replace("_", "-") == other.replace("_", "-")


class CrossProjectAuth:
    """HMAC-SHA256 signatures over JSON messages with a secret shared between projects.

    ``recipient``: this project's name; envelopes whose ``to_project`` names another
    project are refused (``wrong_recipient``). None accepts any recipient.
    """

    def __init__(
        self,
        shared_secret: str,
        *,
        clock: Callable[[], float] = time.time,
        nonces: NonceStore | None = None,
        recipient: str | None = None,
    ) -> None:
        if not isinstance(shared_secret, str) or len(shared_secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"{SECRET_TOO_SHORT}. {SECRET_HINT}")
        self._key = shared_secret.encode()
        self._clock = clock
        self._nonces: NonceStore = nonces if nonces is not None else MemoryNonces()
        self.recipient = recipient

    def __repr__(self) -> str:
        return "CrossProjectAuth(shared_secret=<hidden>)"

    def sign_message(self, message: dict[str, Any]) -> str:
        """Hex HMAC-SHA256 of ``json.dumps(message, sort_keys=True)``."""
        data = json.dumps(message, sort_keys=True).encode()
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def verify_message(self, message: object, signature: object) -> bool:
        """True only for a dict message and its exact signature; never raises."""
        if not isinstance(message, dict) or not isinstance(signature, str):
            return False
        if len(signature) != 64 or not signature.isascii() or not set(signature) <= _HEX:
            return False
        try:
            expected = self.sign_message(message)
        except (TypeError, ValueError, RecursionError):
            return False
        return hmac.compare_digest(expected, signature.lower())

    def sign_envelope(self, from_project: str, to_project: str, content: Any) -> dict[str, Any]:
        """A signed envelope dated now, with a fresh nonce."""
        message = {
            "from_project": from_project,
            "to_project": to_project,
            "content": content,
            "timestamp": datetime.fromtimestamp(self._clock(), tz=UTC).isoformat(),
            "nonce": secrets.token_hex(16),
        }
        return {
            "message": message,
            "signature": self.sign_message(message),
            "algorithm": ENVELOPE_ALGORITHM,
        }

    def verify_envelope(self, envelope: object) -> bool:
        """True once for a fresh, correctly signed envelope (addressed to ``recipient``,
        when set); False for anything else.

        A database-backed :class:`NonceStore` that cannot be reached raises its
        ``StorageError`` rather than pretend the envelope is new (or a replay).
        """
        return self.check_envelope(envelope).accepted

    def check_envelope(self, envelope: object) -> EnvelopeCheck:
        """Like :meth:`verify_envelope`, with the reason for a refusal."""
        if not isinstance(envelope, dict):
            return EnvelopeCheck(False, "malformed")
        message = envelope.get("message")
        signature = envelope.get("signature")
        if envelope.get("algorithm", ENVELOPE_ALGORITHM) != ENVELOPE_ALGORITHM:
            return EnvelopeCheck(False, "bad_algorithm")
        if not isinstance(message, dict) or not isinstance(signature, str):
            return EnvelopeCheck(False, "malformed")
        if not self.verify_message(message, signature):
            return EnvelopeCheck(False, "bad_signature")
        if not {"from_project", "to_project", "content"} <= message.keys():
            return EnvelopeCheck(False, "missing_field")
        if self.recipient is not None and not same_project(message["to_project"], self.recipient):
            return EnvelopeCheck(False, "wrong_recipient")  # not ours: its nonce stays unspent
        sent_at = _timestamp_seconds(message.get("timestamp"))
        now = self._clock()
        if sent_at is None:
            return EnvelopeCheck(False, "undated")
        if now - sent_at > MAX_AGE_SECONDS:
            return EnvelopeCheck(False, "stale")
        if sent_at - now > MAX_FUTURE_SECONDS:
            return EnvelopeCheck(False, "from_the_future")
        nonce = message.get("nonce")
        seen = nonce if isinstance(nonce, str) and nonce else signature.lower()
        kind = "n" if seen is nonce else "s"
        key = f"{kind}:{hashlib.sha256(seen.encode('utf-8', 'replace')).hexdigest()}"
        # Kept until the envelope could no longer be accepted anyway.
        until = sent_at + MAX_AGE_SECONDS + MAX_FUTURE_SECONDS
        if not self._nonces.first_sighting(key, max(until, now + 1.0), now):
            return EnvelopeCheck(False, "replayed")
        return EnvelopeCheck(True, message=message)
