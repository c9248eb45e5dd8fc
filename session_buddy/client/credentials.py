"""Where the client's token comes from: a fixed token, or tokens minted from a shared secret.

Minted tokens are what Mahavishnu sends: HS256, ``user_id`` and ``sub``, ``iss``, ``iat``,
``exp``, ``type="access"``, plus ``aud`` (the server's audience), and ``role`` and
``scopes`` when given. A new one is minted when less than a fifth of the lifetime is
left, so a token never expires in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from pydantic import ValidationError

from session_buddy.auth.errors import MIN_SECRET_LENGTH, SECRET_TOO_SHORT
from session_buddy.auth.tokens import issue_token
from session_buddy.client.errors import SessionBuddyAuthError
from session_buddy.config import (
    Settings,
    load_settings,
    mahavishnu_secret,
)

RENEW_FRACTION = 0.2


class TokenSource(Protocol):
    """Gives the token to send with the next request (None: send none)."""

    def current(self) -> str | None: ...


class NoToken:
    """No credentials: for servers with authentication disabled, or to test refusals."""

    def current(self) -> None:
        return None


class StaticToken:
    """A token minted elsewhere (e.g. ``session-buddy token create``); never renewed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def current(self) -> str:
        return self._token

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"


class MintedTokens:
    """Tokens signed here with the shared secret, renewed before they expire."""

    def __init__(
        self,
        secret: str,
        *,
        user_id: str = "mahavishnu",
        role: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        scopes: Sequence[str] | None = None,
        lifetime_minutes: float = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < MIN_SECRET_LENGTH:
            raise SessionBuddyAuthError(
                SECRET_TOO_SHORT, reason=SECRET_TOO_SHORT.removeprefix("❌ ")
            )
        self._secret = secret
        self.user_id = user_id
        self._claims: dict[str, str | list[str]] = {}
        if role is not None:
            self._claims["role"] = role
        if audience is not None:
            self._claims["aud"] = audience
        if scopes is not None:
            self._claims["scopes"] = list(scopes)
        self._issuer = issuer if issuer is not None else user_id
        self._lifetime = lifetime_minutes * 60
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.minted = 0

    def current(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._renew_at:
                self._token = issue_token(
                    self.user_id,
                    self._secret,
                    now=now,
                    expire_seconds=self._lifetime,
                    issuer=self._issuer,
                    additional_claims=self._claims,
                )
                self._renew_at = int(now) + self._lifetime * (1 - RENEW_FRACTION)
                self.minted += 1
            return self._token

    def __repr__(self) -> str:
        return f"MintedTokens(user_id={self.user_id!r}, secret=<hidden>)"


def _settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        names = ", ".join(
            "SESSION_BUDDY_" + str(e["loc"][0]).upper() for e in exc.errors() if e["loc"]
        )
        raise SessionBuddyAuthError(
            f"❌ Invalid configuration: {names}", reason=f"Invalid configuration: {names}"
        ) from None


def secret_from_environment() -> tuple[str | None, Settings]:
    """The secret to mint with, first found of: ``MAHAVISHNU_AUTH__SECRET`` (what
    Mahavishnu's settings read), ``MAHAVISHNU_AUTH_SECRET`` (what its docs and its
    mcp-common service auth use), then session-buddy's own (``SESSION_BUDDY_SECRET``, its
    file, the ``.env`` file of its data dir, and last ``BODAI_SHARED_SECRET``).

    The client runs in the caller's process (Mahavishnu), whose shared secret has its
    own variables; :mod:`session_buddy.config` reads them all.
    """
    settings = _settings()
    mahavishnu = mahavishnu_secret()
    if mahavishnu:
        return mahavishnu, settings
    try:
        return settings.resolved_secret(), settings
    except ValueError as exc:
        raise SessionBuddyAuthError(str(exc), reason=str(exc)) from None
