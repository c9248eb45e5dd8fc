"""How tool outcomes become CallToolResults: structured success, verbatim errors."""

from __future__ import annotations

import inspect

import anyio
from mcp_types import CallToolResult

from session_buddy.auth import errors
from session_buddy.mcp.auth import AuthenticationError
from session_buddy.mcp.error_meta import ERROR_META_KEY, error_data
from session_buddy.mcp.identity import Identity
from session_buddy.mcp.results import error_result, structured, verbatim_errors
from session_buddy.sessions.errors import NoActiveSessionError
from session_buddy.store import StorageError
from testkit.mcp import refused

IDENTITY = Identity(auth_enabled=True, authenticated=True, user_id="alice", role="dev")


def raising(error: Exception) -> CallToolResult:
    @verbatim_errors
    def tool() -> CallToolResult:
        raise error

    return tool()


def test_success_carries_the_model_and_its_summary() -> None:
    result = structured(IDENTITY, "more text")
    assert result.structured_content == IDENTITY.model_dump(mode="json")
    assert result.content[0].text == f"{IDENTITY.summary_text()}\n\nmore text"
    assert not result.is_error


def test_error_result_is_the_message_verbatim_with_the_same_as_data() -> None:
    result = error_result("exactly this", kind="session", reason="no_active_session")
    assert result.is_error
    assert [block.text for block in result.content] == ["exactly this"]
    assert error_data(result) == {
        "kind": "session",
        "reason": "no_active_session",
        "message": "exactly this",
    }


def test_error_result_carries_no_structured_content_a_schema_would_refuse() -> None:
    result = error_result("exactly this", kind="session", reason="no_active_session")
    wire = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert "structuredContent" not in wire
    assert wire["_meta"] == {
        ERROR_META_KEY: {
            "kind": "session",
            "reason": "no_active_session",
            "message": "exactly this",
        }
    }


def test_authentication_failure_becomes_the_public_line_exactly() -> None:
    result = raising(AuthenticationError(errors.ExpiredTokenError("exp in the past")))
    assert result.is_error
    assert result.content[0].text == "❌ Authentication failed: Token has expired"
    assert error_data(result) == {
        "kind": "authentication",
        "reason": "expired",
        "message": "Token has expired",
    }


def test_authorization_failure_is_its_own_kind() -> None:
    result = raising(AuthenticationError(errors.RoleNotAllowedError("dev")))
    assert result.content[0].text == "❌ Authorization failed: role 'dev' not allowed"
    assert (error_data(result) or {})["kind"] == "authorization"


def test_session_error_becomes_its_message() -> None:
    result = raising(NoActiveSessionError("/work/project"))
    assert result.content[0].text == (
        "No active session for /work/project; call start_session first"
    )


def test_storage_error_names_the_file() -> None:
    result = raising(StorageError("database /data/session-buddy.db is read-only"))
    assert result.is_error
    assert result.content[0].text == (
        "❌ Storage unavailable: database /data/session-buddy.db is read-only"
    )
    assert (error_data(result) or {})["kind"] == "storage"


def test_a_token_the_database_cannot_confirm_is_a_storage_failure_not_an_authentication_one() -> (
    None
):
    failure = StorageError("PostgreSQL at db:5432/sb: no connection within 3 s", kind="unreachable")
    error = errors.RevocationUnavailableError("unconfirmed for 6 s", storage=failure)
    result = raising(AuthenticationError(error))
    assert result.is_error
    assert result.content[0].text == (
        "❌ Storage unavailable: PostgreSQL at db:5432/sb: no connection within 3 s"
    )
    assert refused(result) == {
        "kind": "storage",
        "reason": "unreachable",
        "message": "❌ Storage unavailable: PostgreSQL at db:5432/sb: no connection within 3 s",
    }


def test_success_passes_through_untouched() -> None:
    @verbatim_errors
    def tool() -> CallToolResult:
        return structured(IDENTITY)

    assert tool().structured_content["user_id"] == "alice"


def test_an_async_tool_stays_a_coroutine_function_and_its_errors_become_results() -> None:
    @verbatim_errors
    async def tool(fail: bool) -> CallToolResult:
        if fail:
            raise AuthenticationError(errors.ExpiredTokenError("exp in the past"))
        return structured(IDENTITY)

    assert inspect.iscoroutinefunction(tool)
    assert tool.__name__ == "tool"
    assert anyio.run(tool, False).structured_content["user_id"] == "alice"
    refused = anyio.run(tool, True)
    assert refused.is_error
    assert refused.content[0].text == "❌ Authentication failed: Token has expired"
