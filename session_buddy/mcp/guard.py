"""The guard of every MCP tool: :func:`require_auth` turns a token (the ``token`` argument,
or the HTTP request's verified bearer identity) into a :class:`Principal` before the tool
runs, with the :class:`~session_buddy.auth.manager.JWTManager` it is given.

The tools of :mod:`session_buddy.mcp.tools` use it with the runtime's manager; the
original design note's ``session_buddy.mcp.auth.require_auth`` is this guard over the
process's default manager. Inside a guarded call :func:`get_current_user` is the caller.

A function may declare a ``user_id`` parameter: the guard fills it from the verified
token and removes it from the visible signature, so an MCP tool's input schema never lets
a caller supply an identity. A function without an MCP ``Context`` parameter gets a
hidden one (the SDK fills it and leaves it out of the input schema), through which the
guard finds the HTTP request: a bearer header is never silently ignored.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Collection
from typing import Any, ParamSpec, TypeVar, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import json_schema

from session_buddy.auth.context import current_principal, last_auth_error
from session_buddy.auth.errors import AuthError
from session_buddy.auth.manager import JWTManager
from session_buddy.auth.principal import Principal
from session_buddy.auth.scopes import ImpliedBy
from session_buddy.mcp.request import (
    bearer_principal_of,
    client_of,
    failure_reporter_of,
    request_of_context,
)

CONTEXT_PARAMETER = "session_buddy_context"

P = ParamSpec("P")
R = TypeVar("R")

ManagerSource = JWTManager | Callable[[], JWTManager]
"""The manager whose rules apply: itself, or a function giving the current one at each call
(the design note's facade: the process's default, which ``reload_auth_config`` replaces)."""


class AuthenticationError(ToolError):
    """Raised by :func:`require_auth`; its text is the user-facing line.

    It is an MCP ``ToolError`` so a tool protected by the decorator alone still returns
    an error result containing ``❌ Authentication failed: <reason>``; ``.error`` is the
    typed :class:`~session_buddy.auth.errors.AuthError` behind it.
    """

    def __init__(self, error: AuthError) -> None:
        self.error = error
        super().__init__(error.user_message)


def get_current_user() -> Principal | None:
    """The verified caller inside a guarded call, else None."""
    return current_principal.get()


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
    manager: ManagerSource,
    *,
    optional: bool = False,
    roles: Collection[str] | None = None,
    scopes: Collection[str] = (),
    implied_by: ImpliedBy | None = None,
    bearer_only: bool = False,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Protect a sync or async callable (typically an MCP tool) with JWT authentication.

    * Authentication disabled (no verifier configured): the call runs as ``anonymous``.
    * Enabled, no token: ``❌ Authentication failed: Token required`` — unless
      ``optional=True`` (or ``SESSION_BUDDY_AUTH_REQUIRED=false``), then ``anonymous``.
    * A token that is present but invalid is always rejected, optional or not.
    * ``roles``: the token's ``role`` claim must be one of them.
    * ``scopes``: the token must grant each of them (``admin`` grants all; a token with
      no scope claim grants all unless ``SESSION_BUDDY_REQUIRE_SCOPES=true``), else
      ``❌ Authorization failed: missing scope 'write'``. ``implied_by`` maps a required
      scope to others that satisfy it too (``{"write": ["execute"]}``).
    * ``manager``: whose verifiers, rules and revocations apply (or a function giving it).
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
    resolve_manager = manager if callable(manager) else lambda: manager

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
                return resolve_manager().authenticate(
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
