"""require_auth(): who may call, what the call sees, and what the schema shows."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from mcp.server.mcpserver import Context, MCPServer

from session_buddy.mcp import auth
from session_buddy.mcp.auth import (
    CONTEXT_PARAMETER,
    AuthenticationError,
    get_current_user,
    require_auth,
)
from testkit.tokens import mint


@require_auth()
async def async_tool(project_path: str, user_id: str, token: str | None = None) -> str:
    """Async tool docstring."""
    return f"{user_id}@{project_path}"


@require_auth()
def sync_tool(project_path: str, token: str | None = None) -> str:
    """Sync tool docstring."""
    user = get_current_user()
    assert user is not None
    return f"{user.user_id}:{user.role}"


@require_auth(optional=True)
def flexible_tool(project_path: str, token: str | None = None) -> str:
    user = get_current_user()
    assert user is not None
    return user.user_id


@require_auth(roles=["admin", "orchestrator"])
def admin_tool(token: str | None = None) -> str:
    return "ok"


def failure(call) -> str:
    with pytest.raises(AuthenticationError) as info:
        call()
    return str(info.value)


def test_wraps_keeps_name_and_docstring() -> None:
    assert async_tool.__name__ == "async_tool"
    assert async_tool.__doc__ == "Async tool docstring."
    assert sync_tool.__doc__ == "Sync tool docstring."
    assert inspect.iscoroutinefunction(async_tool)


def test_signature_hides_user_id() -> None:
    params = inspect.signature(async_tool).parameters
    assert "user_id" not in params
    assert list(params) == ["project_path", "token", CONTEXT_PARAMETER]
    assert "user_id" not in async_tool.__annotations__


def test_a_tool_without_a_context_gets_a_hidden_one_the_schema_does_not_show() -> None:
    server = MCPServer("t")
    server.add_tool(async_tool)
    (tool,) = asyncio.run(server.list_tools())
    assert set(tool.input_schema["properties"]) == {"project_path", "token"}
    assert server._tool_manager.get_tool("async_tool").context_kwarg == CONTEXT_PARAMETER


def test_a_tool_that_declares_its_context_keeps_it() -> None:
    @require_auth()
    def with_context(ctx: Context, token: str | None = None) -> str:
        return "ok"

    assert list(inspect.signature(with_context).parameters) == ["ctx", "token"]


def test_the_hidden_context_name_is_reserved() -> None:
    with pytest.raises(TypeError, match=CONTEXT_PARAMETER):

        @require_auth()
        def clash(session_buddy_context: str) -> str:
            return session_buddy_context


def test_disabled_auth_calls_through_as_anonymous() -> None:
    assert asyncio.run(async_tool("/p")) == "anonymous@/p"
    assert sync_tool("/p") == "anonymous:None"
    assert admin_tool() == "ok"


def test_missing_token_is_refused_with_public_message(auth_enabled: str) -> None:
    assert failure(lambda: sync_tool("/p")) == "❌ Authentication failed: Token required"
    assert failure(lambda: asyncio.run(async_tool("/p"))) == (
        "❌ Authentication failed: Token required"
    )


def test_valid_token_reaches_the_function_with_its_identity(auth_enabled: str) -> None:
    token = mint(auth_enabled, user_id="alice", role="dev")
    assert asyncio.run(async_tool("/p", token=token)) == "alice@/p"
    assert sync_tool("/p", token) == "alice:dev"
    assert get_current_user() is None  # only inside the call


def test_invalid_token_is_refused_with_its_reason(auth_enabled: str) -> None:
    expired = mint(auth_enabled, exp=1000)
    assert failure(lambda: sync_tool("/p", token=expired)) == (
        "❌ Authentication failed: Token has expired"
    )
    assert failure(lambda: sync_tool("/p", token="junk")) == (
        "❌ Authentication failed: Invalid token"
    )
    assert auth.get_auth_error() == "Invalid token"


def test_positional_arguments_still_fit_around_the_hidden_user_id(auth_enabled: str) -> None:
    token = mint(auth_enabled, user_id="alice")
    assert asyncio.run(async_tool("/p", token)) == "alice@/p"


def test_caller_cannot_inject_user_id(auth_enabled: str) -> None:
    token = mint(auth_enabled, user_id="alice")
    with pytest.raises(TypeError):
        asyncio.run(async_tool("/p", token=token, user_id="root"))


def test_optional_runs_anonymous_without_token(auth_enabled: str) -> None:
    assert flexible_tool("/p") == "anonymous"
    assert flexible_tool("/p", token=mint(auth_enabled, user_id="bob")) == "bob"


def test_optional_still_rejects_a_present_invalid_token(auth_enabled: str) -> None:
    assert "Invalid token" in failure(lambda: flexible_tool("/p", token="junk"))


def test_migration_mode_lets_untokened_calls_through(
    monkeypatch: pytest.MonkeyPatch, auth_enabled: str
) -> None:
    monkeypatch.setenv("SESSION_BUDDY_AUTH_REQUIRED", "false")
    auth.reload_auth_config()
    assert sync_tool("/p") == "anonymous:None"
    assert "Invalid token" in failure(lambda: sync_tool("/p", token="junk"))


def test_roles_must_match(auth_enabled: str) -> None:
    assert admin_tool(token=mint(auth_enabled, role="orchestrator")) == "ok"
    assert failure(lambda: admin_tool(token=mint(auth_enabled, role="dev"))) == (
        "❌ Authorization failed: role 'dev' not allowed"
    )
    assert failure(lambda: admin_tool(token=mint(auth_enabled))) == (
        "❌ Authorization failed: role 'None' not allowed"
    )


def test_short_secret_fails_closed_even_for_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BUDDY_SECRET", "short")
    auth.reload_auth_config()
    assert "at least 32 characters" in failure(lambda: flexible_tool("/p"))


def test_bearer_principal_and_token_argument_must_agree(auth_enabled: str) -> None:
    manager = auth.get_manager()
    alice = auth.Principal.from_claims(manager.verify_token(mint(auth_enabled, user_id="alice")))
    bob_token = mint(auth_enabled, user_id="bob")
    with pytest.raises(auth.errors.IdentityMismatchError):
        manager.authenticate(bob_token, bearer=alice)
    assert manager.authenticate(None, bearer=alice).user_id == "alice"
    same = mint(auth_enabled, user_id="alice")
    assert manager.authenticate(same, bearer=alice).user_id == "alice"
