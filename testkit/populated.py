"""A deployment's database with every kind of row, made through the real server.

:func:`populate` starts ``session-buddy serve --transport http`` on a configuration (a data
dir, or a PostgreSQL URL) and uses it as people do: the official MCP client starts, checks
and ends sessions for two users, has an envelope verified, uses a token that the real
``token revoke`` command then revokes and uses it again (refused), and a flood of bad bearer
tokens from another loopback address gets that address blocked. It waits until the server
has written all of it — sessions, checkpoints, revocations and their log, an envelope nonce,
failure-count buckets, a throttle block, audit rows — and stops the server.

What it made is returned (:class:`Populated`), so a test can check that a copy or a restore
still serves the sessions and still refuses the revoked token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from testkit.clock import seconds_until
from testkit.git import make_git_repo
from testkit.mcp import connected, ok, post_json_rpc, text_of, tools_call
from testkit.processes import run_python
from testkit.server import launch_http_server
from testkit.store import raw_query
from testkit.tokens import mint

FLOOD_SOURCE = "127.0.0.9"  # the blocked address: not the one the tests then call from
FLOOD_REQUESTS = 25  # over the throttle's 20, so a block is recorded
WRITTEN_WITHIN = 15.0  # the audit trail and the throttle write in the background
REVOKED = "❌ Authentication failed: Token has been revoked"


@dataclass(frozen=True)
class Populated:
    """What :func:`populate` made: the secret, its users' tokens, the projects and sessions."""

    secret: str
    location: str  # the database: a SQLite file or a postgresql:// URL
    alice: str  # a valid token
    revoked: str  # a token revoked through the CLI
    finished_project: Path  # alice's ended session (two checkpoints)
    active_project: Path  # alice's active session
    finished_session: str
    active_session: str
    bobs_session: str  # bob's active session, in the finished project


def populate(env: Mapping[str, str], root: Path) -> Populated:
    """Fill the database ``env`` configures (it must set ``SESSION_BUDDY_SECRET``); see the
    module doc. ``root`` holds the projects and the server's log."""
    secret = env["SESSION_BUDDY_SECRET"]
    url = env.get("SESSION_BUDDY_DATABASE_URL")
    location = url or str(Path(env["SESSION_BUDDY_DATA_DIR"]) / "session-buddy.db")
    finished = make_git_repo(root / "finished-project", "finished")
    active = make_git_repo(root / "active-project", "active")
    alice = mint(secret, "alice", unique=True)
    bob = mint(secret, "bob", unique=True)
    revoked = mint(secret, "carol", unique=True)
    envelope = _cli(env, root, "envelope", "sign", "mahavishnu", "session-buddy", '{"n": 1}')
    with (
        launch_http_server(dict(env), root, log_path=root / "populate.log") as server,
        connected(server.url) as client,
    ):
        first = ok(client.call("start_session", working_directory=str(finished), token=alice))
        ok(client.call("checkpoint", working_directory=str(finished), note="one", token=alice))
        ok(client.call("checkpoint", working_directory=str(finished), note="two", token=alice))
        ok(client.call("end_session", working_directory=str(finished), summary="done",
                       token=alice))  # fmt: skip
        second = ok(client.call("start_session", working_directory=str(active), token=alice))
        ok(client.call("checkpoint", working_directory=str(active), note="wip", token=alice))
        bobs = ok(client.call("start_session", working_directory=str(finished), token=bob))
        verdict = ok(client.call("verify_envelope", envelope=json.loads(envelope), token=bob))
        assert verdict["valid"] is True, verdict
        ok(client.call("whoami", token=revoked))
        _cli(env, root, "token", "revoke", revoked)
        seconds_until(
            lambda: text_of(client.call("whoami", token=revoked)) == REVOKED,
            WRITTEN_WITHIN,
            0.1,
            what="the revocation",
        )
        _flood(server.url)
        seconds_until(
            lambda: _count(location, "auth_blocks") > 0, WRITTEN_WITHIN, 0.1, what="a block"
        )
        seconds_until(
            lambda: _count(location, "audit_events") >= 3, WRITTEN_WITHIN, 0.1, what="audit"
        )
        time.sleep(1.0)  # one more audit round: the last decisions written, not pending
    return Populated(
        secret=secret,
        location=location,
        alice=alice,
        revoked=revoked,
        finished_project=finished,
        active_project=active,
        finished_session=str(first["id"]),
        active_session=str(second["id"]),
        bobs_session=str(bobs["id"]),
    )


def _cli(env: Mapping[str, str], root: Path, *args: str) -> str:
    result = run_python("-m", "session_buddy", *args, cwd=root, env=dict(env), timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _flood(url: str) -> None:
    """Bad bearer tokens from :data:`FLOOD_SOURCE` until the server answers 429."""
    transport = httpx.HTTPTransport(local_address=FLOOD_SOURCE)
    with httpx.Client(transport=transport, timeout=10, trust_env=False) as http:
        for _ in range(FLOOD_REQUESTS):
            answer = post_json_rpc(url, tools_call("whoami", {}), authorization="Bearer x.y.z",
                                   client=http)  # fmt: skip
            if answer.status_code == 429:
                return
    raise AssertionError(f"no 429 after {FLOOD_REQUESTS} bad tokens")


def _count(location: str, table: str) -> int:
    return int(raw_query(location, f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608
