"""``SessionBuddyClient.http``: a real server on 127.0.0.1, the token in the bearer header."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from session_buddy.auth.tokens import issue_token
from session_buddy.client import (
    SessionBuddyAuthError,
    SessionBuddyClient,
    SessionBuddyConnectionError,
    SessionBuddyToolError,
)
from testkit.environment import new_secret, server_environment
from testkit.server import ServerProcess, free_port, launch_http_server
from testkit.tokens import mint

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def token_for(server: ServerProcess, user_id: str, **claims: object) -> str:
    return issue_token(
        user_id, server.secret, now=time.time(), expire_seconds=600, additional_claims=claims
    )


async def test_session_round_trip_with_minted_tokens(server: ServerProcess, project: Path) -> None:
    async with SessionBuddyClient.http(server.url, secret=server.secret) as sb:
        started = await sb.start(project)
        checkpoint = await sb.checkpoint(project, note="over http")
        handoff = await sb.end(project, summary="done over http")
    assert started.created and started.user_id == "mahavishnu"
    assert checkpoint.note == "over http"
    assert "done over http" in handoff.markdown


async def test_identity_comes_from_the_bearer_header(server: ServerProcess) -> None:
    token = token_for(server, "alice", role="admin")
    async with SessionBuddyClient.http(server.url, token=token) as sb:
        me = await sb.whoami()
    assert (me.authenticated, me.user_id, me.role) == (True, "alice", "admin")


async def test_every_request_carries_the_current_token(server: ServerProcess) -> None:
    users = itertools.cycle(["first", "second"])

    class Rotating:
        def current(self) -> str:
            return token_for(server, next(users))

    async with SessionBuddyClient(server.url, Rotating()) as sb:
        seen = {(await sb.whoami()).user_id for _ in range(4)}
    assert seen == {"first", "second"}


async def test_anonymous_client_is_refused_by_protected_tools(
    server: ServerProcess, project: Path
) -> None:
    async with SessionBuddyClient.http(server.url, anonymous=True) as sb:
        me = await sb.whoami()
        with pytest.raises(SessionBuddyAuthError) as refused:
            await sb.start(project)
    assert me.auth_enabled and not me.authenticated
    assert refused.value.reason == "Token required"


async def test_invalid_bearer_token_is_refused_at_connect_with_the_reason(
    server: ServerProcess,
) -> None:
    forged = issue_token("alice", "x" * 40, now=time.time(), expire_seconds=60)
    with pytest.raises(SessionBuddyAuthError) as refused:
        async with SessionBuddyClient.http(server.url, token=forged):
            pass
    assert refused.value.reason == "Invalid token"
    assert str(refused.value) == "❌ Authentication failed: Invalid token"


async def test_expired_bearer_token_is_refused_with_the_public_message(
    server: ServerProcess,
) -> None:
    expired = mint(server.secret, now=time.time() - 120, lifetime=60)
    with pytest.raises(SessionBuddyAuthError) as refused:
        async with SessionBuddyClient.http(server.url, token=expired):
            pass
    assert str(refused.value) == "❌ Authentication failed: Token has expired"


async def test_tool_errors_raise_tool_error(server: ServerProcess, project: Path) -> None:
    async with SessionBuddyClient.http(server.url, secret=server.secret) as sb:
        with pytest.raises(SessionBuddyToolError) as refused:
            await sb.end(project)
    assert "No active session" in str(refused.value)
    assert refused.value.tool == "end_session"


async def test_unreachable_server_raises_connection_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(SessionBuddyConnectionError, match="serve --transport http"):
        async with SessionBuddyClient.http(url, anonymous=True):
            pass


async def test_throttled_client_gets_auth_error_with_retry_after(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data", new_secret())
    with launch_http_server(env, tmp_path) as throttled:
        bad = issue_token("mallory", "y" * 40, now=time.time(), expire_seconds=60)
        throttled_error: SessionBuddyAuthError | None = None
        for _ in range(25):
            try:
                async with SessionBuddyClient.http(throttled.url, token=bad):
                    pass
            except SessionBuddyAuthError as refused:
                if refused.retry_after is not None:
                    throttled_error = refused
                    break
    assert throttled_error is not None, "the server never throttled the client"
    assert throttled_error.retry_after >= 1
    assert "Too many authentication failures" in throttled_error.reason


async def test_a_read_only_client_lists_but_may_not_start(
    server: ServerProcess, project: Path
) -> None:
    async with SessionBuddyClient.http(server.url, secret=server.secret, scopes=["read"]) as sb:
        listed = await sb.list_sessions()
        with pytest.raises(SessionBuddyAuthError) as refused:
            await sb.start(project)
        me = await sb.whoami()
    assert listed.sessions == [] or all(s.user_id == "mahavishnu" for s in listed.sessions)
    assert refused.value.reason == "missing scope 'write'"
    assert str(refused.value) == "❌ Authorization failed: missing scope 'write'"
    assert me.scopes == ["read"]
