"""Protocol answers, over HTTP and stdio, by raw JSON-RPC and with the TypeScript client.

What the server does not serve gets a precise JSON-RPC error and no traceback in the log;
what it advertises it serves consistently (no prompts, no resources: empty lists, and
-32602 for any name or URI); any list cursor is invalid (it never hands one out); a batch
or other non-message JSON gets -32600 with a plain message; a line on stdio that is not
JSON gets -32700; an HTTP error answer to a request that named no session names none.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from session_buddy.mcp.protocol import (
    BATCH_NOT_SUPPORTED,
    INVALID_CURSOR,
    NOT_A_MESSAGE,
    NOT_JSON,
)
from testkit.environment import new_secret, server_environment
from testkit.mcp import (
    INITIALIZE,
    JSON_RPC_HEADERS,
    RawStdio,
    json_rpc_answer,
    post_json_rpc,
)
from testkit.server import SERVE, ServerProcess, launch_http_server
from testkit.typescript import (
    Http,
    Stdio,
    get_prompt,
    list_prompts,
    list_resources,
    request,
    run_typescript_client,
)

pytestmark = pytest.mark.e2e

SECRET = new_secret()
LIST_METHODS = ["tools/list", "prompts/list", "resources/list", "resources/templates/list"]
PING = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
SESSION_HEADER = "mcp-session-id"
STATELESS = "2026-07-28"


@pytest.fixture(scope="module")
def http(workdir: Path) -> Iterator[ServerProcess]:
    env = server_environment(workdir / "http-data", SECRET)
    with launch_http_server(env, workdir) as server:
        yield server


@pytest.fixture(scope="module")
def session(http: ServerProcess) -> str:
    """An initialized HTTP session's id."""
    opened = post_json_rpc(http.url, INITIALIZE)
    assert opened.status_code == 200
    session_id = opened.headers[SESSION_HEADER]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert post_json_rpc(http.url, initialized, session_id=session_id).status_code == 202
    return session_id


def call(http: ServerProcess, session: str, method: str, params: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 3, "method": method}
    if params is not None:
        message["params"] = params
    answer = json_rpc_answer(post_json_rpc(http.url, message, session_id=session))
    assert answer["id"] == 3, answer
    return answer


def error_of(answer: dict[str, Any]) -> dict[str, Any]:
    assert "error" in answer, answer
    error: dict[str, Any] = answer["error"]
    return error


def no_traceback(log: str) -> None:
    assert "Traceback" not in log
    assert " ERROR " not in log


# -- prompts and resources: advertised, and served consistently ------------------------------


def test_capabilities_advertise_only_what_is_served(http: ServerProcess) -> None:
    capabilities = json_rpc_answer(post_json_rpc(http.url, INITIALIZE))["result"]["capabilities"]
    assert set(capabilities) == {"tools", "prompts", "resources"}
    assert capabilities["resources"].get("subscribe") is not True
    assert not any(entry.get("listChanged") for entry in capabilities.values())


def test_the_stateless_era_claims_no_list_change_notifications(http: ServerProcess) -> None:
    """The lists never change, so on 2026-07-28 no ``subscriptions/listen`` is served and
    ``server/discover`` claims neither ``listChanged`` nor ``subscribe``."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": STATELESS,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = {**JSON_RPC_HEADERS, "Mcp-Protocol-Version": STATELESS}
    discover = {"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}
    answer = httpx.post(
        http.url, json=discover, headers={**headers, "Mcp-Method": "server/discover"}
    )
    capabilities = json_rpc_answer(answer)["result"]["capabilities"]
    assert set(capabilities) == {"tools", "prompts", "resources"}
    assert not any(entry.get("listChanged") for entry in capabilities.values())
    assert capabilities["resources"].get("subscribe") is not True
    subscribe = {"_meta": meta, "notifications": {"toolsListChanged": True}}
    listen = {**discover, "method": "subscriptions/listen", "params": subscribe}
    refused = httpx.post(http.url, json=listen, headers={**headers, "Mcp-Method": listen["method"]})
    assert json_rpc_answer(refused)["error"]["code"] == -32601


def test_advertised_lists_are_served_and_empty(http: ServerProcess, session: str) -> None:
    assert call(http, session, "prompts/list")["result"]["prompts"] == []
    assert call(http, session, "resources/list")["result"]["resources"] == []
    templates = call(http, session, "resources/templates/list")["result"]
    assert templates["resourceTemplates"] == []


def test_an_unknown_prompt_is_invalid_params_without_a_traceback(
    http: ServerProcess, session: str
) -> None:
    error = error_of(call(http, session, "prompts/get", {"name": "nope"}))
    assert error["code"] == -32602
    assert error["message"] == "Unknown prompt: nope"
    no_traceback(http.log())


def test_an_unknown_prompt_name_is_shown_escaped_and_bounded(
    http: ServerProcess, session: str
) -> None:
    error = error_of(call(http, session, "prompts/get", {"name": "\x1b[31m" + "x" * 10_000}))
    assert error["code"] == -32602
    assert "\x1b" not in error["message"]
    assert len(error["message"]) < 200


def test_an_unknown_resource_is_invalid_params(http: ServerProcess, session: str) -> None:
    error = error_of(call(http, session, "resources/read", {"uri": "file:///nope"}))
    assert error["code"] == -32602
    no_traceback(http.log())


# -- pagination ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", LIST_METHODS)
def test_any_cursor_is_invalid_params(http: ServerProcess, session: str, method: str) -> None:
    error = error_of(call(http, session, method, {"cursor": "garbage"}))
    assert error == {"code": -32602, "message": INVALID_CURSOR}


def test_lists_without_a_cursor_are_unaffected(http: ServerProcess, session: str) -> None:
    result = call(http, session, "tools/list", {})["result"]
    assert "nextCursor" not in result
    assert len(result["tools"]) == 7


# -- what is not one JSON-RPC message ------------------------------------------------------


@pytest.mark.parametrize("with_session", [True, False], ids=["session", "no-session"])
def test_a_batch_gets_a_plain_invalid_request(
    http: ServerProcess, session: str, with_session: bool
) -> None:
    response = post_json_rpc(http.url, [PING, PING], session_id=session if with_session else None)
    assert response.status_code == 400
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": BATCH_NOT_SUPPORTED},
    }


@pytest.mark.parametrize("body", [{"a": 1}, 42, "text", {"jsonrpc": "1.0", "id": 1}])
def test_json_that_is_no_message_gets_a_plain_invalid_request(
    http: ServerProcess, session: str, body: Any
) -> None:
    response = post_json_rpc(http.url, body, session_id=session)
    assert response.status_code == 400
    assert response.json()["error"] == {"code": -32600, "message": NOT_A_MESSAGE}
    assert "pydantic" not in response.text


def test_a_body_that_is_not_json_stays_a_parse_error(http: ServerProcess, session: str) -> None:
    response = post_json_rpc(http.url, b"{not json", session_id=session)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


def test_the_session_keeps_working_after_bad_messages(http: ServerProcess, session: str) -> None:
    post_json_rpc(http.url, [PING], session_id=session)
    post_json_rpc(http.url, b"\xff\xfe", session_id=session)
    assert call(http, session, "ping")["result"] == {}


# -- session ids on error answers ---------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [PING, [PING], {"a": 1}, b"{not json", {"jsonrpc": "2.0", "method": "notifications/x"}],
    ids=["request", "batch", "not-a-message", "not-json", "notification"],
)
def test_an_error_to_a_request_without_a_session_names_no_session(
    http: ServerProcess, body: Any
) -> None:
    response = post_json_rpc(http.url, body)
    assert response.status_code == 400
    assert SESSION_HEADER not in response.headers


def test_other_refusals_without_a_session_name_none_either(http: ServerProcess) -> None:
    not_acceptable = httpx.post(http.url, json=PING, headers={"Accept": "text/plain"})
    assert not_acceptable.status_code == 406
    assert SESSION_HEADER not in not_acceptable.headers
    stream = httpx.get(http.url, headers={"Accept": "text/event-stream"})
    assert stream.status_code >= 400
    assert SESSION_HEADER not in stream.headers


def test_an_error_in_a_session_names_that_session(http: ServerProcess, session: str) -> None:
    response = post_json_rpc(http.url, [PING], session_id=session)
    assert response.headers[SESSION_HEADER] == session


def test_initialize_still_opens_a_session(http: ServerProcess) -> None:
    opened = post_json_rpc(http.url, INITIALIZE)
    assert opened.status_code == 200
    session_id = opened.headers[SESSION_HEADER]
    assert post_json_rpc(http.url, PING, session_id=session_id).status_code == 200


def test_an_unknown_session_is_not_found_and_named_nowhere(http: ServerProcess) -> None:
    response = post_json_rpc(http.url, PING, session_id="no-such-session")
    assert response.status_code == 404
    assert SESSION_HEADER not in response.headers


# -- stdio ----------------------------------------------------------------------------------


@pytest.fixture
def stdio(workdir: Path) -> Iterator[tuple[RawStdio, Path]]:
    log = workdir / "stdio-raw.log"
    env = server_environment(workdir / "stdio-data", SECRET)
    with log.open("w") as errlog, RawStdio(env, workdir, errlog) as server:
        server.initialize()
        yield server, log


def test_a_line_that_is_not_json_gets_a_parse_error(stdio: tuple[RawStdio, Path]) -> None:
    server, _ = stdio
    server.send("{not json")
    assert server.receive() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": NOT_JSON},
    }
    assert server.request("ping", id=1)["result"] == {}


def test_a_batch_line_gets_a_plain_invalid_request(stdio: tuple[RawStdio, Path]) -> None:
    server, _ = stdio
    server.send([PING])
    assert server.receive()["error"] == {"code": -32600, "message": BATCH_NOT_SUPPORTED}
    server.send({"a": 1})
    assert server.receive()["error"] == {"code": -32600, "message": NOT_A_MESSAGE}
    assert server.request("ping", id=2)["result"] == {}


def test_a_blank_line_is_ignored(stdio: tuple[RawStdio, Path]) -> None:
    server, _ = stdio
    server.send("   ")
    assert server.request("ping", id=3)["result"] == {}


def test_over_stdio_an_unknown_prompt_and_a_cursor_are_invalid_params(
    stdio: tuple[RawStdio, Path],
) -> None:
    server, log = stdio
    unknown = server.request("prompts/get", {"name": "nope"}, id=4)
    assert unknown["error"] == {"code": -32602, "message": "Unknown prompt: nope"}
    cursor = server.request("tools/list", {"cursor": "x"}, id=5)
    assert cursor["error"] == {"code": -32602, "message": INVALID_CURSOR}
    no_traceback(log.read_text())


# -- the TypeScript client sees the same ------------------------------------------------------


@pytest.fixture(scope="module", params=["stdio", "http"])
def ts_transport(
    request: pytest.FixtureRequest, http: ServerProcess, workdir: Path
) -> Stdio | Http:
    if request.param == "http":
        return Http(http.url)
    env = server_environment(workdir / "ts-stdio-data", SECRET)
    return Stdio(SERVE, env, workdir, workdir / "ts-stdio.log")


def test_the_typescript_client_sees_the_same_answers(ts_transport: Stdio | Http) -> None:
    run = run_typescript_client(
        ts_transport,
        [
            list_prompts(),
            get_prompt("nope"),
            list_resources(cursor="garbage"),
            request("tools/list", {"cursor": "garbage"}),
        ],
    )
    capabilities = run.connect.value()["capabilities"]
    assert set(capabilities) == {"tools", "prompts", "resources"}
    prompts, unknown, resources, tools = run.outcomes
    assert prompts.value()["prompts"] == []
    assert (unknown.code, unknown.message) == (-32602, "MCP error -32602: Unknown prompt: nope")
    assert (resources.code, tools.code) == (-32602, -32602)
    assert tools.message == f"MCP error -32602: {INVALID_CURSOR}"


# -- the SDK internal this depends on ------------------------------------------------------


def test_the_sdk_still_keeps_the_lowlevel_server_that_stdio_runs() -> None:
    """``ProtocolServer.run_stdio_async`` runs ``MCPServer._lowlevel_server`` over its own
    read stream: if an SDK upgrade renames it, this says so before stdio breaks."""
    lowlevel = MCPServer("probe")._lowlevel_server
    assert callable(lowlevel.run)
    assert callable(lowlevel.create_initialization_options)
