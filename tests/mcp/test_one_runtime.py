"""One configuration path: what ``serve`` is told is where sessions *and* revocations live."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
import pytest

from session_buddy.client import SessionBuddyAuthError, SessionBuddyClient
from session_buddy.config import load_settings
from session_buddy.mcp.auth import AuthConfig, JWTManager
from session_buddy.runtime import Runtime

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

REVOCATION_DEADLINE_SECONDS = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_server_with_a_data_dir_option_keeps_sessions_and_revocations_together(
    tmp_path: Path, auth_enabled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_environment = tmp_path / "from-environment"
    served = tmp_path / "served"
    monkeypatch.setenv("SESSION_BUDDY_DATA_DIR", str(from_environment))
    project = tmp_path / "project"
    project.mkdir()
    # A manager on the served data dir, as `session-buddy token revoke` there would be.
    operator = JWTManager(AuthConfig(load_settings(data_dir=served)))
    token = operator.create_token("alice")
    command = [sys.executable, "-m", "session_buddy", "serve", "--data-dir", str(served)]

    async with SessionBuddyClient.stdio(token=token, command=command) as sb:
        started = await sb.start(project)
        operator.revoke_token(token)
        deadline = time.monotonic() + REVOCATION_DEADLINE_SECONDS
        refused: SessionBuddyAuthError | None = None
        while refused is None and time.monotonic() < deadline:
            try:
                await sb.status(project)
            except SessionBuddyAuthError as exc:
                refused = exc
            else:
                await anyio.sleep(0.1)

    assert refused is not None, "the server never honoured a revocation in its data dir"
    assert refused.reason == "Token has been revoked"
    assert (served / "session-buddy.db").is_file()
    assert not from_environment.exists(), "the environment's data dir was used as well"
    store = operator.verification.open_revocations()
    assert store is not None and store.count() == 1
    reader = Runtime.build(load_settings(data_dir=served))
    stored = reader.sessions.list_all()
    reader.close()
    assert [session.id for session in stored.sessions] == [started.id]
