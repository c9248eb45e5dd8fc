"""The authentication API of the original design note: ``session_buddy.mcp.auth``.

A compatibility facade for library users, an edge of its own: ``AuthConfig()`` and
``JWTManager()`` read the environment, and the module-level functions
(:func:`validate_token`, :func:`get_auth_error`, …) work on the process's default
:class:`~session_buddy.runtime.Runtime`, built from the environment on first use and
re-read by :func:`reload_auth_config` — the design note's "restart the server". Per-request
state lives in ``contextvars`` (the last error, the current caller). Nothing inside
session-buddy imports this module (a test holds to that): the server composes its own
runtime, and its tools use the guard (:mod:`session_buddy.mcp.guard`) with that runtime's
manager. Other Python code should import :mod:`session_buddy.auth`.

The design note's protected tool, made correct (it used an undefined ``user_id``)::

    @mcp_server.tool()
    @require_auth()
    async def protected_tool(project_path: str, token: str | None = None) -> str:
        user = get_current_user()
        return f"Operation authorized for {user.user_id}"

A function may instead declare a ``user_id`` parameter: ``require_auth`` fills it from the
verified token and removes it from the visible signature, so an MCP tool's input schema
never lets a caller supply an identity.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from pydantic import ValidationError

from session_buddy.auth import (
    ANONYMOUS,
    AuthError,
    CrossProjectAuth,
    Principal,
    errors,
)
from session_buddy.auth import config as library_config
from session_buddy.auth import manager as library_manager
from session_buddy.auth.context import last_auth_error
from session_buddy.auth.failure_log import AuthFailureLog
from session_buddy.auth.revocation import RevocationStore, shared_revocation_store
from session_buddy.auth.scopes import ImpliedBy
from session_buddy.auth.trail import Recorders
from session_buddy.auth.verification import TokenVerification
from session_buddy.auth.verifiers import configured_verifiers
from session_buddy.config import ENV_PREFIX, Settings, load_settings
from session_buddy.mcp import guard
from session_buddy.mcp.guard import CONTEXT_PARAMETER, AuthenticationError, get_current_user
from session_buddy.mcp.request import bearer_principal_of, client_of
from session_buddy.runtime import Runtime
from session_buddy.store import Database, database_for

__all__ = [
    "ANONYMOUS",
    "CONTEXT_PARAMETER",
    "AuthConfig",
    "AuthError",
    "AuthenticationError",
    "CrossProjectAuth",
    "JWTManager",
    "Principal",
    "bearer_principal_of",
    "client_of",
    "default_runtime",
    "errors",
    "generate_test_token",
    "get_auth_config",
    "get_auth_error",
    "get_current_user",
    "get_manager",
    "install_runtime",
    "is_authentication_enabled",
    "reload_auth_config",
    "require_auth",
    "revoke_token",
    "validate_token",
]

DISABLED_PAYLOAD = {"user_id": "anonymous", "auth": "disabled"}

logger = logging.getLogger("session_buddy.auth")

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_default: _Default | None = None
_disabled_warning_logged = False


class AuthConfig(library_config.AuthConfig):
    """The original design note's ``AuthConfig``: ``AuthConfig()`` reads the environment
    (and ``.env``) now — this facade is an edge. ``enabled``: whether a verifier is
    configured (:func:`~session_buddy.auth.verifiers.configured_verifiers`)."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__(settings if settings is not None else load_settings())

    @property
    def enabled(self) -> bool:
        return configured_verifiers(self).enabled

    def __repr__(self) -> str:  # never shows the secret
        return (
            f"AuthConfig(enabled={self.enabled}, algorithm={self.algorithm!r}, "
            f"expire_minutes={self.expire_minutes})"
        )


class JWTManager(library_manager.JWTManager):
    """The original design note's ``JWTManager``: ``JWTManager()`` reads the environment.

    Composed like a runtime's: revocations in ``database`` (default: the configuration's),
    or ``revocations`` itself (tests).
    """

    def __init__(
        self,
        config: library_config.AuthConfig | None = None,
        *,
        database: Database | None = None,
        revocations: RevocationStore | None = None,
        failure_log: AuthFailureLog | None = None,
        decisions: Recorders | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        config = config if config is not None else AuthConfig()
        if revocations is None:
            store_in = database if database is not None else database_for(config.settings)
            revocations = shared_revocation_store(store_in)
        super().__init__(
            config,
            TokenVerification.for_config(config, revocations, clock=clock),
            failure_log=failure_log,
            decisions=decisions,
            clock=clock,
        )


# -- the process's default runtime ---------------------------------------------------


def _warn_if_disabled(runtime: Runtime) -> None:
    """The process's one warning about where its secret stands: none at all, or the
    ecosystem's shared fallback (``BODAI_SHARED_SECRET``)."""
    global _disabled_warning_logged
    warning = runtime.auth_warning
    if warning is not None and not _disabled_warning_logged:
        _disabled_warning_logged = True
        logger.warning(warning)


@dataclass(frozen=True)
class _Default:
    """The process's default runtime and its configuration; closed when replaced if this
    module built it."""

    runtime: Runtime
    config: AuthConfig
    built_here: bool


def _current() -> _Default:
    global _default
    current = _default
    if current is None:
        with _lock:
            if _default is None:
                runtime = Runtime.build(load_settings())
                _default = _Default(runtime, AuthConfig(runtime.settings), built_here=True)
                _warn_if_disabled(runtime)
            current = _default
    return current


def _replace(new: _Default | None) -> None:
    global _default
    with _lock:
        old, _default = _default, new
    if old is not None and old.built_here:
        old.runtime.close()


def default_runtime() -> Runtime:
    """The runtime the module-level functions use: built from the environment on first
    use (``pydantic.ValidationError`` when a ``SESSION_BUDDY_*`` value is malformed)."""
    return _current().runtime


def install_runtime(runtime: Runtime) -> None:
    """Make ``runtime`` the process's default (a program that builds its own runtime and
    also uses these functions; it stays that program's to close)."""
    _replace(_Default(runtime, AuthConfig(runtime.settings), built_here=False))
    _warn_if_disabled(runtime)


def get_manager() -> library_manager.JWTManager:
    """The default runtime's :class:`JWTManager`."""
    return default_runtime().manager


def get_auth_config() -> AuthConfig:
    """The cached configuration (read once per process; see :func:`reload_auth_config`)."""
    return _current().config


def reload_auth_config() -> AuthConfig:
    """Re-read the environment now: new secret, new keys, an empty token cache."""
    _replace(None)
    return get_auth_config()


def is_authentication_enabled() -> bool:
    """True when a way to authenticate is configured: today a (non-empty)
    ``SESSION_BUDDY_SECRET`` or secret file."""
    return get_manager().enabled


# -- the design note's functions -----------------------------------------------------


def validate_token(token: object) -> dict[str, Any] | None:
    """The token's claims, or None with the reason in :func:`get_auth_error`. Never raises.

    With authentication disabled, every call returns ``{"user_id": "anonymous",
    "auth": "disabled"}``.
    """
    try:
        manager = get_manager()
    except ValidationError as exc:  # a malformed SESSION_BUDDY_* value: fail closed
        names = sorted({f"{ENV_PREFIX}{str(e['loc'][0]).upper()}" for e in exc.errors()})
        last_auth_error.set(f"Invalid configuration: {', '.join(names)}")
        return None
    if not manager.enabled:
        last_auth_error.set(None)
        return dict(DISABLED_PAYLOAD)
    try:
        claims = manager.verify_token(token)
    except AuthError as exc:
        last_auth_error.set(exc.public_message)
        manager.failure_log.record(exc, token=token)
        return None
    last_auth_error.set(None)
    return claims


def get_auth_error() -> str | None:
    """Why the last validation in this task or thread failed (None after a success)."""
    return last_auth_error.get()


def generate_test_token(
    user_id: str = "test_user", additional_claims: dict[str, Any] | None = None
) -> str:
    """A token signed with the configured secret (development and tests only)."""
    return get_manager().create_token(user_id, additional_claims)


def revoke_token(token: object) -> bool:
    """Revoke a token for every process on this database; False (with the error) if invalid."""
    try:
        get_manager().revoke_token(token)
    except AuthError as exc:
        last_auth_error.set(exc.public_message)
        return False
    last_auth_error.set(None)
    return True


def require_auth(
    optional: bool = False,
    roles: Collection[str] | None = None,
    *,
    scopes: Collection[str] = (),
    implied_by: ImpliedBy | None = None,
    manager: library_manager.JWTManager | None = None,
    bearer_only: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """The design note's decorator: :func:`session_buddy.mcp.guard.require_auth` with
    ``manager`` (default: the process's, as it is at each call — see
    :func:`reload_auth_config`). Failures raise :class:`AuthenticationError`; inside the
    call :func:`get_current_user` is the verified caller."""
    return guard.require_auth(
        manager if manager is not None else get_manager,
        optional=optional,
        roles=roles,
        scopes=scopes,
        implied_by=implied_by,
        bearer_only=bearer_only,
    )
