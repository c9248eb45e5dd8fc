"""``TokenVerifier``: token string in, verified claims out — with a bounded cache.

A client normally reuses one token for many tool calls, so verified tokens are cached by
their exact string. A cache hit still re-checks what can change after verification:
expiry (against the clock and leeway) and revocation. Secret changes are honoured because
a verifier belongs to one configuration; reloading the configuration builds a new one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from session_buddy.auth import errors
from session_buddy.auth.revocation import RevocationStore
from session_buddy.auth.tokens import (
    SigningKeys,
    TokenPolicy,
    decode_access_token,
    normalize_token,
    token_digest,
)

DEFAULT_CACHE_SIZE = 10_000


def revocation_key(claims: dict[str, Any], token: str) -> str:
    """A token's ``jti`` when it has one (ours do), else the SHA-256 of the token."""
    jti = claims.get("jti")
    return f"jti:{jti}" if isinstance(jti, str) and jti else f"sha256:{token_digest(token)}"


class TokenVerifier:
    """Verifies tokens against one set of keys and one policy."""

    def __init__(
        self,
        keys: SigningKeys,
        policy: TokenPolicy,
        revocations: RevocationStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.keys = keys
        self.policy = policy
        self.revocations = revocations
        self._clock = clock
        self._cache_size = cache_size
        # token string -> (claims, exp as PyJWT compares it, revocation key)
        # An OrderedDict: evicting the oldest entry of a plain dict is not O(1).
        self._cache: OrderedDict[str, tuple[dict[str, Any], int, str]] = OrderedDict()

    def verify(self, raw: object) -> dict[str, Any]:
        """The token's claims (shared, do not mutate), or an ``AuthError``."""
        if isinstance(raw, str):
            entry = self._cache.get(raw)
            if entry is not None:
                claims, exp, key = entry
                if exp <= self._clock() - self.policy.leeway_seconds:
                    self._cache.pop(raw, None)
                    raise errors.ExpiredTokenError("exp is in the past (cached token)")
                if self.revocations is not None and self.revocations.is_revoked(key):
                    raise errors.RevokedTokenError("token is revoked (cached token)")
                return claims
        token = normalize_token(raw, self.policy.max_token_bytes)  # refuses non-strings
        claims = decode_access_token(token, self.keys, self.policy, self._clock())
        key = revocation_key(claims, token)
        if self.revocations is not None and self.revocations.is_revoked(key):
            raise errors.RevokedTokenError("token is revoked")
        if isinstance(raw, str):
            self._remember(raw, claims, key)
        return claims

    def answers_from_memory(self, raw: object) -> bool:
        """Whether :meth:`verify` would answer ``raw`` without computing a signature or
        reading the database: a cached token, and no revocation sync due. (An async
        caller may then verify on its event loop rather than hand the work to a thread.)"""
        return (
            isinstance(raw, str)
            and raw in self._cache
            and (self.revocations is None or not self.revocations.sync_due)
        )

    def _remember(self, raw: str, claims: dict[str, Any], key: str) -> None:
        if len(self._cache) >= self._cache_size:
            # Drop the oldest entry: bounded memory. popitem is one C call, so threads
            # verifying at the same time (sync tools run in a pool) cannot trip over it.
            with suppress(KeyError):
                self._cache.popitem(last=False)
        self._cache[raw] = (claims, int(claims["exp"]), key)

    @property
    def cache_len(self) -> int:
        return len(self._cache)
