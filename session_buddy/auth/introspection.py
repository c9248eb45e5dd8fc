"""``Introspection``: ask an identity provider whether an opaque access token is active
(RFC 7662), as a confidential client, and remember its answer for a while.

An answer is kept until the token's ``exp`` and at most :data:`MAX_CACHE_SECONDS`, so a
token the provider revokes is refused here within a minute; "not active" is kept as long.
The cache is bounded. The provider's answer is only asked for here; the claims it gives
are checked by the verifier like a JWT's.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import httpx

from session_buddy.auth import errors
from session_buddy.auth.provider_keys import MAX_DOCUMENT_BYTES, ProviderKeys
from session_buddy.auth.tokens import finite_number

MAX_CACHE_SECONDS = 60.0
DEFAULT_CACHE_SIZE = 10_000


class Introspection:
    """RFC 7662 for one provider (its endpoint from its metadata), as ``client_id``."""

    def __init__(
        self,
        keys: ProviderKeys,
        client_id: str,
        client_secret: str,
        *,
        clock: Callable[[], float] = time.time,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._keys = keys
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._clock = clock
        self._cache_size = cache_size
        # sha256(token) -> (claims or None for inactive, wall-clock time the answer expires)
        self._cache: OrderedDict[bytes, tuple[dict[str, Any] | None, float]] = OrderedDict()

    def claims(self, token: str) -> tuple[dict[str, Any], float]:
        """The provider's claims for an active ``token`` and until when they may be relied
        on; ``InactiveTokenError`` when it is not active, ``ProviderUnavailableError``
        when the provider cannot say."""
        key = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        entry = self._cache.get(key)
        if entry is None or entry[1] <= now:
            entry = self._ask(token, now)
            self._remember(key, entry)
        claims, until = entry
        if claims is None:
            raise errors.InactiveTokenError("the provider says the token is not active")
        return claims, until

    def _ask(self, token: str, now: float) -> tuple[dict[str, Any] | None, float]:
        endpoint = self._keys.metadata().introspection_endpoint
        if endpoint is None:
            raise errors.ProviderUnavailableError(
                f"{self._keys.issuer} publishes no introspection_endpoint"
            )
        try:
            response = self._keys.http().post(
                endpoint,
                data={"token": token, "token_type_hint": "access_token"},
                auth=self._auth,
            )
        except httpx.HTTPError as exc:
            raise errors.ProviderUnavailableError(
                f"{endpoint} cannot be reached: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:  # 401: our client id or secret is wrong
            raise errors.ProviderUnavailableError(f"{endpoint} answered {response.status_code}")
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise errors.ProviderUnavailableError(f"{endpoint} answered over 512 KiB")
        try:
            answer = response.json()
        except ValueError:
            raise errors.ProviderUnavailableError(f"{endpoint} did not answer JSON") from None
        if not isinstance(answer, dict):
            raise errors.ProviderUnavailableError(f"{endpoint} did not answer a JSON object")
        latest = now + MAX_CACHE_SECONDS
        if answer.get("active") is not True:
            return None, latest
        exp = finite_number(answer.get("exp"))
        return answer, latest if exp is None else min(latest, exp)

    def _remember(self, key: bytes, entry: tuple[dict[str, Any] | None, float]) -> None:
        if len(self._cache) >= self._cache_size:
            with suppress(KeyError):
                self._cache.popitem(last=False)
        self._cache[key] = entry
