"""Serving beyond loopback: protected mode, Host/Origin checking, the audience warning, and
bearer-only HTTP — decided at start-up (``session_buddy.mcp.exposure``) and seen end to end.

Nothing leaves the machine: "beyond loopback" servers bind 0.0.0.0 and are reached through
127.0.0.1, with the ``Host`` header a remote client would send.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import BlockingPortal

from session_buddy.config import is_loopback, load_settings
from session_buddy.mcp.exposure import (
    LOOPBACK_HOSTS,
    review_http_exposure,
    transport_security,
)
from testkit.environment import new_secret, server_environment
from testkit.mcp import (
    INITIALIZE,
    JSON_RPC_HEADERS,
    connect,
    http_transport,
    ok,
    post_json_rpc,
    refused,
    stdio_transport,
    text_of,
)
from testkit.server import LOOPBACK, can_bind, launch_http_server, run_server
from testkit.tokens import mint

ANY_ADDRESS = "0.0.0.0"

# -- the rules, as pure functions -------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "sessions.example.com", ""])
def test_hosts_beyond_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_loopback_needs_nothing_and_says_nothing() -> None:
    review = review_http_exposure(LOOPBACK, load_settings(), auth_enabled=False)
    assert review.refusal is None and review.warnings == ()
    checking = transport_security(LOOPBACK, load_settings())
    assert checking is not None and checking.enable_dns_rebinding_protection
    assert checking.allowed_hosts == list(LOOPBACK_HOSTS)  # what the SDK itself would allow


@pytest.mark.parametrize(
    ("host", "own"),
    [
        ("127.0.0.2", "127.0.0.2:*"),
        ("127.1.2.3", "127.1.2.3:*"),
        ("LOCALHOST", "LOCALHOST:*"),
        ("Localhost", "Localhost:*"),
        ("[0:0:0:0:0:0:0:1]", "[::1]:*"),
    ],
)
def test_every_loopback_spelling_checks_host_and_origin(host: str, own: str) -> None:
    checking = transport_security(host, load_settings())
    assert checking is not None and checking.enable_dns_rebinding_protection
    assert set(LOOPBACK_HOSTS) | {own} <= set(checking.allowed_hosts)
    assert f"http://{own}" in checking.allowed_origins
    assert not any("evil" in pattern for pattern in checking.allowed_hosts)


def test_beyond_loopback_without_authentication_is_refused_unless_allowed() -> None:
    refused = review_http_exposure(ANY_ADDRESS, load_settings(), auth_enabled=False)
    assert refused.refusal is not None and "authentication disabled" in refused.refusal
    for allowed in (
        review_http_exposure(
            ANY_ADDRESS, load_settings(), auth_enabled=False, allow_unauthenticated=True
        ),
        review_http_exposure(
            ANY_ADDRESS, load_settings(allow_unauthenticated=True), auth_enabled=False
        ),
    ):
        assert allowed.refusal is None
        assert any("WITHOUT authentication" in warning for warning in allowed.warnings)


def test_beyond_loopback_warns_about_any_host_and_aud_less_tokens() -> None:
    warnings = review_http_exposure(ANY_ADDRESS, load_settings(), auth_enabled=True).warnings
    assert len(warnings) == 2
    assert "any Host header is accepted" in warnings[0]
    assert "SESSION_BUDDY_ALLOWED_HOSTS" in warnings[0]
    assert "SESSION_BUDDY_REQUIRE_AUDIENCE=true" in warnings[1]
    quiet = load_settings(allowed_hosts="sb.example.com:*", require_audience=True)
    assert review_http_exposure(ANY_ADDRESS, quiet, auth_enabled=True).warnings == ()


def test_allowed_hosts_keep_the_sdks_checking_on_and_add_loopback_on_loopback() -> None:
    settings = load_settings(
        allowed_hosts="sb.example.com:*", allowed_origins="https://sb.example.com"
    )
    beyond = transport_security(ANY_ADDRESS, settings)
    assert beyond is not None and beyond.enable_dns_rebinding_protection
    assert beyond.allowed_hosts == ["sb.example.com:*"]
    assert beyond.allowed_origins == ["https://sb.example.com"]
    local = transport_security(LOOPBACK, settings)
    assert local is not None and local.allowed_hosts == [*LOOPBACK_HOSTS, "sb.example.com:*"]


# -- protected mode, end to end ------------------------------------------------------------------


@pytest.mark.e2e
def test_an_unauthenticated_http_server_beyond_loopback_refuses_to_start(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "data")
    result = run_server(env, tmp_path, "--transport", "http", "--host", ANY_ADDRESS, "--port", "1")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Refusing to serve over HTTP on 0.0.0.0 with authentication disabled" in lines[0]
    assert "SESSION_BUDDY_SECRET" in lines[0]
    assert "--allow-unauthenticated" in lines[0]
    assert "SESSION_BUDDY_ALLOW_UNAUTHENTICATED=true" in lines[0]


@pytest.mark.e2e
@pytest.mark.parametrize("how", ["option", "variable"])
def test_allowing_unauthenticated_on_purpose_starts_with_a_warning(
    tmp_path: Path, how: str
) -> None:
    extra = {"SESSION_BUDDY_ALLOW_UNAUTHENTICATED": "true"} if how == "variable" else {}
    args = ("--allow-unauthenticated",) if how == "option" else ()
    env = server_environment(tmp_path / "data", **extra)
    server = launch_http_server(env, tmp_path, host=ANY_ADDRESS, reach_at=LOOPBACK, args=args)
    with server:
        assert httpx.get(f"{server.base_url}/healthz").json()["auth_enabled"] is False
    assert server.log().count("WITHOUT authentication") == 1


@pytest.mark.e2e
def test_an_unauthenticated_loopback_server_still_starts(tmp_path: Path) -> None:
    with launch_http_server(server_environment(tmp_path / "data"), tmp_path) as server:
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
    assert "Refusing" not in server.log() and "any Host" not in server.log()


# -- Host and Origin beyond loopback ------------------------------------------------------------


def post_initialize(url: str, host: str, origin: str | None = None) -> int:
    headers = {**JSON_RPC_HEADERS, "Host": host}
    if origin is not None:
        headers["Origin"] = origin
    return httpx.post(url, json=INITIALIZE, headers=headers, timeout=10).status_code


@pytest.mark.e2e
def test_allowed_hosts_and_origins_are_enforced_beyond_loopback(tmp_path: Path) -> None:
    env = server_environment(
        tmp_path / "data",
        new_secret(),
        SESSION_BUDDY_ALLOWED_HOSTS="sb.example.com:*",
        SESSION_BUDDY_ALLOWED_ORIGINS="https://sb.example.com",
        SESSION_BUDDY_REQUIRE_AUDIENCE="true",
    )
    with launch_http_server(env, tmp_path, host=ANY_ADDRESS, reach_at=LOOPBACK) as server:
        name = f"sb.example.com:{server.port}"
        assert post_initialize(server.url, name) == 200
        assert post_initialize(server.url, name, origin="https://sb.example.com") == 200
        assert post_initialize(server.url, f"evil.example:{server.port}") == 421
        assert post_initialize(server.url, name, origin="https://evil.example") == 403
    log = server.log()
    assert "any Host header is accepted" not in log
    assert "SESSION_BUDDY_REQUIRE_AUDIENCE=true" not in log


@pytest.mark.e2e
def test_without_allowed_hosts_any_host_is_served_and_both_warnings_are_logged_once(
    tmp_path: Path,
) -> None:
    env = server_environment(tmp_path / "data", new_secret())
    with launch_http_server(env, tmp_path, host=ANY_ADDRESS, reach_at=LOOPBACK) as server:
        assert post_initialize(server.url, f"evil.example:{server.port}") == 200
    log = server.log()
    assert log.count("any Host header is accepted") == 1
    assert log.count("set SESSION_BUDDY_REQUIRE_AUDIENCE=true") == 1


@pytest.mark.e2e
def test_loopback_keeps_the_sdks_host_checking(tmp_path: Path) -> None:
    with launch_http_server(
        server_environment(tmp_path / "data", new_secret()), tmp_path
    ) as server:
        assert post_initialize(server.url, f"127.0.0.1:{server.port}") == 200
        assert post_initialize(server.url, f"evil.example:{server.port}") == 421


@pytest.mark.e2e
@pytest.mark.parametrize("host", ["127.0.0.2", "LOCALHOST"])
def test_every_loopback_bind_refuses_a_foreign_host_or_origin(tmp_path: Path, host: str) -> None:
    if not can_bind(host):
        pytest.skip(f"cannot bind {host} here")
    env = server_environment(tmp_path / "data", new_secret())
    with launch_http_server(
        env, tmp_path, host=host, reach_at=socket.gethostbyname(host)
    ) as server:
        own = f"{host}:{server.port}"
        assert post_initialize(server.url, own) == 200
        assert post_initialize(server.url, own, origin=f"http://{host}:{server.port}") == 200
        assert post_initialize(server.url, f"evil.example:{server.port}") == 421
        assert post_initialize(server.url, own, origin="http://evil.example") == 403


# -- bearer-only ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bearer_only(workdir: Path) -> Iterator[tuple[str, str]]:
    secret = new_secret()
    env = server_environment(workdir / "bearer-data", secret, SESSION_BUDDY_BEARER_ONLY="true")
    with launch_http_server(env, workdir) as server:
        yield server.url, secret


@pytest.mark.e2e
def test_a_bearer_only_server_publishes_no_token_argument(
    portal: BlockingPortal, bearer_only: tuple[str, str]
) -> None:
    url, secret = bearer_only
    conn = connect(portal, http_transport(url, bearer=mint(secret, "alice")))
    try:
        tools = conn.tools()
    finally:
        conn.close()
    assert len(tools) == 7  # every tool, verify_envelope included
    for tool in tools:
        assert "token" not in tool.input_schema.get("properties", {}), tool.name


@pytest.mark.e2e
def test_a_bearer_only_server_refuses_a_token_argument_saying_to_use_the_header(
    portal: BlockingPortal, bearer_only: tuple[str, str], repo: Path
) -> None:
    """Without the header nothing gets through (initialize is answered 401); beside it, a
    token argument is refused with the message naming the header."""
    url, secret = bearer_only
    anonymous = post_json_rpc(url, INITIALIZE)
    conn = connect(portal, http_transport(url, bearer=mint(secret, "a")))
    try:
        result = conn.call("start_session", working_directory=str(repo), token=mint(secret, "a"))
    finally:
        conn.close()
    assert anonymous.status_code == 401
    assert result.is_error
    assert text_of(result) == (
        "❌ Authentication failed: This server takes tokens only in the "
        "'Authorization: Bearer <token>' header, not as the token argument"
    )
    assert refused(result)["reason"] == "bearer_only"


@pytest.mark.e2e
def test_a_bearer_only_server_serves_the_header(
    portal: BlockingPortal, bearer_only: tuple[str, str], repo: Path
) -> None:
    url, secret = bearer_only
    conn = connect(portal, http_transport(url, bearer=mint(secret, "alice")))
    try:
        started = ok(conn.call("start_session", working_directory=str(repo)))
    finally:
        conn.close()
    assert started["user_id"] == "alice"


@pytest.mark.e2e
def test_bearer_only_leaves_stdio_alone(portal: BlockingPortal, tmp_path: Path, repo: Path) -> None:
    secret = new_secret()
    env = server_environment(tmp_path / "data", secret, SESSION_BUDDY_BEARER_ONLY="true")
    with (tmp_path / "stderr.log").open("w") as errlog:
        conn = connect(portal, stdio_transport(env, tmp_path, errlog))
        try:
            schema = {t.name: t.input_schema for t in conn.tools()}["start_session"]
            result = conn.call(
                "start_session", working_directory=str(repo), token=mint(secret, "a")
            )
        finally:
            conn.close()
    assert "token" in schema["properties"]
    assert ok(result)["user_id"] == "a"


# -- the shared secret's warning -------------------------------------------------------------------


@pytest.mark.e2e
def test_serving_with_bodai_shared_secret_warns_once_naming_it(tmp_path: Path) -> None:
    shared = new_secret()
    env = server_environment(tmp_path / "data", BODAI_SHARED_SECRET=shared)
    result = run_server(env, tmp_path, input="")
    assert result.stderr.count("BODAI_SHARED_SECRET") == 1, result.stderr
    assert shared not in result.stderr + result.stdout
    assert "JWT authentication disabled" not in result.stderr
