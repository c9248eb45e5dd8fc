"""``ProviderVerifier``: access tokens of an OAuth 2.1 / OpenID identity provider.

Registered under the provider's issuer by
:func:`~session_buddy.auth.verifiers.configured_verifiers` (``SESSION_BUDDY_OAUTH_ISSUER``),
it verifies what the provider issues for this server:

* JWT access tokens (RFC 9068): the signature with a key from the provider's JWKS
  (:class:`~session_buddy.auth.provider_keys.ProviderKeys`), by PyJWT, with only the
  algorithm that key is for. The token's ``alg`` must be that algorithm: an HS256 token
  naming the issuer is refused, whatever it was signed with ("alg confusion").
* Opaque access tokens, when an introspection client is configured: the provider's own
  answer (RFC 7662, :class:`~session_buddy.auth.introspection.Introspection`).

Then the same claim rules for both (:func:`check_provider_claims`, a pure function):
``iss`` exactly the issuer, ``aud`` naming the resource URL or the configured audience,
``exp`` required, ``nbf``/``iat`` with the server's leeway, ``sub`` the caller. The
Principal it proves is bound to the issuer (``authority``): the provider's ``alice`` is not
the shared secret's ``alice``. Everything after (revocation by ``jti``, scopes, audit,
throttle) is shared with every verifier.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.types import Options

from session_buddy.auth import errors
from session_buddy.auth.introspection import Introspection
from session_buddy.auth.principal import Principal
from session_buddy.auth.provider_keys import ASYMMETRIC_ALGORITHMS, KeysStatus, ProviderKeys
from session_buddy.auth.tokens import check_identity, check_time_claim_types

# RFC 9068 §2.1: "at+jwt" (or its media type); plain JWT and no typ, as many providers send.
ACCESS_TOKEN_TYPES = frozenset({None, "at+jwt", "application/at+jwt", "jwt"})
# PyJWT checks the signature and the JSON; the claims are ours (the clock is passed in).
_SIGNATURE_ONLY: Options = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}


@dataclass(frozen=True, slots=True)
class ProviderPolicy:
    """What one provider's acceptable token looks like: its ``issuer``, the ``audiences``
    of which ``aud`` must name one (the resource URL, and SESSION_BUDDY_OAUTH_AUDIENCE),
    the leeway for times."""

    issuer: str
    audiences: tuple[str, ...]
    leeway_seconds: float = 0


def check_provider_claims(claims: Mapping[str, Any], policy: ProviderPolicy, now: float) -> str:
    """Check a provider token's claims (signature already verified, or the provider's own
    introspection answer); returns the caller's subject, or raises an ``AuthError``."""
    if claims.get("iss") != policy.issuer:
        raise errors.InvalidIssuerError("iss is not this provider's issuer")
    if claims.get("exp") is None:
        raise errors.InvalidClaimError("exp is missing")
    check_time_claim_types(claims)
    leeway = policy.leeway_seconds
    for claim in ("iat", "nbf"):
        if claim in claims and float(claims[claim]) > now + leeway:
            raise errors.ImmatureTokenError(f"{claim} is in the future")
    if float(claims["exp"]) <= now - leeway:
        raise errors.ExpiredTokenError("exp is in the past")
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud
    if not named or not isinstance(named, list) or any(not isinstance(a, str) for a in named):
        raise errors.ProviderAudienceError("aud is missing or not a string or list of strings")
    if not any(audience in named for audience in policy.audiences):
        raise errors.ProviderAudienceError("aud names neither the resource nor the audience")
    subject = check_identity(claims.get("sub"), "sub")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise errors.InvalidClaimError("jti is not a string")
    return subject


class ProviderVerifier:
    """Verifies one identity provider's access tokens (see the module documentation)."""

    def __init__(
        self,
        policy: ProviderPolicy,
        keys: ProviderKeys,
        *,
        introspection: Introspection | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy
        self.keys = keys
        self.introspection = introspection
        self._clock = clock

    @property
    def issuer(self) -> str:
        return self.policy.issuer

    @property
    def takes_opaque_tokens(self) -> bool:
        """Whether tokens that are no JWT at all are this verifier's (introspection)."""
        return self.introspection is not None

    def verify(self, token: str) -> Principal:
        if "." not in token:
            return self._introspected(token)
        header = _header(token)
        alg = header.get("alg")
        if alg not in ASYMMETRIC_ALGORITHMS:
            raise errors.ProviderAlgorithmError(f"header alg {str(alg)[:20]!r} is not asymmetric")
        typ = header.get("typ")
        if (typ.lower() if isinstance(typ, str) else typ) not in ACCESS_TOKEN_TYPES:
            raise errors.ProviderTokenTypeError(f"header typ {str(typ)[:30]!r}")
        if "crit" in header:
            raise errors.CriticalHeaderError("header carries crit")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise errors.MalformedTokenError("header kid is not a string")
        key = self.keys.key(kid)
        if alg != key.algorithm:
            raise errors.ProviderAlgorithmError(f"alg {alg} but key {kid!r} is {key.algorithm}")
        try:
            claims = jwt.decode(token, key.key, algorithms=[key.algorithm], options=_SIGNATURE_ONLY)
        except jwt.InvalidSignatureError:
            raise errors.ProviderSignatureError("signature does not verify") from None
        except jwt.InvalidTokenError as exc:
            raise errors.MalformedTokenError(f"not a JWS PyJWT reads: {exc}") from None
        check_provider_claims(claims, self.policy, self._clock())
        return Principal.from_claims(claims, authority=self.issuer)

    def check_configuration(self) -> None:
        """Nothing to check without asking the provider: its faults come per token (503)."""

    def open(self) -> None:
        """Discover the provider and fetch its keys now (``ProviderUnavailableError``)."""
        self.keys.open()

    def close(self) -> None:
        self.keys.close()

    def status(self) -> KeysStatus:
        return self.keys.status()

    def _introspected(self, token: str) -> Principal:
        if self.introspection is None:
            raise errors.MalformedTokenError("not a JWT, and no introspection is configured")
        claims, until = self.introspection.claims(token)
        # RFC 7662 makes iss and sub optional: the provider we asked vouches for the token,
        # and a token a client got for itself (client credentials) names that client.
        claims = dict(claims)
        claims.setdefault("iss", self.issuer)
        if "sub" not in claims and isinstance(claims.get("client_id"), str):
            claims["sub"] = claims["client_id"]
        check_provider_claims(claims, self.policy, self._clock())
        return Principal.from_claims(claims, authority=self.issuer, verified_until=until)


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise errors.MalformedTokenError(f"header is not readable: {exc}") from None
