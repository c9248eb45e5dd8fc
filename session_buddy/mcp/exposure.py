"""What serving over HTTP on a given address exposes, decided before the server starts.

On a loopback address only this machine can connect, and the MCP SDK checks ``Host`` and
``Origin`` itself (DNS-rebinding protection). Beyond loopback three things change, and
:func:`review_http_exposure` says what to do about each:

* **Protected mode** (as Redis has): with authentication disabled, anyone who reaches the
  port could read and write every session, so the server refuses to start — unless the
  operator asked for it (``--allow-unauthenticated`` / ``SESSION_BUDDY_ALLOW_UNAUTHENTICATED``).
* **Host and Origin**: the SDK's check is off beyond loopback; ``SESSION_BUDDY_ALLOWED_HOSTS``
  and ``SESSION_BUDDY_ALLOWED_ORIGINS`` turn it back on (:func:`transport_security`).
  Without them the server warns that any ``Host`` is accepted.
* **Audience binding**: while tokens without ``aud`` are accepted, a token minted (without
  an audience) for another service that shares the secret is accepted here too; the
  server warns and names ``SESSION_BUDDY_REQUIRE_AUDIENCE=true``.

Pure functions over :class:`~session_buddy.config.Settings`; the edge (``serve``) logs or
refuses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from session_buddy.config import Settings

if TYPE_CHECKING:  # the SDK is imported only when a server is built, not to review a bind
    from mcp.server.transport_security import TransportSecuritySettings

LOOPBACK_NAMES = frozenset({"localhost"})
# What the SDK allows by itself when bound to 127.0.0.1, localhost or ::1.
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")

UNAUTHENTICATED_FIX = (
    "set a secret (SESSION_BUDDY_SECRET, or session-buddy secret generate --save), or pass "
    "--allow-unauthenticated "
    "(SESSION_BUDDY_ALLOW_UNAUTHENTICATED=true) if this is on purpose"
)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1,
    localhost). Any other name counts as beyond loopback."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def transport_security(host: str, settings: Settings) -> TransportSecuritySettings | None:
    """The SDK's Host/Origin checking for a server bound to ``host``.

    ``SESSION_BUDDY_ALLOWED_HOSTS`` (``host:port``, or ``host:*`` for any port) turns it on
    with those hosts — plus the loopback ones when bound to loopback — and
    ``SESSION_BUDDY_ALLOWED_ORIGINS`` (empty: only requests without an ``Origin`` header,
    which is what non-browser clients send). Without allowed hosts: None, the SDK's own
    choice (checking on loopback, off beyond it).
    """
    if not settings.allowed_hosts:
        return None
    loopback = is_loopback(host)
    from mcp.server.transport_security import TransportSecuritySettings

    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*(LOOPBACK_HOSTS if loopback else ()), *settings.allowed_hosts],
        allowed_origins=[*(LOOPBACK_ORIGINS if loopback else ()), *settings.allowed_origins],
    )


@dataclass(frozen=True)
class ExposureReview:
    """``refusal`` (why the server must not start) or None; ``warnings`` to log once each."""

    refusal: str | None = None
    warnings: tuple[str, ...] = field(default=())


def review_http_exposure(
    host: str, settings: Settings, *, auth_enabled: bool, allow_unauthenticated: bool = False
) -> ExposureReview:
    """What binding ``host`` over HTTP with ``settings`` calls for (see the module doc)."""
    if is_loopback(host):
        return ExposureReview()
    if not auth_enabled and not (allow_unauthenticated or settings.allow_unauthenticated):
        return ExposureReview(
            refusal=(
                f"Refusing to serve over HTTP on {host} with authentication disabled: anyone "
                "who can reach this port could read and change every session"
            )
        )
    warnings: list[str] = []
    if not auth_enabled:
        warnings.append(
            f"⚠️ Serving over HTTP on {host} WITHOUT authentication "
            "(--allow-unauthenticated): anyone who can reach this port acts as 'anonymous'"
        )
    if not settings.allowed_hosts:
        warnings.append(
            f"⚠️ Bound to {host}: any Host header is accepted (DNS-rebinding protection is "
            "off beyond loopback). Set SESSION_BUDDY_ALLOWED_HOSTS (e.g. "
            "sessions.example.com:*) to accept only the names clients use"
        )
    if auth_enabled and not settings.require_audience:
        warnings.append(
            f"⚠️ Bound to {host} while tokens without an audience (aud) are accepted: a token "
            "minted without aud for another service that shares the secret works here too. "
            "Once your clients mint tokens with aud "
            f"{settings.audience!r}, set SESSION_BUDDY_REQUIRE_AUDIENCE=true"
        )
    return ExposureReview(warnings=tuple(warnings))
