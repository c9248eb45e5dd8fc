"""What serving over HTTP on a given address exposes, decided before the server starts.

On a loopback address only this machine can connect, and ``Host`` and ``Origin`` are
checked (DNS-rebinding protection: a web page whose name resolves to 127.0.0.1 must not
reach the server) — on every loopback spelling, ``127.0.0.2`` or ``LOCALHOST`` as much as
``127.0.0.1``, where the SDK would check only its three. Beyond loopback three things
change, and :func:`review_http_exposure` says what to do about each:

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

from session_buddy.config import Settings, is_loopback

if TYPE_CHECKING:  # the SDK is imported only when a server is built, not to review a bind
    from mcp.server.transport_security import TransportSecuritySettings

# What the SDK allows by itself when bound to 127.0.0.1, localhost or ::1; a bind to
# another loopback spelling adds its own name.
LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
LOOPBACK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*")

UNAUTHENTICATED_FIX = (
    "set a secret (SESSION_BUDDY_SECRET, or session-buddy secret generate --save), or pass "
    "--allow-unauthenticated "
    "(SESSION_BUDDY_ALLOW_UNAUTHENTICATED=true) if this is on purpose"
)


def _loopback_names(host: str) -> tuple[list[str], list[str]]:
    """``Host`` and ``Origin`` patterns for a loopback bind: the usual three, and the bound
    name itself as given, in lower case and (for an address) in canonical form."""
    hosts, origins = list(LOOPBACK_HOSTS), list(LOOPBACK_ORIGINS)
    given = host.strip().strip("[]")
    names = [given, given.lower()]
    try:
        address = ipaddress.ip_address(given.lower())
    except ValueError:
        address = None
    if address is not None:
        names.append(str(address))
    for name in names:
        shown = f"[{name}]" if ":" in name else name
        for patterns, pattern in ((hosts, f"{shown}:*"), (origins, f"http://{shown}:*")):
            if pattern not in patterns:
                patterns.append(pattern)
    return hosts, origins


def transport_security(host: str, settings: Settings) -> TransportSecuritySettings | None:
    """The SDK's Host/Origin checking for a server bound to ``host``.

    On every loopback bind it is on, accepting the loopback names and the bound one (the
    SDK itself checks only when bound to exactly ``127.0.0.1``, ``localhost`` or ``::1``).
    ``SESSION_BUDDY_ALLOWED_HOSTS`` (``host:port``, or ``host:*`` for any port) adds names,
    and turns it on beyond loopback, with ``SESSION_BUDDY_ALLOWED_ORIGINS`` (empty: only
    requests without an ``Origin`` header, which is what non-browser clients send). Beyond
    loopback without allowed hosts: None, no checking (the server warns at start).
    """
    loopback = is_loopback(host)
    if not loopback and not settings.allowed_hosts:
        return None
    hosts, origins = _loopback_names(host) if loopback else ([], [])
    from mcp.server.transport_security import TransportSecuritySettings

    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[*hosts, *settings.allowed_hosts],
        allowed_origins=[*origins, *settings.allowed_origins],
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
