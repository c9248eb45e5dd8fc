"""A :class:`TokenVerification` with the shared-secret verifier alone, from keys and a
policy (no configuration, no database): how the token tests reach the production path."""

from __future__ import annotations

import time
from collections.abc import Callable

from session_buddy.auth.revocation import RevocationStore
from session_buddy.auth.shared_secret import SharedSecretVerifier
from session_buddy.auth.tokens import SigningKeys, TokenPolicy
from session_buddy.auth.verification import DEFAULT_CACHE_SIZE, TokenVerification
from session_buddy.auth.verifiers import IssuerVerifiers


def shared_secret_verification(
    keys: SigningKeys,
    policy: TokenPolicy | None = None,
    revocations: RevocationStore | None = None,
    *,
    clock: Callable[[], float] = time.time,
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> TokenVerification:
    """Verification of HS256 tokens signed with ``keys`` under ``policy``, as a server
    composes it (a fresh cache; ``revocations`` opened by the first check)."""
    policy = policy if policy is not None else TokenPolicy()
    return TokenVerification(
        IssuerVerifiers(SharedSecretVerifier(lambda: keys, policy, clock=clock)),
        revocations,
        leeway_seconds=policy.leeway_seconds,
        max_token_bytes=policy.max_token_bytes,
        clock=clock,
        cache_size=cache_size,
    )
