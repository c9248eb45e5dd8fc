"""``JWTManager``: create, verify, refresh and revoke tokens for one configuration.

It also decides who a caller is (:meth:`JWTManager.authenticate`): the rules for a
missing token, an optional one, an HTTP bearer identity, and roles.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from types import EllipsisType
from typing import Any

from session_buddy.auth import errors
from session_buddy.auth.audit import AuthFailureLog
from session_buddy.auth.config import AuthConfig
from session_buddy.auth.principal import ANONYMOUS, Principal
from session_buddy.auth.revocation import RevocationStore, shared_revocation_store
from session_buddy.auth.scopes import ImpliedBy, missing_scope
from session_buddy.auth.tokens import (
    access_claims,
    finite_number,
    issue_token,
    normalize_token,
    presented,
    sign_claims,
)
from session_buddy.auth.trail import AuthDecision, DecisionRecorder
from session_buddy.auth.verifier import TokenVerifier, revocation_key
from session_buddy.store import Database, StorageError, database_for

logger = logging.getLogger(__name__)

_TIME_CLAIMS = ("exp", "iat", "nbf", "jti", "refreshed_at")


class JWTManager:
    """Token operations bound to one :class:`AuthConfig` (the environment's, by default).

    ``database`` is where revocations live (default: the shared database of the
    configuration's data dir); ``revocations`` replaces the store itself (tests). Both
    are opened on first use, so creating tokens never touches the database.
    """

    def __init__(
        self,
        config: AuthConfig | None = None,
        *,
        database: Database | None = None,
        revocations: RevocationStore | None = None,
        failure_log: AuthFailureLog | None = None,
        decisions: DecisionRecorder | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config if config is not None else AuthConfig()
        self._clock = clock
        self._database = database
        self._revocations = revocations
        self._verifier: TokenVerifier | None = None
        self._build_lock = threading.RLock()
        self.failure_log = failure_log or AuthFailureLog()
        # Every decision of authenticate(), allowed or denied (the audit trail, metrics);
        # none is built while it is empty (a falsy Recorders).
        self.decisions = decisions

    # -- plumbing -------------------------------------------------------------------

    @property
    def revocations(self) -> RevocationStore:
        """The process's revocation store for this database, opened on first use."""
        if self._revocations is None:
            with self._build_lock:  # tool threads may race to the first call
                if self._revocations is None:
                    try:
                        database = self._database or database_for(self.config.settings)
                        self._revocations = shared_revocation_store(database.open())
                    except StorageError as exc:
                        raise errors.RevocationUnavailableError(str(exc), storage=exc) from None
        return self._revocations

    @property
    def built_verifier(self) -> TokenVerifier | None:
        """The verifier if :attr:`verifier` has built it (building it may read the
        database or raise; this never does)."""
        return self._verifier

    @property
    def verifier(self) -> TokenVerifier:
        if self._verifier is None:
            keys = self.config.signing_keys()  # SecretConfigError: fail closed
            revocations = self.revocations
            with self._build_lock:
                if self._verifier is None:
                    self._verifier = TokenVerifier(
                        keys, self.config.token_policy(), revocations, clock=self._clock
                    )
        return self._verifier

    # -- the original design note's API ---------------------------------------------

    def create_token(
        self,
        user_id: str,
        additional_claims: Mapping[str, Any] | None = None,
        *,
        audience: str | EllipsisType | None = ...,
    ) -> str:
        """A new access token for ``user_id``, signed with the current secret.

        It carries ``user_id`` and ``sub`` (both ``user_id``) and ``aud``: by default this
        server's audience (``SESSION_BUDDY_AUDIENCE``, default ``session-buddy``), or
        ``audience`` — another service's name, or None for no ``aud`` at all (for
        verifiers that refuse any, such as Mahavishnu's ``JWTManager``). An ``aud`` in
        ``additional_claims`` wins. A reserved claim there raises ``ValueError``.
        """
        claims = dict(additional_claims or {})
        aud = self.config.audience if audience is ... else audience
        if aud is not None:
            claims.setdefault("aud", aud)
        return issue_token(
            user_id,
            self.config.secret,
            now=self._clock(),
            expire_seconds=self.config.expire_minutes * 60,
            additional_claims=claims,
        )

    def verify_token(self, token: object) -> dict[str, Any]:
        """The token's claims, or an :class:`~session_buddy.auth.errors.AuthError`."""
        return dict(self.verifier.verify(token))

    def refresh_token(self, token: object) -> str:
        """Exchange a valid token for a new one and revoke the old one (rotation).

        The new token keeps the identity and custom claims, gets a new ``jti`` and a
        fresh ``exp`` (never past ``auth_time`` + the maximum lifetime), records
        ``refreshed_at``, and keeps ``auth_time`` — when the first token of the family
        was issued. A family older than the maximum lifetime is not refreshed.
        """
        claims = self.verify_token(token)
        now = self._clock()
        auth_time = _family_start(claims, now + self.config.leeway_seconds)
        max_lifetime = self.config.max_token_lifetime_hours * 3600
        if now - auth_time >= max_lifetime:
            raise errors.TokenLifetimeExceededError(
                f"token family is {int(now - auth_time)} s old (limit {int(max_lifetime)} s)"
            )
        issued_at = int(now)
        kept = {k: v for k, v in claims.items() if k not in _TIME_CLAIMS}
        kept.update(auth_time=int(auth_time), refreshed_at=issued_at)
        expires_at = int(min(issued_at + self.config.expire_minutes * 60, auth_time + max_lifetime))
        new_token = sign_claims(
            access_claims(kept, issued_at=issued_at, expires_at=expires_at), self.config.secret
        )
        # Revoke first and only hand out the new token if this call did the revoking:
        # two concurrent refreshes of one token (any processes) cannot both succeed.
        if not self._revoke_verified(normalize_token(token), claims):
            raise errors.RevokedTokenError("token was refreshed or revoked concurrently")
        return new_token

    def revoke_token(self, token: object) -> None:
        """Revoke a token we would accept now (or that is only revoked already)."""
        try:
            claims = self.verify_token(token)
        except errors.RevokedTokenError:
            return
        self._revoke_verified(normalize_token(token), claims)

    def _revoke_verified(self, token: str, claims: Mapping[str, Any]) -> bool:
        """Revoke; True when this call recorded the revocation (it was not revoked yet)."""
        expires_at = finite_number(claims.get("exp"))
        if expires_at is None:  # the verifier refuses such a token; never a crash here
            raise errors.InvalidClaimError("exp is not a number")
        return self.revocations.revoke(revocation_key(dict(claims), token), expires_at)

    # -- who is calling --------------------------------------------------------------

    def authenticate(
        self,
        token: object = None,
        *,
        bearer: Principal | None = None,
        optional: bool = False,
        roles: Collection[str] | None = None,
        scopes: Collection[str] = (),
        implied_by: ImpliedBy | None = None,
        bearer_only: bool = False,
        tool: str | None = None,
        client: str = "local",
    ) -> Principal:
        """Turn a token argument and/or a verified bearer identity into a Principal.

        ``roles``: the token's ``role`` must be one of them. ``scopes``: the token must
        grant each (see :func:`~session_buddy.auth.scopes.missing_scope`; ``implied_by``
        names other scopes that satisfy one). ``bearer_only``: a token argument is refused
        (only the verified bearer header counts). Nothing is checked while authentication
        is disabled. Raises an ``AuthError`` (logged, rate-limited) when the caller may not
        proceed.
        """
        principal: Principal | None = None
        permission = next(iter(scopes), None)
        try:
            if bearer_only and presented(token):
                raise errors.TokenArgumentRefusedError("token argument on a bearer-only server")
            principal = self._resolve(token, bearer, optional)
            if roles is not None and principal.authenticated and principal.role not in roles:
                raise errors.RoleNotAllowedError(principal.role)
            if roles is not None and not principal.authenticated and self.config.enabled:
                raise errors.RoleNotAllowedError(None)
            if scopes and self.config.enabled:
                lacking = missing_scope(
                    principal.scopes,
                    scopes,
                    require_claim=self.config.require_scopes,
                    implied_by=implied_by,
                )
                if lacking is not None:
                    raise errors.MissingScopeError(lacking)
        except errors.AuthError as exc:
            self.failure_log.record(exc, token=token, tool=tool, client=client)
            if self.decisions:
                self.decisions.record(
                    AuthDecision.denied(
                        exc,
                        action=tool or "-",
                        permission=permission,
                        source_ip=client,
                        token=token,
                        principal=principal
                        if principal is not None and principal.authenticated
                        else None,
                    )
                )
            raise
        if self.decisions:
            self.decisions.record(
                AuthDecision.allowed(
                    principal,
                    action=tool or "-",
                    permission=permission,
                    source_ip=client,
                    token=token,
                )
            )
        return principal

    def _resolve(self, token: object, bearer: Principal | None, optional: bool) -> Principal:
        if not self.config.enabled:
            return ANONYMOUS
        if not presented(token):
            if bearer is not None:
                return bearer
            if optional or not self.config.auth_required:
                self.verifier  # noqa: B018 - a short secret still fails closed
                return ANONYMOUS
            raise errors.TokenRequiredError("no token argument and no Authorization header")
        principal = Principal.from_claims(self.verifier.verify(token))
        if bearer is not None and bearer.user_id != principal.user_id:
            raise errors.IdentityMismatchError(
                "token argument and Authorization header name different users"
            )
        return principal


def _family_start(claims: Mapping[str, Any], latest: float) -> float:
    """When the token family began: ``auth_time``, else ``iat``; a finite, past number.

    Anything else (a signed but odd or future ``auth_time``) counts as "now", so it can
    neither crash a refresh nor extend the maximum lifetime.
    """
    for claim in ("auth_time", "iat"):
        value = finite_number(claims.get(claim))
        if value is not None and value <= latest:
            return value
    return latest
