"""``TokenVerification``: a presented token in, the Principal it proves out — the same for
every verifier.

It bounds and normalises the token, answers a token it verified before from a bounded
cache (keyed by the exact string a client keeps sending), else asks the verifier its
issuer chooses (:class:`~session_buddy.auth.verifiers.IssuerVerifiers`), and checks
revocation either way. A cache hit still re-checks what can change after verification:
expiry (against the clock and leeway) and revocation; a Principal whose verifier's answer
holds only until a time (``verified_until``: introspection) is verified again after it.
A change of secret or verifiers needs a new ``TokenVerification``; reloading the
configuration builds one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

from session_buddy.auth import errors
from session_buddy.auth.config import AuthConfig
from session_buddy.auth.principal import Principal
from session_buddy.auth.revocation import RevocationStore
from session_buddy.auth.tokens import (
    MAX_TOKEN_BYTES,
    finite_number,
    normalize_token,
    token_digest,
)
from session_buddy.auth.verifiers import IssuerVerifiers, configured_verifiers
from session_buddy.store.errors import StorageError

DEFAULT_CACHE_SIZE = 10_000


def revocation_key(claims: Mapping[str, Any], token: str) -> str:
    """A token's ``jti`` when it has one (ours do), else the SHA-256 of the token."""
    jti = claims.get("jti")
    return f"jti:{jti}" if isinstance(jti, str) and jti else f"sha256:{token_digest(token)}"


class TokenVerification:
    """Verifies tokens with ``verifiers``, remembering the ones it accepted.

    ``revocations`` (None: nothing is ever revoked, for tests) is opened by the first
    check that needs it; a database that cannot be read then refuses every token with
    :class:`~session_buddy.auth.errors.RevocationUnavailableError` (503).
    """

    def __init__(
        self,
        verifiers: IssuerVerifiers,
        revocations: RevocationStore | None = None,
        *,
        leeway_seconds: float = 0,
        max_token_bytes: int = MAX_TOKEN_BYTES,
        clock: Callable[[], float] = time.time,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.verifiers = verifiers
        self._revocations = revocations
        self._leeway = leeway_seconds
        self._max_token_bytes = max_token_bytes
        self._clock = clock
        self._cache_size = cache_size
        # token string -> (principal, exp as PyJWT compares it or None, revocation key)
        # An OrderedDict: evicting the oldest entry of a plain dict is not O(1).
        self._cache: OrderedDict[str, tuple[Principal, int | None, str]] = OrderedDict()

    @classmethod
    def for_config(
        cls,
        config: AuthConfig,
        revocations: RevocationStore | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> TokenVerification:
        """The verification ``config`` sets up: its verifiers, its leeway."""
        return cls(
            configured_verifiers(config, clock=clock),
            revocations,
            leeway_seconds=config.leeway_seconds,
            clock=clock,
        )

    @property
    def enabled(self) -> bool:
        """Whether any verifier is configured ("authentication enabled")."""
        return self.verifiers.enabled

    def verify(self, raw: object) -> Principal:
        """The Principal a token proves, or an ``AuthError``."""
        if isinstance(raw, str):
            entry = self._cache.get(raw)
            if entry is not None:
                principal, exp, key = entry
                if exp is not None and exp <= self._clock() - self._leeway:
                    self._cache.pop(raw, None)
                    raise errors.ExpiredTokenError("exp is in the past (cached token)")
                if principal.verified_until is None or self._clock() < principal.verified_until:
                    if self._is_revoked(key):
                        raise errors.RevokedTokenError("token is revoked (cached token)")
                    return principal
                self._cache.pop(raw, None)  # its verifier must be asked again
        token = normalize_token(raw, self._max_token_bytes)  # refuses non-strings
        principal = self.verifiers.verify(token)
        key = revocation_key(principal.claims, token)
        if self._is_revoked(key):
            raise errors.RevokedTokenError("token is revoked")
        if isinstance(raw, str):
            self._remember(raw, principal, key)
        return principal

    def answers_from_memory(self, raw: object) -> bool:
        """Whether :meth:`verify` would answer ``raw`` without computing a signature or
        reading the database: a cached token, and no revocation sync due. (An async
        caller may then verify on its event loop rather than hand the work to a thread.)"""
        store = self._revocations
        return (
            isinstance(raw, str)
            and raw in self._cache
            and (store is None or (store.opened and not store.sync_due))
        )

    def check_usable(self) -> None:
        """Raise what would refuse every token now — an unusable verifier configuration
        (a short secret), revocations that cannot be read — else return. Calls without a
        token fail closed on these too."""
        self.verifiers.check_configuration()
        self.open_revocations()

    def open_revocations(self) -> RevocationStore | None:
        """The revocation store, opened (``RevocationUnavailableError`` if it cannot be)."""
        store = self._revocations
        if store is not None and not store.opened:
            try:
                store.open()
            except StorageError as exc:
                raise errors.RevocationUnavailableError(str(exc), storage=exc) from None
        return store

    def revoke(self, token: str, claims: Mapping[str, Any]) -> bool:
        """Revoke a verified token; True when this call recorded the revocation."""
        expires_at = finite_number(claims.get("exp"))
        if expires_at is None:  # the verifiers refuse such a token; never a crash here
            raise errors.InvalidClaimError("exp is not a number")
        store = self.open_revocations()
        if store is None:
            raise errors.RevocationUnavailableError("no revocation store")
        return store.revoke(revocation_key(claims, token), expires_at)

    def _is_revoked(self, key: str) -> bool:
        store = self.open_revocations()
        return store is not None and store.is_revoked(key)

    def _remember(self, raw: str, principal: Principal, key: str) -> None:
        if len(self._cache) >= self._cache_size:
            # Drop the oldest entry: bounded memory. popitem is one C call, so threads
            # verifying at the same time (sync tools run in a pool) cannot trip over it.
            with suppress(KeyError):
                self._cache.popitem(last=False)
        exp = principal.claims.get("exp")
        self._cache[raw] = (principal, None if exp is None else int(exp), key)

    @property
    def cache_len(self) -> int:
        return len(self._cache)
