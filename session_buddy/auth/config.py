"""``AuthConfig``: the authentication view of :class:`~session_buddy.config.Settings`."""

from __future__ import annotations

import functools
from pathlib import Path

from session_buddy.auth import errors
from session_buddy.auth.tokens import ALGORITHM, SigningKeys, TokenPolicy
from session_buddy.config import SecretFileError, SecretSource, Settings

MIN_SECRET_LENGTH = errors.MIN_SECRET_LENGTH


def _too_short(where: str = "", fix: str | None = None) -> errors.SecretConfigError:
    suffix = f" ({where})" if where else ""
    detail = f"{errors.SECRET_TOO_SHORT}{suffix}. {errors.SECRET_HINT}"
    if where:
        return errors.SecretConfigError(detail, kind="previous_too_short", fix=fix)
    return errors.SecretConfigError(detail)


class AuthConfig:
    """The authentication view of one :class:`Settings` (read at the edge and passed in).

    Nothing is read while it is built: the secret (which may live in a file) is resolved
    when first asked for. ``secret_configured`` is true whenever a non-empty secret is
    configured — even a bad one — so a short secret fails closed instead of quietly
    turning authentication off. Whether authentication is enabled is the verifiers'
    answer (:func:`~session_buddy.auth.verifiers.configured_verifiers`), not this one's.
    """

    algorithm = ALGORITHM

    def __init__(self, settings: Settings, *, resource_url: str | None = None) -> None:
        self.settings = settings
        self._resource_url = resource_url

    @property
    def oauth_issuers(self) -> tuple[str, ...]:
        """The identity providers whose access tokens are accepted (SESSION_BUDDY_OAUTH_ISSUER)."""
        return self.settings.oauth_issuers

    @property
    def resource_url(self) -> str:
        """This server's resource URI, as the edge that binds the server computed it
        (:meth:`Settings.effective_resource_url`), else as it would be on the default
        loopback address (a CLI command that verifies a token)."""
        if self._resource_url is not None:
            return self._resource_url
        return self.settings.effective_resource_url()

    @property
    def oauth_audiences(self) -> tuple[str, ...]:
        """What an identity provider's token must name in ``aud`` (one of): the resource
        URL, and SESSION_BUDDY_OAUTH_AUDIENCE when set."""
        extra = self.settings.oauth_audience
        return (self.resource_url, extra) if extra else (self.resource_url,)

    @functools.cached_property
    def introspection_client(self) -> tuple[str, str] | None:
        """(client id, secret) for RFC 7662 introspection, or None when not configured.
        A secret file that cannot be read raises ``IntrospectionSecretFileError``."""
        client_id = self.settings.oauth_introspection_client_id
        if client_id is None:
            return None
        secret = self.settings.resolved_introspection_secret()
        return None if secret is None else (client_id, secret)

    @functools.cached_property
    def _resolved(self) -> tuple[str | None, errors.SecretConfigError | None]:
        """The current secret, or why it cannot be had (read once)."""
        try:
            return self.settings.resolved_secret(), None
        except SecretFileError as exc:
            if exc.kind == "conflict":
                return None, errors.SecretSourcesDisagreeError(str(exc), fix=exc.fix)
            return None, errors.SecretFileUnusableError(
                str(exc), kind=f"file_{exc.kind}", fix=exc.fix
            )

    @functools.cached_property
    def previous_secrets(self) -> tuple[str, ...]:
        return tuple(self.settings.previous_secret_values())

    @property
    def secret_configured(self) -> bool:
        """Whether a secret is configured at all (usable or not)."""
        secret, error = self._resolved
        return secret is not None or error is not None

    @property
    def secret(self) -> str:
        """The signing secret, or :class:`~session_buddy.auth.errors.SecretConfigError`
        (a ``ValueError``) whose text gives the guidance to fix it."""
        secret, error = self._resolved
        if error is not None:
            raise error
        if secret is None:
            raise errors.SecretNotConfiguredError(
                f"{errors.AUTH_DISABLED_WARNING}. Set SESSION_BUDDY_SECRET to enable it. "
                f"{errors.SECRET_HINT}"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise _too_short()
        return secret

    @property
    def secret_length(self) -> int | None:
        secret = self._resolved[0]
        return None if secret is None else len(secret)

    @property
    def secret_source(self) -> SecretSource:
        return self.settings.secret_source()

    @property
    def expire_minutes(self) -> int:
        return self.settings.token_expire_minutes

    @property
    def leeway_seconds(self) -> int:
        return self.settings.leeway_seconds

    @property
    def allowed_issuers(self) -> tuple[str, ...]:
        return tuple(self.settings.allowed_issuers)

    @property
    def audience(self) -> str:
        """This server's name in ``aud`` (``SESSION_BUDDY_AUDIENCE``, default session-buddy)."""
        return self.settings.audience

    @property
    def require_audience(self) -> bool:
        """Whether a token without ``aud`` is refused (otherwise it is accepted)."""
        return self.settings.require_audience

    @property
    def require_scopes(self) -> bool:
        """Whether a token without a scope claim grants no scopes (otherwise: every scope)."""
        return self.settings.require_scopes

    @property
    def auth_required(self) -> bool:
        return self.settings.auth_required

    @property
    def max_token_lifetime_hours(self) -> float:
        return self.settings.max_token_lifetime_hours

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def problem(self) -> errors.SecretConfigError | None:
        """Why this configuration would fail closed, or None when it is usable."""
        try:
            self.signing_keys()
        except errors.SecretConfigError as exc:
            return exc
        return None

    def signing_keys(self) -> SigningKeys:
        """Current and previous secrets; :class:`SecretConfigError` when any is unusable."""
        current = self.secret
        for number, previous in enumerate(self.previous_secrets, start=1):
            if len(previous) < MIN_SECRET_LENGTH:
                raise _too_short(
                    f"SESSION_BUDDY_PREVIOUS_SECRETS entry {number}",
                    fix=f"replace or remove entry {number} of SESSION_BUDDY_PREVIOUS_SECRETS",
                )
        return SigningKeys.from_secrets(current, self.previous_secrets)

    def token_policy(self) -> TokenPolicy:
        return TokenPolicy(
            leeway_seconds=self.leeway_seconds,
            allowed_issuers=self.allowed_issuers,
            audience=self.audience,
            require_audience=self.require_audience,
        )

    def __repr__(self) -> str:  # never shows the secret
        return (
            f"AuthConfig(secret_configured={self.secret_configured}, "
            f"algorithm={self.algorithm!r}, expire_minutes={self.expire_minutes})"
        )
