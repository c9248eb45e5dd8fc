"""HTTP headers as the server reads them: trimmed, and bounded.

RFC 9110 leaves the spaces and tabs around a field value out of it, and a header block
must not grow without bound. uvicorn's h11 parser (what ships: ``UVICORN_HTTP``) does
both; httptools, uvicorn's other parser, keeps trailing blanks and hands the app a 10 MB
header, which is why it is not used. Given padded values byte for byte over a socket, the
real server reads a padded bearer token and session id as the caller and the session, and
a padded ``Mcp-Name`` as the tool (the MCP conformance suite's
``sep-2243-server-accepts-whitespace-header-value``); a 10 MB header is refused without an
answer from the app, and the server keeps serving.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from session_buddy.mcp import server as mcp_server
from testkit.environment import new_secret, server_environment
from testkit.mcp import (
    INITIALIZE,
    MODERN_PROTOCOL,
    exchange_raw,
    modern_meta,
    post_json_rpc,
    post_raw,
    tools_call,
)
from testkit.server import ServerProcess, launch_http_server
from testkit.tokens import mint

pytestmark = pytest.mark.e2e

SECRET = new_secret()
ACCEPT = "Accept: application/json, text/event-stream"
HUGE = 10_000_000


# -- the real server -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root: Path = tmp_path_factory.mktemp("headers")
    with launch_http_server(server_environment(root / "data", SECRET), root) as server:
        yield server


def test_padded_bearer_token_and_session_id_still_name_the_caller_and_session(
    http: ServerProcess,
) -> None:
    token = mint(SECRET, "ann")
    opened = post_json_rpc(http.url, INITIALIZE, authorization=f"Bearer {token}")
    session = opened.headers["mcp-session-id"]
    padded = [
        ACCEPT,
        f"Authorization: Bearer {token} \t ",
        f"Mcp-Session-Id: \t{session}  ",
        "Mcp-Protocol-Version: 2025-11-25 ",
    ]
    status, body = post_raw(http.url, tools_call("whoami", {}), padded)
    assert status == 200, body
    assert json.loads(body)["result"]["structuredContent"]["user_id"] == "ann"


def test_a_padded_mcp_name_still_names_the_tool(http: ServerProcess) -> None:
    call = tools_call("whoami", {}, request_id=5)
    call["params"]["_meta"] = modern_meta()
    padded = [
        ACCEPT,
        f"Authorization: Bearer {mint(SECRET, 'bob')}",
        f"Mcp-Protocol-Version: {MODERN_PROTOCOL}",
        "Mcp-Method:  tools/call ",
        "Mcp-Name: \twhoami  ",
    ]
    status, body = post_raw(http.url, call, padded)
    assert status == 200, body
    assert json.loads(body)["result"]["structuredContent"]["user_id"] == "bob"


def test_the_server_parses_with_h11() -> None:
    assert mcp_server.UVICORN_HTTP == "h11"


def test_a_10_mb_header_is_refused_and_the_server_keeps_serving(http: ServerProcess) -> None:
    request = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: "
        + b"a" * HUGE
        + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    answer = exchange_raw(http.url, request, timeout=30)
    # h11 stops reading past its limit: the connection drops, or uvicorn's own 400; the app
    # (whose answers are JSON) never sees the request
    assert answer == b"" or b"Invalid HTTP request received" in answer, answer[:300]
    token = mint(SECRET, "carol")
    opened = post_json_rpc(http.url, INITIALIZE, authorization=f"Bearer {token}")
    assert opened.json()["result"]["serverInfo"]["name"] == "session-buddy"
    assert "Traceback" not in http.log()
