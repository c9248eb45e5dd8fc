"""``SharedSecretVerifier``: HS256 access tokens signed with the shared secret.

The secret every token of session-buddy, Mahavishnu and mcp-common's service tokens is
signed with (current, or a previous one during a rotation). Its tokens' identities share
one namespace (``Principal.authority`` None), whatever their ``iss`` claim says.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from session_buddy.auth.principal import Principal
from session_buddy.auth.tokens import SigningKeys, TokenPolicy, decode_access_token


class SharedSecretVerifier:
    """Verifies HS256 tokens against the shared secrets, by :func:`decode_access_token`.

    ``keys`` gives the secrets; it raises ``SecretConfigError`` while they are unusable
    (too short, an unreadable file), and every token then fails closed with that error.
    It is called when a token is first checked, not here.
    """

    def __init__(
        self,
        keys: Callable[[], SigningKeys],
        policy: TokenPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._load_keys = keys
        self._keys: SigningKeys | None = None
        self.policy = policy
        self._clock = clock

    def verify(self, token: str) -> Principal:
        claims = decode_access_token(token, self._signing_keys(), self.policy, self._clock())
        return Principal.from_claims(claims)

    def check_configuration(self) -> None:
        self._signing_keys()

    def _signing_keys(self) -> SigningKeys:
        keys = self._keys
        if keys is None:  # threads racing here compute the same keys; either may win
            keys = self._keys = self._load_keys()
        return keys
