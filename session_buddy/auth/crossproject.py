"""Signed messages between projects (Mahavishnu's wire format), and replay-safe envelopes.

``sign_message`` is exactly Mahavishnu's::

    hmac.new(secret.encode(), json.dumps(message, sort_keys=True).encode(), sha256).hexdigest()

An envelope wraps a message with ``from_project``, ``to_project``, ``content`` and
``timestamp`` (plus a random ``nonce`` in envelopes we create); verification rejects
envelopes that are stale (older than 5 minutes), from the future (more than 30 s ahead),
undated, or already seen.
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
from datetime import UTC, datetime
from typing import Any

from session_buddy.auth.errors import MIN_SECRET_LENGTH, SECRET_HINT, SECRET_TOO_SHORT

ENVELOPE_ALGORITHM = "HMAC-SHA256"
MAX_AGE_SECONDS = 300.0
MAX_FUTURE_SECONDS = 30.0
MAX_SEEN_ENTRIES = 100_000
_HEX = frozenset("0123456789abcdefABCDEF")


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


class CrossProjectAuth:
    """HMAC-SHA256 signatures over JSON messages with a secret shared between projects."""

    def __init__(self, shared_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if not isinstance(shared_secret, str) or len(shared_secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"{SECRET_TOO_SHORT}. {SECRET_HINT}")
        self._key = shared_secret.encode()
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # nonce or signature -> when it may be forgotten

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
        """True once for a fresh, correctly signed envelope; False for anything else."""
        if not isinstance(envelope, dict):
            return False
        message = envelope.get("message")
        signature = envelope.get("signature")
        if envelope.get("algorithm", ENVELOPE_ALGORITHM) != ENVELOPE_ALGORITHM:
            return False
        if not self.verify_message(message, signature):
            return False
        assert isinstance(message, dict) and isinstance(signature, str)
        if not {"from_project", "to_project", "content"} <= message.keys():
            return False
        sent_at = _timestamp_seconds(message.get("timestamp"))
        now = self._clock()
        if sent_at is None or now - sent_at > MAX_AGE_SECONDS or sent_at - now > MAX_FUTURE_SECONDS:
            return False
        nonce = message.get("nonce")
        replay_key = f"n:{nonce}" if isinstance(nonce, str) and nonce else f"s:{signature.lower()}"
        return self._first_sighting(replay_key, now)

    def _first_sighting(self, key: str, now: float) -> bool:
        with self._lock:
            if len(self._seen) >= MAX_SEEN_ENTRIES or len(self._seen) % 1024 == 0:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            if self._seen.get(key, 0.0) > now:
                return False
            self._seen[key] = now + MAX_AGE_SECONDS + MAX_FUTURE_SECONDS
            return True
