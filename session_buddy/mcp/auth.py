"""The public authentication API of the original design note, for MCP tools and callers.

A thin facade: the rules live in :mod:`session_buddy.auth`. This module holds the
process's cached configuration (read once, so a changed environment takes effect on
restart or :func:`reload_auth_config`), per-request state in ``contextvars``, and the
``require_auth`` decorator that turns a token (argument, or a verified HTTP bearer
identity) into a :class:`~session_buddy.auth.principal.Principal`.

Example (the original design note's protected tool, made correct)::

    @mcp_server.tool()
    @require_auth()
    async def protected_tool(project_path: str, token: str | None = None) -> str:
        user = get_current_user()
        return f"Operation authorized for {user.user_id}"

A function may also declare a ``user_id`` parameter: ``require_auth`` fills it from the
verified token and removes it from the visible signature, so an MCP tool's input schema
never lets a caller supply an identity.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from session_buddy.auth import errors
from session_buddy.auth.config import AuthConfig
from session_buddy.auth.context import current_principal, last_auth_error
from session_buddy.auth.crossproject import CrossProjectAuth
from session_buddy.auth.errors import AuthError
from session_buddy.auth.manager import JWTManager
from session_buddy.auth.principal import ANONYMOUS, Principal

__all__ = [
    "ANONYMOUS",
    "AuthConfig",
    "AuthError",
    "AuthenticationError",
    "CrossProjectAuth",
    "JWTManager",
    "Principal",
    "bearer_principal_of",
    "client_of",
    "generate_test_token",
    "get_auth_config",
    "get_auth_error",
    "get_current_user",
    "get_manager",
    "is_authentication_enabled",
    "reload_auth_config",
    "require_auth",
    "revoke_token",
    "validate_token",
]

BEARER_STATE_KEY = "session_buddy_principal"
DISABLED_PAYLOAD = {"user_id": "anonymous", "auth": "disabled"}

logger = logging.getLogger("session_buddy.auth")

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_manager: JWTManager | None = None
_disabled_warning_logged = False


class AuthenticationError(ToolError):
    """Raised by :func:`require_auth`; its text is the error's ``user_message``.

    It is an MCP ``ToolError`` so a tool protected by the decorator alone still returns
    an error result containing ``❌ Authentication failed: <reason>``; ``.error`` is the
    typed :class:`~session_buddy.auth.errors.AuthError` behind it.
    """

    def __init__(self, error: AuthError) -> None:
        self.error = error
        super().__init__(error.user_message)


def get_manager() -> JWTManager:
    """The process's :class:`JWTManager`, built from the environment on first use."""
    global _manager, _disabled_warning_logged
    manager = _manager
    if manager is None:
        with _lock:
            if _manager is None:
                _manager = JWTManager(AuthConfig())
                if not _manager.config.enabled and not _disabled_warning_logged:
                    _disabled_warning_logged = True
                    logger.warning(errors.AUTH_DISABLED_WARNING)
            manager = _manager
    return manager


def get_auth_config() -> AuthConfig:
    """The cached configuration (read once per process; see :func:`reload_auth_config`)."""
    return get_manager().config


def reload_auth_config() -> AuthConfig:
    """Re-read the environment now: new secret, new keys, an empty token cache."""
    global _manager
    with _lock:
        _manager = None
    return get_auth_config()


def is_authentication_enabled() -> bool:
    """True when a (non-empty) ``SESSION_BUDDY_SECRET`` or secret file is configured."""
    return get_auth_config().enabled


def validate_token(token: object) -> dict[str, Any] | None:
    """The token's claims, or None with the reason in :func:`get_auth_error`. Never raises.

    With authentication disabled, every call returns ``{"user_id": "anonymous",
    "auth": "disabled"}``.
    """
    try:
        manager = get_manager()
    except ValidationError as exc:  # a malformed SESSION_BUDDY_* value: fail closed
        names = sorted({f"SESSION_BUDDY_{str(e['loc'][0]).upper()}" for e in exc.errors()})
        last_auth_error.set(f"Invalid configuration: {', '.join(names)}")
        return None
    if not manager.config.enabled:
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


def get_current_user() -> Principal | None:
    """The verified caller inside a ``require_auth``-protected call, else None."""
    return current_principal.get()


def generate_test_token(
    user_id: str = "test_user", additional_claims: dict[str, Any] | None = None
) -> str:
    """A token signed with the configured secret (development and tests only)."""
    return get_manager().create_token(user_id, additional_claims)


def revoke_token(token: object) -> bool:
    """Revoke a token for every process on this data dir; False (with the error) if invalid."""
    try:
        get_manager().revoke_token(token)
    except AuthError as exc:
        last_auth_error.set(exc.public_message)
        return False
    last_auth_error.set(None)
    return True


def request_of(arguments: Mapping[str, Any]) -> Any:
    """The HTTP request behind a tool call (via its ``Context`` argument), if any."""
    for value in arguments.values():
        if isinstance(value, Context):
            try:
                return value.request_context.request
            except (ValueError, AttributeError):
                return None
    return None


def request_state(request: Any) -> dict[str, Any]:
    """The ASGI scope's ``state`` of an HTTP request (empty for stdio or no request)."""
    state = getattr(request, "scope", {}).get("state") if request is not None else None
    return state if isinstance(state, dict) else {}


def bearer_principal_of(request: Any) -> Principal | None:
    """The identity the HTTP bearer middleware verified for this request, if any."""
    principal = request_state(request).get(BEARER_STATE_KEY)
    return principal if isinstance(principal, Principal) else None


def client_of(request: Any) -> str:
    """The HTTP peer's IP address, or "stdio" when there is no HTTP request.

    The address only, not the port: a port changes with every connection, and failure
    logging is rate-limited per client, so a flood over new connections stays one line.
    """
    client = getattr(request, "client", None)
    return str(client.host) if client is not None else "stdio"


def require_auth(optional: bool = False, roles: Collection[str] | None = None) -> Callable[[F], F]:
    """Protect a sync or async callable (typically an MCP tool) with JWT authentication.

    * Authentication disabled (no secret): the call runs as ``anonymous``.
    * Enabled, no token: ``❌ Authentication failed: Token required`` — unless
      ``optional=True`` (or ``SESSION_BUDDY_AUTH_REQUIRED=false``), then ``anonymous``.
    * A token that is present but invalid is always rejected, optional or not.
    * ``roles``: the token's ``role`` claim must be one of them.

    Failures raise :class:`AuthenticationError`. Inside the call, :func:`get_current_user`
    returns the :class:`Principal`; a ``user_id`` parameter, if declared, receives its id.
    """
    allowed_roles = frozenset(roles) if roles is not None else None

    def decorate(func: F) -> F:
        try:  # evaluated, so the MCP SDK sees real types under `from __future__ import annotations`
            signature = inspect.signature(func, eval_str=True)
        except NameError:  # an annotation names a type-checking-only import
            signature = inspect.signature(func)
        wants_user_id = "user_id" in signature.parameters
        visible = signature.replace(
            parameters=[p for p in signature.parameters.values() if p.name != "user_id"]
        )
        by_keyword = all(
            p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in visible.parameters.values()
        )

        def with_identity(
            args: tuple[Any, ...], kwargs: dict[str, Any], principal: Principal
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            """The call's arguments plus ``user_id``, passed by name so positions still fit."""
            if not wants_user_id:
                return args, kwargs
            if by_keyword:
                return (), {**visible.bind(*args, **kwargs).arguments, "user_id": principal.user_id}
            return args, {**kwargs, "user_id": principal.user_id}

        def authenticate(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Principal:
            arguments = visible.bind_partial(*args, **kwargs).arguments
            request = request_of(arguments)
            try:
                return get_manager().authenticate(
                    arguments.get("token"),
                    bearer=bearer_principal_of(request),
                    optional=optional,
                    roles=allowed_roles,
                    tool=func.__name__,
                    client=client_of(request),
                )
            except AuthError as exc:
                last_auth_error.set(exc.public_message)
                raise AuthenticationError(exc) from None

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                principal = authenticate(args, kwargs)
                args, kwargs = with_identity(args, kwargs, principal)
                token = current_principal.set(principal)
                try:
                    return await func(*args, **kwargs)
                finally:
                    current_principal.reset(token)

            wrapper: Callable[..., Any] = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                principal = authenticate(args, kwargs)
                args, kwargs = with_identity(args, kwargs, principal)
                token = current_principal.set(principal)
                try:
                    return func(*args, **kwargs)
                finally:
                    current_principal.reset(token)

            wrapper = sync_wrapper

        wrapper.__signature__ = visible  # type: ignore[attr-defined]
        annotations = dict(getattr(func, "__annotations__", {}))
        annotations.pop("user_id", None)
        wrapper.__annotations__ = annotations
        return wrapper  # type: ignore[return-value]

    return decorate
