"""How a tool's outcome becomes an MCP ``CallToolResult``.

Success: the pydantic model as structured content, plus its ``summary_text()`` as text.
Tools are annotated ``-> Annotated[CallToolResult, Model]``, which the SDK supports for
exactly this: it publishes ``Model``'s output schema and validates successful results
against it, and passes error results through untouched.

Expected failures become ``isError`` results whose text is the message itself — not the
SDK's ``Error executing tool <name>: …`` wrapping of a raised ``ToolError`` — with no
structured content (it would not match the tool's output schema, and the TypeScript client
checks it even on errors) and ``{kind, reason, message}`` in ``_meta``
(:mod:`session_buddy.mcp.error_meta`):

* authentication: the ``❌ Authentication failed: <reason>`` line, exactly, so the
  documented client check ``"❌ Authentication failed" in text`` keeps working;
* session errors (bad path, no active session, input too large): their precise message;
* storage errors (database unusable mid-run): their message, which names the file — also
  when the database failed while checking a token (revocations that cannot be read), which
  is the server's fault, not the caller's credential.

Anything else is a bug and is left to the SDK, which logs it and answers generically.
A bad ``token`` argument is counted towards the HTTP failure throttle by ``require_auth``
itself, which knows the request.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, cast

from mcp_types import CallToolResult, TextContent

from session_buddy.auth.errors import AuthorizationError
from session_buddy.mcp.auth import AuthenticationError
from session_buddy.mcp.error_meta import ErrorKind, ToolErrorData, error_meta
from session_buddy.sessions.errors import SessionError
from session_buddy.store import StorageError

logger = logging.getLogger(__name__)

P = ParamSpec("P")


class Summarized(Protocol):
    """A result model of the session layer: data, and a sentence or two for people."""

    def summary_text(self) -> str: ...

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


def structured(model: Summarized, *extra_text: str) -> CallToolResult:
    """``model`` as structured content, with its summary (and ``extra_text``) as text."""
    text = "\n\n".join([model.summary_text(), *extra_text])
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
    )


def error_result(
    message: str, *, kind: ErrorKind, reason: str, public: str | None = None
) -> CallToolResult:
    """An ``isError`` result whose only text is ``message``, verbatim.

    No structured content, whatever the tool's output schema; its ``_meta`` says the same
    as data (``kind``, ``reason``: a stable code, ``message``: the short public text), so a
    client need not parse the text.
    """
    data = ToolErrorData(kind=kind, reason=reason, message=public or message)
    return CallToolResult(
        content=[TextContent(type="text", text=message)],
        is_error=True,
        _meta=error_meta(data),
    )


def _as_result(tool: str, exc: Exception) -> CallToolResult:
    """The ``isError`` result for an expected failure (see the module docstring)."""
    if isinstance(exc, AuthenticationError):
        error = exc.error
        if error.storage is not None:  # tokens cannot be checked: the database failed
            storage = error.storage  # (already logged, rate-limited, as a refusal)
            return error_result(storage.user_message, kind="storage", reason=storage.kind)
        kind: ErrorKind = (
            "authorization" if isinstance(error, AuthorizationError) else "authentication"
        )
        return error_result(
            error.user_message, kind=kind, reason=error.reason, public=error.public_message
        )
    if isinstance(exc, SessionError):
        return error_result(str(exc), kind="session", reason=exc.reason)
    assert isinstance(exc, StorageError)
    logger.error("storage failure in %s: %s", tool, exc)
    return error_result(exc.user_message, kind="storage", reason=exc.kind)


_EXPECTED = (AuthenticationError, SessionError, StorageError)


def verbatim_errors(func: Callable[P, CallToolResult]) -> Callable[P, CallToolResult]:
    """Outermost decorator of a tool: expected failures become verbatim ``isError`` results.

    Apply it above ``require_auth``, so authentication failures are caught too. Wraps
    sync and async tools alike (an async tool is typed ``Callable[P, CallToolResult]`` by
    its coroutine function and stays a coroutine function).
    """
    tool = func.__name__
    if inspect.iscoroutinefunction(func):
        coroutine = cast(Callable[..., Awaitable[CallToolResult]], func)

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> CallToolResult:
            try:
                return await coroutine(*args, **kwargs)
            except _EXPECTED as exc:
                return _as_result(tool, exc)

        return cast(Callable[P, CallToolResult], async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> CallToolResult:
        try:
            return func(*args, **kwargs)
        except _EXPECTED as exc:
            return _as_result(tool, exc)

    return wrapper
