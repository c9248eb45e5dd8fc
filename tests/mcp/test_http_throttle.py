"""The HTTP failure throttle end to end: 20 bad credentials in 60 s, then 429 for 60 s.

Each test connects from its own loopback address (127.0.0.x), so each is a separate
client to the one server this module starts.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal

from tests.mcp.helpers import (
    INITIALIZE,
    JSON_RPC_HEADERS,
    HttpServer,
    connect,
    http_transport,
    mint,
    new_secret,
    server_environment,
    start_http_server,
    text_of,
)


def _loopback_aliases_work() -> bool:
    """Linux routes all of 127.0.0.0/8 to loopback; macOS only 127.0.0.1 by default."""
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.2", 0))
    except OSError:
        return False
    return True


pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not _loopback_aliases_work(), reason="needs 127.0.0.x loopback aliases"),
]


def tools_call(token: str | None) -> dict[str, Any]:
    arguments = {} if token is None else {"token": token}
    return {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "whoami", "arguments": arguments},
    }


class Caller:
    """Raw HTTP from one loopback address."""

    def __init__(self, server: HttpServer, address: str) -> None:
        self.server = server
        self.address = address
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(local_address=address), timeout=10
        )

    def post(self, payload: dict[str, Any], authorization: str | None = None) -> httpx.Response:
        headers = dict(JSON_RPC_HEADERS)
        if authorization is not None:
            headers["Authorization"] = authorization
        return self._client.post(self.server.url, json=payload, headers=headers)

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HttpServer, str]]:
    workdir = tmp_path_factory.mktemp("throttle-server")
    secret = new_secret()
    server = start_http_server(server_environment(workdir / "data", secret), workdir)
    try:
        yield server, secret
    finally:
        server.stop()


@pytest.fixture
def caller_factory(deployment: tuple[HttpServer, str]) -> Iterator[Any]:
    callers: list[Caller] = []

    def make(address: str) -> Caller:
        caller = Caller(deployment[0], address)
        callers.append(caller)
        return caller

    yield make
    for caller in callers:
        caller.close()


def test_twenty_bad_headers_then_429_with_retry_after(
    deployment: tuple[HttpServer, str], caller_factory: Any
) -> None:
    caller = caller_factory("127.0.0.2")
    statuses = [caller.post(INITIALIZE, "Bearer not-a-jwt").status_code for _ in range(20)]
    assert statuses == [401] * 20
    throttled = caller.post(INITIALIZE, "Bearer not-a-jwt")
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json()["error"] == "too_many_requests"


def test_a_valid_bearer_is_never_throttled(
    deployment: tuple[HttpServer, str], caller_factory: Any
) -> None:
    _, secret = deployment
    caller = caller_factory("127.0.0.3")
    for _ in range(21):
        caller.post(INITIALIZE, "Bearer not-a-jwt")
    assert caller.post(INITIALIZE, "Bearer not-a-jwt").status_code == 429
    assert caller.post(INITIALIZE, f"Bearer {mint(secret, 'alice')}").status_code == 200


def test_other_clients_are_not_affected(
    deployment: tuple[HttpServer, str], caller_factory: Any
) -> None:
    blocked = caller_factory("127.0.0.4")
    for _ in range(21):
        blocked.post(INITIALIZE, "Bearer not-a-jwt")
    other = caller_factory("127.0.0.5")
    assert other.post(INITIALIZE, "Bearer not-a-jwt").status_code == 401


def test_bad_token_arguments_count_and_are_then_refused_with_429(
    deployment: tuple[HttpServer, str], caller_factory: Any, portal: BlockingPortal
) -> None:
    server, secret = deployment
    conn = connect(portal, http_transport(server.url, local_address="127.0.0.6"))
    try:
        for _ in range(20):
            result = conn.call("whoami", token="not-a-jwt")
            assert text_of(result) == "❌ Authentication failed: Invalid token"
        raw = caller_factory("127.0.0.6")
        throttled = raw.post(tools_call("not-a-jwt"))
        assert throttled.status_code == 429
        assert "Retry-After" in throttled.headers
        # A valid token argument, or none at all, still gets through while blocked.
        assert not conn.call("whoami", token=mint(secret, "alice")).is_error
        assert not conn.call("whoami").is_error
    finally:
        conn.close()


def test_missing_tokens_do_not_count_as_bad_credentials(
    deployment: tuple[HttpServer, str], portal: BlockingPortal, repo: Path
) -> None:
    server, _ = deployment
    conn = connect(portal, http_transport(server.url, local_address="127.0.0.7"))
    try:
        for _ in range(22):
            result = conn.call("session_status", working_directory=str(repo))
            assert text_of(result) == "❌ Authentication failed: Token required"
    finally:
        conn.close()


def test_a_flood_of_bad_requests_writes_a_bounded_number_of_log_lines(
    deployment: tuple[HttpServer, str], caller_factory: Any
) -> None:
    server, _ = deployment
    before = len(server.stderr().splitlines())
    flooder = caller_factory("127.0.0.8")
    statuses = [flooder.post(INITIALIZE, "Bearer not-a-jwt").status_code for _ in range(200)]
    assert statuses.count(401) == 20 and statuses.count(429) == 180
    written = server.stderr().splitlines()[before:]
    # One rate-limited "authentication failed" line per reason per client per 10 s,
    # no access-log line per request.
    assert len(written) <= 5, written
