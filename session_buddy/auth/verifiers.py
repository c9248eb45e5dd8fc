"""The :class:`Verifier` protocol, and the one place that chooses a verifier by issuer.

A verifier turns a token string into the :class:`~session_buddy.auth.principal.Principal`
it proves, or raises an :class:`~session_buddy.auth.errors.AuthError`. Today there is one,
:class:`~session_buddy.auth.shared_secret.SharedSecretVerifier` (HS256, the shared secret).
A second way to authenticate — an OAuth 2.1 / OpenID provider's access tokens, with keys
from its JWKS — is one more class with these two methods, and one line in
:func:`configured_verifiers` that registers it under the provider's issuer:

* ``verify(token) -> Principal``: the signature with the verifier's *own* keys and only
  the algorithms those keys are for (never an algorithm the token names from a list of
  several families), then the claims; the Principal's ``authority`` is the provider's
  issuer, so its ``alice`` is not the shared secret's. A bad token raises the
  ``InvalidTokenError`` family (401, counted by the throttle); a fault of the verifier's
  own (keys unreachable) an error whose ``status`` is 503.
* ``check_configuration()``: raise the error every token would get because of the
  verifier's own configuration (fail closed), else return.

Everything after verification is shared by every verifier: the verified-token cache and
revocation (:class:`~session_buddy.auth.verification.TokenVerification`), identity, roles
and scopes (``JWTManager.authenticate``), the audit trail and the failure throttle.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from session_buddy.auth import errors
from session_buddy.auth.config import AuthConfig
from session_buddy.auth.introspection import Introspection
from session_buddy.auth.principal import Principal
from session_buddy.auth.provider import ProviderPolicy, ProviderVerifier
from session_buddy.auth.provider_keys import ProviderKeys
from session_buddy.auth.shared_secret import SharedSecretVerifier


class Verifier(Protocol):
    """Verifies one kind of token (see the module documentation for the contract)."""

    def verify(self, token: str) -> Principal:
        """The Principal a normalised token proves, or an ``AuthError``."""
        ...

    def check_configuration(self) -> None:
        """Raise what every token would get for this verifier's configuration, if anything."""
        ...


class IssuerVerifiers:
    """The configured verifiers, chosen by issuer; itself a :class:`Verifier`.

    A token goes to the verifier registered for its ``iss`` claim — read before anything
    is checked, only to choose — and any other token to the shared-secret verifier. The
    issuer chooses, never the token's ``alg``, and each verifier accepts only the
    algorithms of its own keys: an HS256 token that names an identity provider goes to that
    provider's verifier, which holds no shared secret, and is refused there ("alg
    confusion" cannot happen by construction). Once verified, the token's ``iss`` must
    choose the same verifier again, so no token can read one way before its signature is
    checked and another way after.
    """

    def __init__(
        self,
        shared_secret: Verifier | None = None,
        by_issuer: Mapping[str, Verifier] | None = None,
        *,
        opaque: Verifier | None = None,
    ) -> None:
        """``opaque``: the verifier (one of ``by_issuer``) that takes tokens which are no
        JWT at all — no dot, so no issuer to read — by asking its provider (RFC 7662)."""
        self._shared_secret = shared_secret
        self._by_issuer = dict(by_issuer or {})
        self._opaque = opaque

    @property
    def providers(self) -> tuple[Verifier, ...]:
        """The identity providers' verifiers, in the configured order."""
        return tuple(self._by_issuer.values())

    @property
    def enabled(self) -> bool:
        """Whether any verifier is configured: what "authentication enabled" means."""
        return self._shared_secret is not None or bool(self._by_issuer)

    def verify(self, token: str) -> Principal:
        if not self._by_issuer:  # one verifier: nothing to choose, nothing read twice
            return self._for_issuer(None).verify(token)
        if self._opaque is not None and "." not in token:
            verifier = self._opaque
        else:
            verifier = self._for_issuer(unverified_issuer(token))
        principal = verifier.verify(token)
        if self._for_issuer(principal.issuer) is not verifier:
            raise errors.InvalidIssuerError("the verified iss belongs to another verifier")
        return principal

    def check_configuration(self) -> None:
        for verifier in (self._shared_secret, *self._by_issuer.values()):
            if verifier is not None:
                verifier.check_configuration()

    def _for_issuer(self, issuer: str | None) -> Verifier:
        verifier = self._by_issuer.get(issuer) if issuer is not None else None
        if verifier is None:
            verifier = self._shared_secret
        if verifier is None:
            raise errors.InvalidIssuerError(f"no verifier for issuer {str(issuer)[:60]!r}")
        return verifier


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, read without checking anything: to choose its verifier,
    never to trust. None when the token has no readable string ``iss``."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, RecursionError):  # binascii.Error and UnicodeError are ValueErrors
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) else None


def configured_verifiers(
    config: AuthConfig, *, clock: Callable[[], float] = time.time
) -> IssuerVerifiers:
    """Every verifier ``config`` sets up, by issuer — the one place a verifier is registered.

    Authentication is enabled exactly when this registers one. The shared secret's HS256
    verifier is registered whenever a secret is configured, even an unusable one (it then
    fails closed); each identity provider's (SESSION_BUDDY_OAUTH_ISSUER) under its issuer,
    the first one also taking opaque tokens when an introspection client is configured.
    Nothing is fetched here: a provider is discovered when its first token arrives.
    """
    shared_secret = (
        SharedSecretVerifier(config.signing_keys, config.token_policy(), clock=clock)
        if config.secret_configured
        else None
    )
    providers: dict[str, ProviderVerifier] = {}
    opaque: ProviderVerifier | None = None
    for issuer in config.oauth_issuers:
        keys = ProviderKeys(issuer, clock=clock)
        client = config.introspection_client if opaque is None else None
        introspection = None if client is None else Introspection(keys, *client, clock=clock)
        policy = ProviderPolicy(issuer, config.oauth_audiences, config.leeway_seconds)
        providers[issuer] = ProviderVerifier(policy, keys, introspection=introspection, clock=clock)
        if introspection is not None:
            opaque = providers[issuer]
    return IssuerVerifiers(shared_secret, providers, opaque=opaque)
