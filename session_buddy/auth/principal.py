"""Who is calling: built only from a verified token (or "anonymous" when auth is off)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from session_buddy.auth import errors
from session_buddy.auth.scopes import granted_scopes, provider_scopes
from session_buddy.auth.tokens import finite_number

PRIVILEGED_ROLES = frozenset({"admin", "orchestrator"})


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. ``claims`` is a read-only view of the token's payload.

    ``scopes`` is what the token grants (its ``scopes`` list and ``scope`` string), or
    None when it carries no scope claim (see :mod:`session_buddy.auth.scopes`).

    ``authority`` is whose namespace ``user_id`` belongs to: None for tokens signed with
    the shared secret (one namespace, whatever their ``iss`` says — as it always was), an
    identity provider's issuer for the tokens its verifier accepts, so that the provider's
    ``alice`` is not the shared secret's ``alice`` (:attr:`identity`). ``issuer`` is just
    the token's ``iss`` claim.
    """

    user_id: str
    authenticated: bool
    role: str | None = None
    issuer: str | None = None
    expires_at: float | None = None
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    scopes: frozenset[str] | None = None
    authority: str | None = None
    verified_until: float | None = None

    @property
    def identity(self) -> tuple[str | None, str]:
        """Who the caller is, bound to the namespace that vouches for it: two principals
        are the same caller only when their identities are equal."""
        return (self.authority, self.user_id)

    @property
    def owner(self) -> str:
        """The identity as the session store and the audit trail record it: ``user_id`` for
        the shared secret's tokens (as always), ``sub@issuer`` for an identity provider's,
        so the provider's ``alice`` never owns the shared secret's ``alice``'s sessions."""
        if self.authority is None:
            return self.user_id
        return f"{self.user_id}@{self.authority}"

    @property
    def client_id(self) -> str | None:
        """The OAuth client the token was issued to (RFC 9068 ``client_id``), if it says."""
        value = self.claims.get("client_id")
        return value if isinstance(value, str) and value else None

    @property
    def caller_service(self) -> str | None:
        """The calling service, for the audit trail: an identity provider's token names it
        by ``client_id`` (its issuer is in :attr:`owner`); the shared secret's by ``iss``."""
        if self.authority is not None:
            return self.client_id or self.issuer
        return self.issuer

    @property
    def is_privileged(self) -> bool:
        """Admins and orchestrators (Mahavishnu) may act on any user's sessions."""
        return self.role in PRIVILEGED_ROLES

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, Any],
        *,
        authority: str | None = None,
        verified_until: float | None = None,
    ) -> Principal:
        """The caller a verified token names (in ``authority``'s namespace).

        An identity provider's token (``authority`` set) names its caller by ``sub`` alone
        (RFC 9068), and grants the scopes :func:`~session_buddy.auth.scopes.provider_scopes`
        finds (none without a scope claim); the shared secret's names
        it by ``user_id``, else ``sub``, and without a scope claim keeps full access (the
        tokens minted before scopes existed).

        An ``exp`` that is present but no finite number a double can hold (a verifier that
        let ``10**400`` through) raises :class:`~session_buddy.auth.errors.InvalidClaimError`.
        """
        user_id = claims.get("user_id") if authority is None else None
        if user_id is None:
            user_id = claims.get("sub")
        role = claims.get("role")
        issuer = claims.get("iss")
        exp = claims.get("exp")
        expires_at = None if exp is None else finite_number(exp)
        if exp is not None and expires_at is None:
            raise errors.InvalidClaimError("exp is not a number")
        scopes = granted_scopes(claims) if authority is None else provider_scopes(claims)
        return cls(
            user_id=str(user_id),
            authenticated=True,
            role=role if isinstance(role, str) else None,
            issuer=issuer if isinstance(issuer, str) else None,
            expires_at=expires_at,
            claims=MappingProxyType(dict(claims)),
            scopes=scopes,
            authority=authority,
            verified_until=verified_until,
        )


ANONYMOUS = Principal(
    user_id="anonymous",
    authenticated=False,
    claims=MappingProxyType({"user_id": "anonymous", "auth": "disabled"}),
)
