"""Stateless streamable HTTP (``SESSION_BUDDY_STATELESS_HTTP``), and who owns a session.

Stateless: no MCP session, every request answered on its own (one JSON body), so any
instance answers any request of any client — a request that never saw ``initialize``
included. The official Python client (both protocol generations) and the TypeScript
client complete whole sessions against it, and the protocol answers of
``session_buddy/mcp/protocol.py`` hold there too. What a stateless server cannot do is
send the client anything outside the answer to its request: no ``GET`` stream.

With MCP sessions (the default on SQLite) answers are one JSON body as well, and a
session belongs to the verified caller that opened it: another caller's valid token with
that session's id is answered as if the session did not exist, ``DELETE`` included.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal

from session_buddy.config import Settings
from session_buddy.mcp.protocol import BATCH_NOT_SUPPORTED, INVALID_CURSOR
from session_buddy.mcp.server import stateless_http_enabled
from session_buddy.store import database_for
from testkit.environment import new_secret, server_environment
from testkit.git import make_git_repo
from testkit.mcp import (
    INITIALIZE,
    JSON_RPC_HEADERS,
    connect,
    http_transport,
    json_rpc_answer,
    ok,
    post_json_rpc,
    tools_call,
)
from testkit.server import ServerProcess, launch_http_server
from testkit.tokens import mint
from testkit.typescript import Http, bearer, call_tool, list_tools, run_typescript_client

pytestmark = pytest.mark.e2e

SECRET = new_secret()
SESSION_HEADER = "mcp-session-id"
PING = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
SESSION_TOOLS = {"start_session", "checkpoint", "end_session", "session_status", "whoami"}


# -- the setting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "stateless"),
    [
        ({}, False),
        ({"SESSION_BUDDY_DATABASE_URL": "postgresql://sb@db.internal/sb"}, True),
        ({"SESSION_BUDDY_STATELESS_HTTP": "true"}, True),
        (
            {
                "SESSION_BUDDY_DATABASE_URL": "postgresql://sb@db.internal/sb",
                "SESSION_BUDDY_STATELESS_HTTP": "false",
            },
            False,
        ),
    ],
    ids=["sqlite", "postgresql", "forced-on", "forced-off"],
)
def test_stateless_is_the_default_with_postgresql_and_either_can_be_forced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str], stateless: bool
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=tmp_path)
    assert stateless_http_enabled(settings.stateless_http, database_for(settings)) is stateless


def test_a_value_that_is_no_boolean_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_BUDDY_STATELESS_HTTP", "sometimes")
    with pytest.raises(ValueError, match="stateless_http"):
        Settings()


# -- a stateless server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stateless(workdir: Path) -> Iterator[ServerProcess]:
    env = server_environment(
        workdir / "stateless-data", SECRET, SESSION_BUDDY_STATELESS_HTTP="true"
    )
    with launch_http_server(env, workdir, log_path=workdir / "stateless.log") as server:
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_git_repo(tmp_path / "project")


def authorization(user: str) -> str:
    return f"Bearer {mint(SECRET, user)}"


def test_initialize_opens_no_session_and_answers_in_one_json_body(
    stateless: ServerProcess,
) -> None:
    answer = post_json_rpc(stateless.url, INITIALIZE)
    assert answer.status_code == 200
    assert SESSION_HEADER not in answer.headers
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["result"]["serverInfo"]["name"] == "session-buddy"


def test_a_call_that_never_saw_initialize_is_answered(stateless: ServerProcess) -> None:
    """What lets any instance answer any request: nothing is remembered between them."""
    answer = post_json_rpc(
        stateless.url, tools_call("whoami", {}), authorization=authorization("ann")
    )
    assert answer.status_code == 200
    result = json_rpc_answer(answer)["result"]
    assert result["structuredContent"]["user_id"] == "ann"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
def test_the_python_client_completes_a_whole_session(
    stateless: ServerProcess, portal: BlockingPortal, project: Path, mode: str
) -> None:
    """``legacy``: the 2025-11-25 initialize handshake; ``auto``: the client's default
    (protocol 2026-07-28, where every request carries its own ``_meta``)."""
    conn = connect(portal, http_transport(stateless.url, bearer=mint(SECRET, "py")), mode)
    try:
        assert {tool.name for tool in conn.tools()} >= SESSION_TOOLS
        where = {"working_directory": str(project)}
        started = ok(conn.call("start_session", **where))
        ok(conn.call("checkpoint", note="half way", **where))
        status = ok(conn.call("session_status", **where))
        assert (status["active"], status["session"]["id"]) == (True, started["id"])
        ended = ok(conn.call("end_session", summary="done", **where))
        assert ended["session"]["id"] == started["id"]
    finally:
        conn.close()


def test_the_typescript_client_completes_a_whole_session(
    stateless: ServerProcess, project: Path
) -> None:
    where = {"working_directory": str(project)}
    run = run_typescript_client(
        Http(stateless.url, bearer(mint(SECRET, "ts"))),
        [
            list_tools(),
            call_tool("start_session", **where),
            call_tool("checkpoint", note="half way", **where),
            call_tool("session_status", **where),
            call_tool("end_session", summary="done", **where),
        ],
    )
    connected = run.connect.value()
    assert connected["sessionId"] is None
    assert connected["protocolVersion"] == "2025-11-25"
    tools, started, checkpoint, status, ended = run.outcomes
    assert {tool["name"] for tool in tools.value()["tools"]} >= SESSION_TOOLS
    for outcome in (started, checkpoint, status, ended):
        assert not outcome.value().get("isError"), outcome
    session_id = started.value()["structuredContent"]["id"]
    assert status.value()["structuredContent"]["session"]["id"] == session_id
    assert ended.value()["structuredContent"]["session"]["id"] == session_id
    assert run.transport_errors == []


def test_no_stream_carries_anything_outside_an_answer(stateless: ServerProcess) -> None:
    """No server-to-client requests or notifications: there is no GET stream to send them."""
    stream = httpx.get(
        stateless.url,
        headers={"Accept": "text/event-stream", "Authorization": authorization("ann")},
    )
    assert stream.status_code == 405
    assert SESSION_HEADER not in stream.headers


# -- protocol answers hold in stateless mode ------------------------------------------------


def test_a_batch_gets_a_plain_invalid_request_naming_no_session(
    stateless: ServerProcess,
) -> None:
    answer = post_json_rpc(stateless.url, [PING])
    assert answer.status_code == 400
    assert answer.json()["error"] == {"code": -32600, "message": BATCH_NOT_SUPPORTED}
    assert SESSION_HEADER not in answer.headers


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("prompts/get", {"name": "nope"}, "Unknown prompt: nope"),
        ("tools/list", {"cursor": "x"}, INVALID_CURSOR),
    ],
)
def test_unknown_names_and_cursors_are_invalid_params(
    stateless: ServerProcess, method: str, params: dict[str, Any], message: str
) -> None:
    request = {"jsonrpc": "2.0", "id": 3, "method": method, "params": params}
    answer = json_rpc_answer(post_json_rpc(stateless.url, request))
    assert answer["error"] == {"code": -32602, "message": message}


def test_the_stateless_log_has_no_traceback(stateless: ServerProcess) -> None:
    post_json_rpc(stateless.url, b"{not json")
    post_json_rpc(stateless.url, {"a": 1})
    assert "Traceback" not in stateless.log()


# -- with sessions: each belongs to the caller that opened it --------------------------------


@pytest.fixture(scope="module")
def sessions(workdir: Path) -> Iterator[ServerProcess]:
    env = server_environment(workdir / "sessions-data", SECRET)
    with launch_http_server(env, workdir, log_path=workdir / "sessions.log") as server:
        yield server


def open_session(server: ServerProcess, authorization: str | None) -> str:
    opened = post_json_rpc(server.url, INITIALIZE, authorization=authorization)
    assert opened.status_code == 200
    session_id: str = opened.headers[SESSION_HEADER]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    done = post_json_rpc(server.url, initialized, authorization=authorization,
                         session_id=session_id)  # fmt: skip
    assert done.status_code == 202
    return session_id


def test_a_sessions_answers_are_one_json_body_too(sessions: ServerProcess) -> None:
    """JSON rather than an SSE stream per call, as without sessions (``make bench``, part
    stateless: cheaper, and the official Python client keeps its connection)."""
    session_id = open_session(sessions, authorization("ann"))
    for body in (PING, tools_call("whoami", {})):
        answer = post_json_rpc(
            sessions.url, body, authorization=authorization("ann"), session_id=session_id
        )
        assert (answer.status_code, answer.headers["content-type"]) == (200, "application/json")
        assert "result" in answer.json()


def test_another_callers_valid_token_finds_no_such_session(sessions: ServerProcess) -> None:
    session_id = open_session(sessions, authorization("owner"))
    intruder = post_json_rpc(
        sessions.url, PING, authorization=authorization("intruder"), session_id=session_id
    )
    assert intruder.status_code == 404
    fresh = f"Bearer {mint(SECRET, 'owner', unique=True)}"  # a renewed token: same caller
    owner = post_json_rpc(sessions.url, PING, authorization=fresh, session_id=session_id)
    assert (owner.status_code, json_rpc_answer(owner)["result"]) == (200, {})


def test_another_caller_cannot_end_a_session(sessions: ServerProcess) -> None:
    session_id = open_session(sessions, authorization("owner"))
    headers = {**JSON_RPC_HEADERS, SESSION_HEADER: session_id}
    ended = httpx.delete(
        sessions.url, headers={**headers, "Authorization": authorization("intruder")}
    )
    assert ended.status_code == 404
    still = post_json_rpc(sessions.url, PING, authorization=authorization("owner"),
                          session_id=session_id)  # fmt: skip
    assert still.status_code == 200


def test_the_same_user_from_another_issuer_is_another_caller(sessions: ServerProcess) -> None:
    session_id = open_session(sessions, f"Bearer {mint(SECRET, 'owner', iss='mahavishnu')}")
    other = post_json_rpc(sessions.url, PING, authorization=authorization("owner"),
                          session_id=session_id)  # fmt: skip
    assert other.status_code == 404


def test_a_session_opened_without_a_header_keeps_working_without_one(
    sessions: ServerProcess,
) -> None:
    """Clients that pass the ``token`` argument send no header at all: unchanged."""
    session_id = open_session(sessions, None)
    answer = post_json_rpc(
        sessions.url, tools_call("whoami", {"token": mint(SECRET, "arg")}), session_id=session_id
    )
    assert json_rpc_answer(answer)["result"]["structuredContent"]["user_id"] == "arg"
