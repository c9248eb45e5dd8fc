"""``SessionBuddyClient.stdio``: the client starts the real server and talks MCP over stdio."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TextIO

import anyio
import jwt
import pytest

from session_buddy.client import (
    SessionBuddyAuthError,
    SessionBuddyClient,
    SessionBuddyConnectionError,
    SessionBuddyToolError,
)
from session_buddy.sessions import CheckpointInfo, HandOff, SessionInfo, SessionStatus
from testkit.git import git
from testkit.processes import children_of
from testkit.server import SCRIPT

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


async def test_session_round_trip_with_minted_tokens(
    project: Path, secret: str, server_log: TextIO
) -> None:
    async with SessionBuddyClient.stdio(secret=secret, server_log=server_log) as sb:
        started = await sb.start(working_directory=project)
        assert isinstance(started, SessionInfo)
        assert started.created and started.user_id == "mahavishnu"
        assert started.snapshot.git.branch == "main"

        (project / "feature.py").write_text("x = 1\n")
        git(project, "add", "feature.py")
        git(project, "commit", "-q", "-m", "feature")
        checkpoint = await sb.checkpoint(project, note="feature added")
        assert isinstance(checkpoint, CheckpointInfo)
        assert (checkpoint.number, checkpoint.note) == (1, "feature added")
        assert checkpoint.commits_since_previous == 1

        status = await sb.status(project)
        assert isinstance(status, SessionStatus) and status.active

        handoff = await sb.end(project, summary="feature done")
        assert isinstance(handoff, HandOff)
        assert "feature done" in handoff.markdown
        assert not handoff.session.active

        listed = await sb.list_sessions()
        assert [s.id for s in listed.sessions] == [started.id]


async def test_minted_token_carries_identity_role_and_issuer(
    secret: str, server_log: TextIO
) -> None:
    client = SessionBuddyClient.stdio(
        secret=secret, user_id="ci-bot", role="orchestrator", issuer="mahavishnu",
        server_log=server_log,
    )  # fmt: skip
    async with client as sb:
        me = await sb.whoami()
    assert (me.authenticated, me.user_id, me.role, me.issuer) == (
        True, "ci-bot", "orchestrator", "mahavishnu",
    )  # fmt: skip
    assert me.privileged


async def test_call_without_token_is_refused_with_the_public_message(
    project: Path, secret: str, server_log: TextIO
) -> None:
    async with SessionBuddyClient.stdio(secret=secret, server_log=server_log) as sb:
        with pytest.raises(SessionBuddyAuthError) as refused:
            await sb.call_tool("start_session", {"working_directory": str(project), "token": None})
        assert str(refused.value) == "❌ Authentication failed: Token required"
        assert refused.value.reason == "Token required"
        assert (await sb.start(project)).created  # the same connection, with its token


async def test_expired_token_raises_auth_error_with_the_reason(
    project: Path, auth_enabled: str, server_log: TextIO
) -> None:
    now = int(time.time())
    expired = jwt.encode(
        {"user_id": "mahavishnu", "iat": now - 120, "exp": now - 60, "type": "access"},
        auth_enabled,
        algorithm="HS256",
    )
    async with SessionBuddyClient.stdio(token=expired, server_log=server_log) as sb:
        with pytest.raises(SessionBuddyAuthError) as refused:
            await sb.start(project)
    assert refused.value.reason == "Token has expired"
    assert expired not in server_log_text(server_log)


async def test_tool_errors_raise_tool_error(secret: str, server_log: TextIO) -> None:
    async with SessionBuddyClient.stdio(secret=secret, server_log=server_log) as sb:
        with pytest.raises(SessionBuddyToolError) as refused:
            await sb.checkpoint("relative/path")
    assert refused.value.tool == "checkpoint"
    assert "absolute path" in str(refused.value)


async def test_secret_is_taken_from_mahavishnu_auth_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str, server_log: TextIO
) -> None:
    monkeypatch.setenv("MAHAVISHNU_AUTH_SECRET", secret)
    async with SessionBuddyClient.stdio(server_log=server_log) as sb:
        me = await sb.whoami()
    assert me.auth_enabled and me.authenticated and me.user_id == "mahavishnu"


async def test_token_made_by_the_cli_is_accepted_and_its_revocation_honoured(
    project: Path, auth_enabled: str, server_log: TextIO
) -> None:
    token = subprocess.run(
        [str(SCRIPT), "token", "create", "alice"], capture_output=True, text=True, check=True
    ).stdout.strip()
    async with SessionBuddyClient.stdio(token=token, server_log=server_log) as sb:
        assert (await sb.start(project)).user_id == "alice"
        subprocess.run([str(SCRIPT), "token", "revoke", token], check=True, capture_output=True)
        await anyio.sleep(0.6)  # the server re-reads revocations at most every 0.5 s
        with pytest.raises(SessionBuddyAuthError) as refused:
            await sb.status(project)
    assert refused.value.reason == "Token has been revoked"


async def test_without_a_secret_the_server_runs_unauthenticated(
    project: Path, server_log: TextIO
) -> None:
    assert "SESSION_BUDDY_SECRET" not in os.environ
    async with SessionBuddyClient.stdio(server_log=server_log) as sb:
        me = await sb.whoami()
        started = await sb.start(project)
    assert not me.auth_enabled
    assert started.user_id == "anonymous"


async def test_a_server_that_cannot_start_raises_connection_error(server_log: TextIO) -> None:
    client = SessionBuddyClient.stdio(
        token="irrelevant", env={"SESSION_BUDDY_SECRET": "too-short"}, server_log=server_log
    )
    with pytest.raises(SessionBuddyConnectionError):
        async with client:
            pass
    assert "at least 32 characters" in server_log_text(server_log)


def server_log_text(log: TextIO) -> str:
    log.flush()
    log.seek(0)
    return log.read()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
async def test_a_server_that_dies_mid_session_raises_connection_error(
    secret: str, server_log: TextIO
) -> None:
    async with SessionBuddyClient.stdio(secret=secret, server_log=server_log) as sb:
        await sb.whoami()
        (pid,) = children_of(os.getpid(), "session_buddy serve")
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(SessionBuddyConnectionError):
            await sb.whoami()


async def test_a_client_with_mahavishnus_default_scopes_changes_sessions(
    project: Path, secret: str, server_log: TextIO
) -> None:
    client = SessionBuddyClient.stdio(
        secret=secret, scopes=["read", "execute"], server_log=server_log
    )
    async with client as sb:
        started = await sb.start(project)
        assert (await sb.whoami()).scopes == ["execute", "read"]
    assert started.user_id == "mahavishnu"


async def test_secret_is_taken_from_mahavishnus_settings_variable(
    secret: str, server_log: TextIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAHAVISHNU_AUTH__SECRET", secret)
    async with SessionBuddyClient.stdio(server_log=server_log) as sb:
        assert (await sb.whoami()).user_id == "mahavishnu"
