"""How a tool's outcome becomes an MCP ``CallToolResult``.

Success: the pydantic model as structured content, plus its ``summary_text()`` as text.
Tools are annotated ``-> Annotated[CallToolResult, Model]``, which the SDK supports for
exactly this: it publishes ``Model``'s output schema and validates successful results
against it, and passes error results through untouched.

Expected failures become ``isError`` results whose text is the message itself — not the
SDK's ``Error executing tool <name>: …`` wrapping of a raised ``ToolError``:

* authentication: the ``❌ Authentication failed: <reason>`` line, exactly, so the
  documented client check ``"❌ Authentication failed" in text`` keeps working;
* session errors (bad path, no active session, input too large): their precise message;
* storage errors (database unusable mid-run): their message, which names the file.

Anything else is a bug and is left to the SDK, which logs it and answers generically.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

from mcp_types import CallToolResult, TextContent

from session_buddy.auth.errors import AuthError
from session_buddy.mcp.auth import AuthenticationError, request_of, request_state
from session_buddy.mcp.bearer import AUTH_FAILURE_REPORTER_KEY
from session_buddy.sessions.errors import SessionError
from session_buddy.store.db import StorageError

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., CallToolResult])


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


def error_result(message: str) -> CallToolResult:
    """An ``isError`` result whose only text is ``message``, verbatim."""
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def verbatim_errors(func: F) -> F:
    """Outermost decorator of a tool: expected failures become verbatim ``isError`` results.

    Apply it above ``require_auth``, so authentication failures are caught too. A bad
    credential is also reported to the HTTP failure throttle of the request, if any.
    Tools are synchronous (the SDK runs them in worker threads: git and SQLite block).
    """
    if inspect.iscoroutinefunction(func):
        raise TypeError(f"{func.__name__}: verbatim_errors wraps synchronous tools only")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> CallToolResult:
        try:
            return func(*args, **kwargs)
        except AuthenticationError as exc:
            _report_auth_failure(kwargs, exc.error)
            return error_result(exc.error.user_message)
        except SessionError as exc:
            return error_result(str(exc))
        except StorageError as exc:
            logger.error("storage failure in %s: %s", func.__name__, exc)
            return error_result(f"❌ Storage unavailable: {exc}")

    return wrapper  # type: ignore[return-value]


def _report_auth_failure(arguments: Mapping[str, Any], error: AuthError) -> None:
    reporter = request_state(request_of(arguments)).get(AUTH_FAILURE_REPORTER_KEY)
    if callable(reporter):
        reporter(error)
