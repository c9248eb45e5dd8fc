"""Scopes end to end, over stdio and over HTTP (bearer header and token argument), with the
official MCP client against a real server process.

Reading (session_status, list_sessions) needs ``read``; changing sessions (start_session,
checkpoint, end_session) and accepting an envelope (verify_envelope spends its nonce) need
``write`` — or Mahavishnu's ``execute``; whoami needs none;
``admin`` allows all; a token without a scope claim keeps full access. Too few scopes is a
tool error of kind "authorization" for a token argument; for the HTTP bearer header it is
HTTP 403 ``insufficient_scope`` before the tool runs (the MCP spec's step-up), whose
JSON-RPC error carries the same message and reason (``bearer_refusal`` below reads it the
way ``SessionBuddyClient`` does).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent

from session_buddy.auth.crossproject import CrossProjectAuth
from session_buddy.mcp.error_meta import ERROR_META_KEY
from session_buddy.mcp.step_up import FORBIDDEN
from testkit.environment import clean_environment, new_secret, server_environment
from testkit.mcp import (
    INITIALIZE,
    McpConnection,
    connect,
    http_transport,
    ok,
    post_json_rpc,
    refused,
    stdio_transport,
    text_of,
)
from testkit.released import create_service_token
from testkit.server import SCRIPT, launch_http_server
from testkit.tokens import mint

pytestmark = pytest.mark.e2e

Caller = Callable[..., CallToolResult]
SECRET = new_secret()


@pytest.fixture(scope="module")
def stdio(portal: BlockingPortal, workdir: Path) -> Iterator[McpConnection]:
    env = server_environment(workdir / "stdio-data", SECRET)
    with (workdir / "stdio.log").open("w") as errlog:
        conn = connect(portal, stdio_transport(env, workdir, errlog))
        yield conn
        conn.close()


@pytest.fixture(scope="module")
def http_url(workdir: Path) -> Iterator[str]:
    env = server_environment(workdir / "http-data", SECRET)
    with launch_http_server(env, workdir) as server:
        yield server.url


@pytest.fixture(params=["stdio", "http-argument", "http-bearer"])
def as_caller(
    request: pytest.FixtureRequest, portal: BlockingPortal
) -> Iterator[Callable[[str], Caller]]:
    """``as_caller(token)(tool, **arguments)``: a call with that token, sent as the
    transport sends it (token argument over stdio or HTTP, or the HTTP bearer header)."""
    opened: list[McpConnection] = []

    def bind(token: str) -> Caller:
        if request.param == "stdio":
            conn = request.getfixturevalue("stdio")
            return lambda tool, **arguments: conn.call(tool, token=token, **arguments)
        url = request.getfixturevalue("http_url")
        if request.param == "http-argument":
            conn = connect(portal, http_transport(url))
            opened.append(conn)
            return lambda tool, **arguments: conn.call(tool, token=token, **arguments)
        conn = connect(portal, http_transport(url, bearer=token))
        opened.append(conn)
        return lambda tool, **arguments: bearer_refusal(conn, tool, **arguments)

    yield bind
    for conn in opened:
        conn.close()


def bearer_refusal(conn: McpConnection, tool: str, **arguments: Any) -> CallToolResult:
    """A call over the bearer header; its 403 step-up (a JSON-RPC error) as the refusal
    result the tool itself would give, so one test states both."""
    try:
        return conn.call(tool, **arguments)
    except MCPError as exc:
        assert exc.code == FORBIDDEN, exc
        data = exc.data
        assert isinstance(data, dict) and data["error"] == "insufficient_scope"
        return CallToolResult(
            content=[TextContent(type="text", text=exc.message)],
            is_error=True,
            _meta={
                ERROR_META_KEY: {
                    "kind": "authorization",
                    "reason": data["reason"],
                    "message": data["error_description"],
                }
            },
        )


def mahavishnu(*scopes: str, **claims: Any) -> str:
    """A token shaped like Mahavishnu's JWTAuth.create_token (sub, user_id, scopes)."""
    return mint(SECRET, "mahavishnu", sub="mahavishnu", scopes=list(scopes), **claims)


def test_a_read_only_mahavishnu_token_lists_but_cannot_start(
    as_caller: Callable[[str], Caller], repo: Path
) -> None:
    call = as_caller(mahavishnu("read"))
    assert ok(call("list_sessions"))["sessions"] == []
    assert ok(call("session_status", working_directory=str(repo)))["active"] is False
    result = call("start_session", working_directory=str(repo))
    assert text_of(result) == "❌ Authorization failed: missing scope 'write'"
    assert refused(result) == {
        "kind": "authorization",
        "reason": "missing_scope",
        "message": "missing scope 'write'",
    }


@pytest.mark.parametrize("tool", ["checkpoint", "end_session"])
def test_every_session_change_needs_write(
    as_caller: Callable[[str], Caller], repo: Path, tool: str
) -> None:
    result = as_caller(mahavishnu("read"))(tool, working_directory=str(repo))
    assert refused(result)["message"] == "missing scope 'write'"


def test_verifying_an_envelope_needs_write_and_a_refusal_spends_nothing(
    as_caller: Callable[[str], Caller],
) -> None:
    envelope = CrossProjectAuth(SECRET).sign_envelope("mahavishnu", "session-buddy", {"n": 1})

    result = as_caller(mahavishnu("read"))("verify_envelope", envelope=envelope)
    verdict = ok(as_caller(mahavishnu("read", "execute"))("verify_envelope", envelope=envelope))

    assert refused(result)["message"] == "missing scope 'write'"
    assert verdict["valid"] is True


@pytest.mark.parametrize("addressed_to", ["crackerjack", "session-buddy-eu"])
def test_an_envelope_addressed_to_another_project_is_not_valid(
    as_caller: Callable[[str], Caller], addressed_to: str
) -> None:
    envelope = CrossProjectAuth(SECRET).sign_envelope("mahavishnu", addressed_to, {"n": 2})

    verdict = ok(as_caller(mahavishnu("write"))("verify_envelope", envelope=envelope))

    assert (verdict["valid"], verdict["problem"]) == (False, "wrong_recipient")
    assert verdict["content"] is None


def test_a_default_mahavishnu_token_read_execute_changes_sessions(
    as_caller: Callable[[str], Caller], repo: Path
) -> None:
    call = as_caller(mahavishnu("read", "execute"))
    assert ok(call("start_session", working_directory=str(repo)))["user_id"] == "mahavishnu"
    assert ok(call("checkpoint", working_directory=str(repo), note="n"))["number"] == 1
    assert ok(call("end_session", working_directory=str(repo)))["markdown"]


def test_a_write_only_token_cannot_read(as_caller: Callable[[str], Caller], repo: Path) -> None:
    call = as_caller(mahavishnu("write"))
    assert ok(call("start_session", working_directory=str(repo)))["user_id"] == "mahavishnu"
    assert refused(call("list_sessions"))["message"] == "missing scope 'read'"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda: mahavishnu("admin"), id="admin"),
        pytest.param(lambda: mint(SECRET, "alice", scope="read write"), id="rfc9068-scope"),
        pytest.param(lambda: mint(SECRET, "alice"), id="no-scope-claim"),
        pytest.param(
            lambda: create_service_token(
                secret=SECRET,
                issuer="mahavishnu",
                audience="session-buddy",
                permissions=["read", "write"],
            ),
            id="released-mcp-common",
        ),
    ],
)
def test_full_access_tokens_change_and_read_sessions(
    as_caller: Callable[[str], Caller], repo: Path, token: Callable[[], str]
) -> None:
    call = as_caller(token())
    started = ok(call("start_session", working_directory=str(repo)))
    assert ok(call("list_sessions"))["sessions"][0]["id"] == started["id"]


def test_whoami_needs_no_scope_and_shows_the_scopes(as_caller: Callable[[str], Caller]) -> None:
    identity = ok(as_caller(mahavishnu("read", "execute"))("whoami"))
    assert identity["scopes"] == ["execute", "read"]
    assert ok(as_caller(mahavishnu())("whoami"))["scopes"] == []
    assert ok(as_caller(mint(SECRET, "alice"))("whoami"))["scopes"] is None


def test_a_read_only_bearer_is_a_valid_credential_over_http(http_url: str) -> None:
    response = post_json_rpc(http_url, INITIALIZE, authorization=f"Bearer {mahavishnu('read')}")
    assert response.status_code == 200  # a read-only token is a valid credential


# -- audience, and the headersHelper's header, end to end ------------------------------------


@pytest.mark.parametrize("transport", ["stdio", "http-argument"])
def test_a_token_minted_for_another_service_is_refused(
    request: pytest.FixtureRequest, portal: BlockingPortal, transport: str
) -> None:
    akosha = create_service_token(
        secret=SECRET, issuer="mahavishnu", audience="akosha", permissions=["admin"]
    )
    if transport == "stdio":
        result = request.getfixturevalue("stdio").call("whoami", token=akosha)
    else:
        conn = connect(portal, http_transport(request.getfixturevalue("http_url")))
        try:
            result = conn.call("whoami", token=akosha)
        finally:
            conn.close()
    assert text_of(result) == "❌ Authentication failed: Invalid token"
    assert refused(result)["reason"] == "bad_audience"


def test_a_bearer_for_another_service_gets_401(http_url: str) -> None:
    akosha = create_service_token(
        secret=SECRET, issuer="mahavishnu", audience="akosha", permissions=["admin"]
    )
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    response = post_json_rpc(http_url, call, authorization=f"Bearer {akosha}")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="session-buddy"')


def test_the_header_token_header_prints_is_served(
    portal: BlockingPortal, http_url: str, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    env = clean_environment(SESSION_BUDDY_SECRET_FILE=str(secret_file))
    printed = subprocess.run(
        [str(SCRIPT), "token", "header", "claude", "--scope", "read"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    bearer = json.loads(printed.stdout)["Authorization"].removeprefix("Bearer ")
    conn = connect(portal, http_transport(http_url, bearer=bearer))
    try:
        identity = ok(conn.call("whoami"))
        denied = bearer_refusal(conn, "start_session", working_directory=str(tmp_path))
    finally:
        conn.close()
    assert (identity["user_id"], identity["scopes"]) == ("claude", ["read"])
    assert refused(denied)["message"] == "missing scope 'write'"


def test_a_server_on_bodai_shared_secret_accepts_tokens_minted_with_it(
    portal: BlockingPortal, tmp_path: Path
) -> None:
    shared = new_secret()
    env = server_environment(tmp_path / "data", BODAI_SHARED_SECRET=shared)
    with (tmp_path / "stderr.log").open("w") as errlog:
        conn = connect(portal, stdio_transport(env, tmp_path, errlog))
        try:
            identity = ok(conn.call("whoami", token=mint(shared, "alice")))
            stranger = conn.call("whoami", token=mint(new_secret(), "alice"))
        finally:
            conn.close()
    assert identity["authenticated"] and identity["user_id"] == "alice"
    assert refused(stranger)["reason"] == "bad_signature"


def test_require_audience_refuses_aud_less_tokens_end_to_end(
    portal: BlockingPortal, tmp_path: Path
) -> None:
    env = server_environment(tmp_path / "data", SECRET, SESSION_BUDDY_REQUIRE_AUDIENCE="true")
    with (tmp_path / "stderr.log").open("w") as errlog:
        conn = connect(portal, stdio_transport(env, tmp_path, errlog))
        try:
            bound = conn.call("whoami", token=mint(SECRET, "alice", aud="session-buddy"))
            unbound = conn.call("whoami", token=mint(SECRET, "alice"))
        finally:
            conn.close()
    assert ok(bound)["user_id"] == "alice"
    assert text_of(unbound) == "❌ Authentication failed: Invalid token"
    assert refused(unbound)["reason"] == "bad_audience"
