"""The authentication API of the original design note: ``session_buddy.mcp.auth``.

A facade over :mod:`session_buddy.auth` (where the rules live, and which other Python code
should import). It keeps the design note's names and adds what MCP tools need:

* module-level functions (:func:`validate_token`, :func:`get_auth_error`, …) that work on
  the process's default :class:`~session_buddy.runtime.Runtime`, built lazily from the
  environment on first use (``session-buddy serve`` installs the one it serves with, so
  both agree), and re-read by :func:`reload_auth_config` — the design note's "restart the
  server";
* per-request state in ``contextvars`` (the last error, the current caller);
* :func:`require_auth`, which turns a token (the ``token`` argument, or a verified HTTP
  bearer identity) into a :class:`~session_buddy.auth.principal.Principal`.

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

import functools
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, ParamSpec, TypeVar, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError, json_schema

from session_buddy.auth import (
    ANONYMOUS,
    AuthError,
    CrossProjectAuth,
    Principal,
    errors,
)
from session_buddy.auth import config as library_config
from session_buddy.auth import manager as library_manager
from session_buddy.auth.context import current_principal, last_auth_error
from session_buddy.auth.failure_log import AuthFailureLog
from session_buddy.auth.revocation import RevocationStore, shared_revocation_store
from session_buddy.auth.scopes import ImpliedBy
from session_buddy.auth.trail import Recorders
from session_buddy.auth.verification import TokenVerification
from session_buddy.auth.verifiers import configured_verifiers
from session_buddy.config import ENV_PREFIX, Settings, load_settings
from session_buddy.mcp.request import (
    bearer_principal_of,
    client_of,
    failure_reporter_of,
    request_of_context,
)
from session_buddy.runtime import Runtime
from session_buddy.store import Database, database_for

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
    "default_runtime",
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
CONTEXT_PARAMETER = "session_buddy_context"

logger = logging.getLogger("session_buddy.auth")

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_runtime: Runtime | None = None
_default_config: AuthConfig | None = None
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


class AuthenticationError(ToolError):
    """Raised by :func:`require_auth`; its text is the user-facing line.

    It is an MCP ``ToolError`` so a tool protected by the decorator alone still returns
    an error result containing ``❌ Authentication failed: <reason>``; ``.error`` is the
    typed :class:`~session_buddy.auth.errors.AuthError` behind it.
    """

    def __init__(self, error: AuthError) -> None:
        self.error = error
        super().__init__(error.user_message)


# -- the process's default runtime ---------------------------------------------------


def _warn_if_disabled(runtime: Runtime) -> None:
    """The process's one warning about where its secret stands: none at all, or the
    ecosystem's shared fallback (``BODAI_SHARED_SECRET``)."""
    global _disabled_warning_logged
    if _disabled_warning_logged:
        return
    if not runtime.manager.enabled:
        _disabled_warning_logged = True
        logger.warning(errors.AUTH_DISABLED_WARNING)
    elif runtime.auth.secret_source == "shared":
        _disabled_warning_logged = True
        logger.warning(errors.SHARED_SECRET_WARNING)


def default_runtime() -> Runtime:
    """The runtime the module-level functions use: built from the environment on first
    use (``pydantic.ValidationError`` when a ``SESSION_BUDDY_*`` value is malformed)."""
    global _runtime, _default_config
    runtime = _runtime
    if runtime is None:
        with _lock:
            if _runtime is None:
                _runtime = Runtime.build(load_settings())
                _default_config = AuthConfig(_runtime.settings)
                _warn_if_disabled(_runtime)
            runtime = _runtime
    return runtime


def install_runtime(runtime: Runtime) -> None:
    """Make ``runtime`` the process's default (a program that builds its own runtime and
    also uses these functions)."""
    global _runtime, _default_config
    with _lock:
        _runtime = runtime
        _default_config = AuthConfig(runtime.settings)
    _warn_if_disabled(runtime)


def get_manager() -> library_manager.JWTManager:
    """The default runtime's :class:`JWTManager`."""
    return default_runtime().manager


def get_auth_config() -> AuthConfig:
    """The cached configuration (read once per process; see :func:`reload_auth_config`)."""
    default_runtime()
    config = _default_config
    assert config is not None  # set with the runtime
    return config


def reload_auth_config() -> AuthConfig:
    """Re-read the environment now: new secret, new keys, an empty token cache."""
    global _runtime, _default_config
    with _lock:
        _runtime = _default_config = None
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


def get_current_user() -> Principal | None:
    """The verified caller inside a ``require_auth``-protected call, else None."""
    return current_principal.get()


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


# -- the decorator ---------------------------------------------------------------------


def _evaluated_signature(func: Callable[..., Any]) -> inspect.Signature:
    try:  # evaluated, so the MCP SDK sees real types under `from __future__ import annotations`
        return inspect.signature(func, eval_str=True)
    except NameError:  # an annotation names a type-checking-only import
        return inspect.signature(func)


def _is_context(annotation: object) -> bool:
    candidates = getattr(annotation, "__args__", None) or (annotation,)
    return any(inspect.isclass(c) and issubclass(c, Context) for c in candidates)


def _with_hidden_context(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` plus a keyword-only ``Context`` parameter the MCP SDK fills and keeps
    out of the input schema: how a tool without its own finds its HTTP request."""
    if CONTEXT_PARAMETER in signature.parameters:
        raise TypeError(f"require_auth: the parameter name {CONTEXT_PARAMETER!r} is reserved")
    hidden = inspect.Parameter(
        CONTEXT_PARAMETER, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Context | None
    )
    parameters = list(signature.parameters.values())
    at = next(
        (i for i, p in enumerate(parameters) if p.kind is inspect.Parameter.VAR_KEYWORD),
        len(parameters),
    )
    return signature.replace(parameters=[*parameters[:at], hidden, *parameters[at:]])


def _without_token_in_schema(signature: inspect.Signature) -> inspect.Signature:
    """``signature`` with its ``token`` parameter still accepted but left out of the JSON
    schema (pydantic's ``SkipJsonSchema``), so a bearer-only server can refuse it clearly."""
    parameter = signature.parameters.get("token")
    if parameter is None:
        return signature
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        annotation = Any
    # At run time SkipJsonSchema[X] is Annotated[X, SkipJsonSchema()]; to a type checker
    # it is a generic alias, so it is applied to a value through an untyped name.
    skip: Any = json_schema.SkipJsonSchema
    hidden = parameter.replace(annotation=skip[annotation])
    return signature.replace(
        parameters=[hidden if p.name == "token" else p for p in signature.parameters.values()]
    )


def require_auth(
    optional: bool = False,
    roles: Collection[str] | None = None,
    *,
    scopes: Collection[str] = (),
    implied_by: ImpliedBy | None = None,
    manager: library_manager.JWTManager | None = None,
    bearer_only: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Protect a sync or async callable (typically an MCP tool) with JWT authentication.

    * Authentication disabled (no secret): the call runs as ``anonymous``.
    * Enabled, no token: ``❌ Authentication failed: Token required`` — unless
      ``optional=True`` (or ``SESSION_BUDDY_AUTH_REQUIRED=false``), then ``anonymous``.
    * A token that is present but invalid is always rejected, optional or not.
    * ``roles``: the token's ``role`` claim must be one of them.
    * ``scopes``: the token must grant each of them (``admin`` grants all; a token with
      no scope claim grants all unless ``SESSION_BUDDY_REQUIRE_SCOPES=true``), else
      ``❌ Authorization failed: missing scope 'write'``. ``implied_by`` maps a required
      scope to others that satisfy it too (``{"write": ["execute"]}``).
    * ``manager``: whose rules and revocations apply (default: the process's).
    * ``bearer_only``: a ``token`` argument is refused (it travels through the model's
      context; the HTTP header does not) and left out of the published input schema.

    The token comes from a ``token`` argument or, over HTTP, from the request's verified
    ``Authorization: Bearer`` header, found through the tool's MCP ``Context``: a
    function without a ``Context`` parameter gets a hidden one (the SDK fills it and
    leaves it out of the input schema), so the header is never silently ignored.

    Failures raise :class:`AuthenticationError`. Inside the call, :func:`get_current_user`
    returns the :class:`Principal`; a ``user_id`` parameter, if declared, receives its id.
    """
    allowed_roles = frozenset(roles) if roles is not None else None
    required_scopes = tuple(scopes)

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        signature = _evaluated_signature(func)
        wants_user_id = "user_id" in signature.parameters
        own = signature.replace(
            parameters=[p for p in signature.parameters.values() if p.name != "user_id"]
        )
        context_name = next(
            (p.name for p in own.parameters.values() if _is_context(p.annotation)), None
        )
        hidden_context = context_name is None
        visible = _with_hidden_context(own) if hidden_context else own
        if bearer_only:
            visible = _without_token_in_schema(visible)
        by_keyword = all(
            p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in own.parameters.values()
        )
        tool = func.__name__

        def authenticate(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Principal:
            arguments = visible.bind_partial(*args, **kwargs).arguments
            request = request_of_context(arguments.get(context_name or CONTEXT_PARAMETER))
            try:
                return (manager or get_manager()).authenticate(
                    arguments.get("token"),
                    bearer=bearer_principal_of(request),
                    optional=optional,
                    roles=allowed_roles,
                    scopes=required_scopes,
                    implied_by=implied_by,
                    bearer_only=bearer_only,
                    tool=tool,
                    client=client_of(request),
                )
            except AuthError as exc:
                last_auth_error.set(exc.public_message)
                reporter = failure_reporter_of(request)
                if reporter is not None:
                    reporter(exc)
                raise AuthenticationError(exc) from None

        def call_arguments(
            args: tuple[Any, ...], kwargs: dict[str, Any], principal: Principal
        ) -> tuple[tuple[Any, ...], dict[str, Any]]:
            """The function's own arguments, plus ``user_id`` by name so positions fit."""
            if hidden_context:
                kwargs = {k: v for k, v in kwargs.items() if k != CONTEXT_PARAMETER}
            if not wants_user_id:
                return args, kwargs
            if by_keyword:
                return (), {**own.bind(*args, **kwargs).arguments, "user_id": principal.user_id}
            return args, {**kwargs, "user_id": principal.user_id}

        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(func):
            coroutine = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                principal = authenticate(args, kwargs)
                call_args, call_kwargs = call_arguments(args, kwargs, principal)
                token = current_principal.set(principal)
                try:
                    return await coroutine(*call_args, **call_kwargs)
                finally:
                    current_principal.reset(token)

            wrapper = async_wrapper
        else:

            @functools.wraps(func)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                principal = authenticate(args, kwargs)
                call_args, call_kwargs = call_arguments(args, kwargs, principal)
                token = current_principal.set(principal)
                try:
                    return func(*call_args, **call_kwargs)
                finally:
                    current_principal.reset(token)

            wrapper = sync_wrapper

        annotations = {
            name: p.annotation
            for name, p in visible.parameters.items()
            if p.annotation is not inspect.Parameter.empty
        }
        if visible.return_annotation is not inspect.Signature.empty:
            annotations["return"] = visible.return_annotation
        wrapper.__dict__["__signature__"] = visible  # what inspect.signature reports
        wrapper.__annotations__ = annotations
        return cast(Callable[P, R], wrapper)

    return decorate
