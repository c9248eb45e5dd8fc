"""Scopes: what a verified token allows, and whether that covers what a tool needs.

A token grants scopes through ``scopes`` (a list of strings: mcp-common's ``read``,
``write``, ``delete``, ``admin``; Mahavishnu's ``JWTAuth`` mints ``["read", "execute"]``)
or, per RFC 9068, ``scope`` (one string of names separated by ASCII spaces, as RFC 6749
says: no other whitespace separates); both are read. ``admin`` allows
everything. A claim of the wrong shape grants nothing (it never means "no claim").

A token with neither claim (Mahavishnu's other token shape, and every token minted before
scopes existed) keeps full access, unless the server requires scopes
(``SESSION_BUDDY_REQUIRE_SCOPES=true``): then it grants none.

Pure functions: claims in, verdict out.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

READ = "read"
WRITE = "write"
DELETE = "delete"
ADMIN = "admin"
EXECUTE = "execute"
RELEASED_VOCABULARY = frozenset({READ, WRITE, DELETE, ADMIN})
"""The scopes mcp-common's released verifiers know; any other makes them grant nothing."""

ImpliedBy = Mapping[str, Collection[str]]
"""For a required scope, other scopes that satisfy it too (``{"write": ["execute"]}``)."""


def granted_scopes(claims: Mapping[str, Any]) -> frozenset[str] | None:
    """The scopes a token's claims grant, or None when it has no scope claim at all."""
    if "scopes" not in claims and "scope" not in claims:
        return None
    granted: set[str] = set()
    listed = claims.get("scopes")
    if isinstance(listed, list) and all(isinstance(item, str) for item in listed):
        granted.update(item for item in listed if item)
    spaced = claims.get("scope")
    if isinstance(spaced, str):
        # RFC 6749 3.3: scope-tokens separated by SP (0x20) only. str.split() would also
        # split on tabs, NBSP and other Unicode spaces ("read\u00a0admin" is no admin).
        granted.update(item for item in spaced.split(" ") if item)
    return frozenset(granted)


def provider_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """The scopes an identity provider's access token grants: ``scope``/``scopes`` (RFC
    9068); without them Entra ID's claims — ``scp`` (delegated scopes, space separated) and
    the entries of ``roles`` that name one of our scopes (application permissions, what its
    client-credentials tokens carry). A provider token naming none grants none."""
    granted = granted_scopes(claims)
    if granted is not None:
        return granted
    found: set[str] = set()
    delegated = claims.get("scp")
    if isinstance(delegated, str):
        found.update(item for item in delegated.split(" ") if item)
    roles = claims.get("roles")
    if isinstance(roles, list):
        found.update(
            item for item in roles if isinstance(item, str) and item in RELEASED_VOCABULARY
        )
    return frozenset(found)


def missing_scope(
    granted: frozenset[str] | None,
    required: Collection[str],
    *,
    require_claim: bool = False,
    implied_by: ImpliedBy | None = None,
) -> str | None:
    """The first scope of ``required`` that ``granted`` does not cover, or None.

    ``granted`` None (no scope claim) covers everything unless ``require_claim``; ``admin``
    covers everything; a scope is covered by itself or by one of ``implied_by[scope]``.
    """
    if granted is None:
        if not require_claim:
            return None
        granted = frozenset()
    if ADMIN in granted:
        return None
    alternatives = implied_by or {}
    for scope in required:
        if scope in granted or granted.intersection(alternatives.get(scope, ())):
            continue
        return scope
    return None


def is_scope_name(value: str) -> bool:
    """A scope token as RFC 6749 allows it: printable ASCII, no space, quote or backslash."""
    return bool(value) and all(0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in value)
