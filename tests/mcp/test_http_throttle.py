"""The HTTP failure throttle end to end: 20 bad credentials in 60 s, then 429 for 60 s.

Each test connects from its own loopback address (127.0.0.x), so each is a separate
client to the one server this module starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal

from testkit.environment import new_secret, server_environment
from testkit.mcp import INITIALIZE, connect, http_transport, post_json_rpc, text_of, tools_call
from testkit.server import ServerProcess, can_bind, launch_http_server
from testkit.tokens import mint

# Linux routes all of 127.0.0.0/8 to loopback; macOS only 127.0.0.1 by default.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not can_bind("127.0.0.2"), reason="needs 127.0.0.x loopback aliases"),
]


class Caller:
    """Raw HTTP from one loopback address."""

    def __init__(self, server: ServerProcess, address: str) -> None:
        self.server = server
        self.address = address
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(local_address=address), timeout=10
        )

    def post(self, payload: dict[str, Any], authorization: str | None = None) -> httpx.Response:
        return post_json_rpc(
            self.server.url, payload, authorization=authorization, client=self._client
        )

    def close(self) -> None:
        self._client.close()


@pytest.fixture(scope="module")
def deployment(workdir: Path) -> Iterator[tuple[ServerProcess, str]]:
    secret = new_secret()
    with launch_http_server(server_environment(workdir / "data", secret), workdir) as server:
        yield server, secret


@pytest.fixture
def caller_factory(deployment: tuple[ServerProcess, str]) -> Iterator[Any]:
    callers: list[Caller] = []

    def make(address: str) -> Caller:
        caller = Caller(deployment[0], address)
        callers.append(caller)
        return caller

    yield make
    for caller in callers:
        caller.close()


def test_twenty_bad_headers_then_429_with_retry_after(
    deployment: tuple[ServerProcess, str], caller_factory: Any
) -> None:
    caller = caller_factory("127.0.0.2")
    statuses = [caller.post(INITIALIZE, "Bearer not-a-jwt").status_code for _ in range(20)]
    assert statuses == [401] * 20
    throttled = caller.post(INITIALIZE, "Bearer not-a-jwt")
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json()["error"] == "too_many_requests"


def test_a_valid_bearer_is_never_throttled(
    deployment: tuple[ServerProcess, str], caller_factory: Any
) -> None:
    _, secret = deployment
    caller = caller_factory("127.0.0.3")
    for _ in range(21):
        caller.post(INITIALIZE, "Bearer not-a-jwt")
    assert caller.post(INITIALIZE, "Bearer not-a-jwt").status_code == 429
    assert caller.post(INITIALIZE, f"Bearer {mint(secret, 'alice')}").status_code == 200


def test_other_clients_are_not_affected(
    deployment: tuple[ServerProcess, str], caller_factory: Any
) -> None:
    blocked = caller_factory("127.0.0.4")
    for _ in range(21):
        blocked.post(INITIALIZE, "Bearer not-a-jwt")
    other = caller_factory("127.0.0.5")
    assert other.post(INITIALIZE, "Bearer not-a-jwt").status_code == 401


def test_bad_token_arguments_count_and_are_then_refused_with_429(
    deployment: tuple[ServerProcess, str], caller_factory: Any, portal: BlockingPortal
) -> None:
    server, secret = deployment
    conn = connect(portal, http_transport(server.url, source="127.0.0.6"))
    try:
        for _ in range(20):
            result = conn.call("whoami", token="not-a-jwt")
            assert text_of(result) == "❌ Authentication failed: Invalid token"
        raw = caller_factory("127.0.0.6")
        throttled = raw.post(tools_call("whoami", {"token": "not-a-jwt"}))
        assert throttled.status_code == 429
        assert "Retry-After" in throttled.headers
        # A valid token argument, or none at all, still gets through while blocked.
        assert not conn.call("whoami", token=mint(secret, "alice")).is_error
        assert not conn.call("whoami").is_error
    finally:
        conn.close()


def test_missing_tokens_do_not_count_as_bad_credentials(
    deployment: tuple[ServerProcess, str], portal: BlockingPortal, repo: Path
) -> None:
    server, _ = deployment
    conn = connect(portal, http_transport(server.url, source="127.0.0.7"))
    try:
        for _ in range(22):
            result = conn.call("session_status", working_directory=str(repo))
            assert text_of(result) == "❌ Authentication failed: Token required"
    finally:
        conn.close()


def test_a_flood_of_bad_requests_writes_a_bounded_number_of_log_lines(
    deployment: tuple[ServerProcess, str], caller_factory: Any
) -> None:
    server, _ = deployment
    before = len(server.log().splitlines())
    flooder = caller_factory("127.0.0.8")
    statuses = [flooder.post(INITIALIZE, "Bearer not-a-jwt").status_code for _ in range(200)]
    assert statuses.count(401) == 20 and statuses.count(429) == 180
    written = server.log().splitlines()[before:]
    # One rate-limited "authentication failed" line per reason per client per 10 s,
    # no access-log line per request.
    assert len(written) <= 5, written
