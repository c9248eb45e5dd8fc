"""Sessions that pause past the revocation staleness limit, then call at once, are served.

A real server over HTTP on SQLite and sixteen official MCP clients (half send a bearer
header, half the token argument). After every client called once, all of them stay quiet
for longer than ``MAX_STALE_SECONDS`` — nothing reads the revocation log meanwhile, so the
server's view of it goes stale — while another process revokes a token a seventeenth call
then uses, and a couple of thousand that nobody holds (so re-reading the log takes a
moment). Then every client calls at once: the first call re-reads the log and every other
must wait for that read, not be refused; the revoked token must be refused as revoked.
(``make stress`` scenario 9 does the same over many rounds, on PostgreSQL too.)
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from session_buddy.auth.revocation import MAX_STALE_SECONDS
from session_buddy.store import SqliteDatabase
from testkit.environment import new_secret, server_environment
from testkit.fleet import Fleet, revoke_elsewhere
from testkit.server import launch_http_server
from testkit.tokens import mint

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SESSIONS = 16
PAUSE = MAX_STALE_SECONDS + 0.7
REVOKED_BY_NOBODY_HOLDING_THEM = 2000
REVOKED = "❌ Authentication failed: Token has been revoked"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_sixteen_sessions_calling_at_once_after_a_pause_are_all_served(
    tmp_path: Path,
) -> None:
    secret = new_secret()
    tokens = [mint(secret, f"user-{n}", unique=True) for n in range(SESSIONS)]
    victim = mint(secret, "victim", unique=True)
    project = tmp_path / "project"
    project.mkdir()
    arguments = {"working_directory": str(project)}
    env = server_environment(tmp_path / "data", secret)
    with launch_http_server(env, tmp_path) as server:
        elsewhere = SqliteDatabase(server.data_dir / "session-buddy.db").open()
        async with Fleet(server.url, tokens, bearer=SESSIONS // 2) as fleet:
            warm, (victim_warm,) = await fleet.burst("session_status", arguments, extra=[victim])
            assert [reply.text for reply in warm if not reply.ok] == []
            assert victim_warm.ok  # accepted, so the server has it in its cache
            await anyio.sleep(PAUSE)
            await anyio.to_thread.run_sync(
                lambda: revoke_elsewhere(elsewhere, [victim], junk=REVOKED_BY_NOBODY_HOLDING_THEM)
            )
            replies, (victim_reply,) = await fleet.burst(
                "session_status", arguments, extra=[victim]
            )
        alive = server.process.poll() is None
        elsewhere.close()
    assert [reply.text for reply in replies if not reply.ok] == []  # 13 to 15 before the fix
    assert victim_reply.text == REVOKED
    assert alive
