"""Signed tokens with odd numbers and odd spaces, against a real HTTP server.

Whoever holds the secret (or a verifier that lets odd values through) can sign anything; an
``exp`` beyond a double or a scope separated by a Unicode space must be a clean refusal
(401 "Invalid token", or the tool's missing-scope error), never a 500 or a wider grant.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal
from mcp.shared.exceptions import MCPError

from testkit.environment import new_secret, server_environment
from testkit.mcp import INITIALIZE, connect, http_transport, post_json_rpc, text_of
from testkit.server import ServerProcess, launch_http_server
from testkit.tokens import RawJson, assemble, claims

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[ServerProcess]:
    env = server_environment(workdir / "data", new_secret())
    with launch_http_server(env, workdir) as started:
        assert started.secret is not None
        yield started


def _signed(server: ServerProcess, payload: str) -> str:
    return assemble({"alg": "HS256", "typ": "JWT"}, RawJson(payload), server.secret)


@pytest.mark.parametrize("exp", ["1" + "0" * 400, "-1" + "0" * 400, "1e400", "NaN"])
def test_a_bearer_with_an_exp_beyond_a_double_gets_401(server: ServerProcess, exp: str) -> None:
    token = _signed(server, f'{{"user_id": "alice", "exp": {exp}}}')

    response = post_json_rpc(server.url, INITIALIZE, authorization=f"Bearer {token}")

    assert response.status_code == 401, response.text
    assert response.json()["message"] == "❌ Authentication failed: Invalid token"


def test_a_token_argument_with_an_exp_beyond_a_double_is_invalid(
    server: ServerProcess, portal: BlockingPortal
) -> None:
    token = _signed(server, '{"user_id": "alice", "exp": 1' + "0" * 400 + "}")
    conn = connect(portal, http_transport(server.url))
    try:
        result = conn.call("whoami", token=token)
    finally:
        conn.close()

    assert result.is_error
    assert text_of(result) == "❌ Authentication failed: Invalid token"


def test_a_scope_after_a_no_break_space_is_not_granted(
    server: ServerProcess, portal: BlockingPortal
) -> None:
    token = assemble(
        {"alg": "HS256", "typ": "JWT"}, claims("alice", scope="read\u00a0admin"), server.secret
    )
    conn = connect(portal, http_transport(server.url, bearer=token))
    try:
        with pytest.raises(MCPError) as refusal:  # the HTTP 403 step-up
            conn.call("list_sessions")
    finally:
        conn.close()

    assert refusal.value.message == "❌ Authorization failed: missing scope 'read'"
