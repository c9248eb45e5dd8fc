"""The server over streamable HTTP: /healthz, optional bearer headers, 401s, ownership.

One server process (authentication on, DEBUG logging) serves the whole module. Fewer
than 20 bad credentials are sent here, so the failure throttle never engages (it has its
own module).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal

from session_buddy.config import load_settings
from session_buddy.mcp.auth import AuthConfig, JWTManager
from testkit.environment import new_secret, server_environment
from testkit.mcp import (
    INITIALIZE,
    McpConnection,
    connect,
    http_transport,
    ok,
    post_json_rpc,
    text_of,
    tools_call,
)
from testkit.server import ServerProcess, launch_http_server
from testkit.tokens import Minter, mint

pytestmark = pytest.mark.e2e


@dataclass
class HttpDeployment:
    """The module's server (auth on, DEBUG logging) and a token minter for its secret."""

    server: ServerProcess
    portal: BlockingPortal
    secret: str
    token: Minter = field(init=False)

    def __post_init__(self) -> None:
        self.token = Minter(self.secret)

    def connect(self, bearer: str | None = None, mode: str = "auto") -> McpConnection:
        return connect(self.portal, http_transport(self.server.url, bearer=bearer), mode)

    def post(self, payload: dict[str, Any], authorization: str | None = None) -> httpx.Response:
        return post_json_rpc(self.server.url, payload, authorization=authorization)


@pytest.fixture(scope="module")
def http(portal: BlockingPortal, workdir: Path) -> Iterator[HttpDeployment]:
    secret = new_secret()
    env = server_environment(workdir / "data", secret, SESSION_BUDDY_LOG_LEVEL="DEBUG")
    with launch_http_server(env, workdir) as server:
        yield HttpDeployment(server, portal, secret)


@pytest.fixture
def session(http: HttpDeployment) -> Iterator[McpConnection]:
    """An MCP client without an Authorization header."""
    conn = http.connect()
    yield conn
    conn.close()


# -- health --------------------------------------------------------------------------------


def test_healthz_answers_ok(http: HttpDeployment) -> None:
    response = httpx.get(f"{http.server.base_url}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["auth_enabled"] is True


# -- without a header: the tool-level rules --------------------------------------------------


def test_token_argument_works_without_any_header(
    http: HttpDeployment, session: McpConnection, repo: Path
) -> None:
    started = ok(
        session.call("start_session", working_directory=str(repo), token=http.token("alice"))
    )
    assert started["user_id"] == "alice"


def test_no_header_and_no_token_is_refused_with_public_message(
    session: McpConnection, repo: Path
) -> None:
    result = session.call("start_session", working_directory=str(repo))
    assert result.is_error
    assert text_of(result) == "❌ Authentication failed: Token required"


# -- a valid bearer header ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_bearer_header_identifies_the_caller_without_token_argument(
    http: HttpDeployment, repo: Path, mode: str
) -> None:
    conn = http.connect(bearer=http.token("alice", role="developer"), mode=mode)
    try:
        identity = ok(conn.call("whoami"))
        assert identity["authenticated"] is True
        assert identity["user_id"] == "alice"
        assert identity["role"] == "developer"
        started = ok(conn.call("start_session", working_directory=str(repo)))
        assert started["user_id"] == "alice"
    finally:
        conn.close()


def test_bearer_scheme_is_case_insensitive(http: HttpDeployment) -> None:
    response = http.post(INITIALIZE, authorization=f"bearer {http.token('alice')}")
    assert response.status_code == 200


def test_header_and_argument_for_the_same_user_are_accepted(http: HttpDeployment) -> None:
    conn = http.connect(bearer=http.token("alice"))
    try:
        assert ok(conn.call("whoami", token=http.token("alice")))["user_id"] == "alice"
    finally:
        conn.close()


def test_header_and_argument_naming_different_users_are_refused(
    http: HttpDeployment, repo: Path
) -> None:
    conn = http.connect(bearer=http.token("alice"))
    try:
        result = conn.call("start_session", working_directory=str(repo), token=http.token("bob"))
    finally:
        conn.close()
    assert result.is_error
    assert text_of(result) == (
        "❌ Authentication failed: Token argument and Authorization header name different users"
    )


def test_bearer_identities_own_their_sessions(http: HttpDeployment, repo: Path) -> None:
    alice = http.connect(bearer=http.token("alice"))
    bob = http.connect(bearer=http.token("bob"))
    orchestrator = http.connect(bearer=http.token("mahavishnu", role="orchestrator"))
    try:
        started = ok(alice.call("start_session", working_directory=str(repo)))
        assert ok(bob.call("session_status", working_directory=str(repo)))["active"] is False
        assert bob.call("end_session", working_directory=str(repo)).is_error
        status = ok(orchestrator.call("session_status", working_directory=str(repo)))
        assert status["session"]["id"] == started["id"]
    finally:
        for conn in (alice, bob, orchestrator):
            conn.close()


# -- an invalid bearer header: 401 before any tool runs ---------------------------------------


def _expect_401(response: httpx.Response, description: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == (
        'Bearer realm="session-buddy", scope="read write", error="invalid_token", '
        f'error_description="{description}"'
    )
    assert response.json()["message"] == f"❌ Authentication failed: {description}"


def test_expired_bearer_gets_401(http: HttpDeployment) -> None:
    expired = mint(http.secret, "alice", lifetime=-60)
    _expect_401(http.post(INITIALIZE, f"Bearer {expired}"), "Token has expired")


def test_bearer_signed_with_another_secret_gets_401(http: HttpDeployment) -> None:
    forged = mint(new_secret(), "alice")
    _expect_401(http.post(INITIALIZE, f"Bearer {forged}"), "Invalid token")


def test_malformed_bearer_gets_401(http: HttpDeployment) -> None:
    _expect_401(http.post(INITIALIZE, "Bearer not-a-jwt"), "Invalid token")


def test_other_authorization_scheme_gets_401(http: HttpDeployment) -> None:
    _expect_401(http.post(INITIALIZE, "Basic YWxpY2U6cGFzc3dvcmQ="), "Invalid token")


def test_revoked_bearer_gets_401(http: HttpDeployment) -> None:
    token = http.token("carol")
    assert http.post(INITIALIZE, f"Bearer {token}").status_code == 200
    settings = load_settings(secret=http.secret, data_dir=http.server.data_dir)
    JWTManager(AuthConfig(settings)).revoke_token(token)
    deadline = time.monotonic() + 5
    while (response := http.post(INITIALIZE, f"Bearer {token}")).status_code == 200:
        assert time.monotonic() < deadline, "revocation never reached the server"
        time.sleep(0.1)
    _expect_401(response, "Token has been revoked")


def test_invalid_bearer_stops_a_tool_call_before_the_tool_runs(
    http: HttpDeployment, repo: Path
) -> None:
    forged = mint(new_secret(), "alice")
    call = tools_call(
        "start_session",
        {"working_directory": str(repo), "token": http.token("alice")},
        request_id=2,
    )
    _expect_401(http.post(call, f"Bearer {forged}"), "Invalid token")
    conn = http.connect(bearer=http.token("alice"))
    try:
        listed = ok(conn.call("list_sessions", working_directory=str(repo)))
    finally:
        conn.close()
    assert listed["sessions"] == []


# -- logging -------------------------------------------------------------------------------


def test_header_failures_are_logged_with_client_address_and_fingerprint(
    http: HttpDeployment,
) -> None:
    http.post(INITIALIZE, f"Bearer {mint(new_secret(), 'mallory')}")
    lines = [line for line in http.server.log().splitlines() if "reason=bad_signature" in line]
    assert lines
    assert "tool=Authorization header client=127.0.0.1 token_fp=" in lines[0]


def test_debug_log_contains_no_token_header_or_secret(http: HttpDeployment) -> None:
    http.post(INITIALIZE, f"Bearer {http.token('alice')}")
    log = http.server.log()
    assert " DEBUG " in log
    assert "uvicorn" in log
    assert http.secret not in log
    assert "eyJ" not in log
    for token in http.token.issued:
        assert token.split(".")[2] not in log
