"""What MCP clients see of the OAuth resource server over streamable HTTP: Protected Resource
Metadata (RFC 9728), the bearer challenge of every 401 and 403, bearer-only servers, the
403 step-up — against real server processes, the kit's real OpenID provider
(``openid_provider``) and the official Python and TypeScript SDK clients."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import pytest
from anyio.from_thread import BlockingPortal
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.utils import extract_field_from_www_auth
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from starlette.applications import Starlette
from starlette.testclient import TestClient

from session_buddy.auth.errors import InvalidTokenError
from session_buddy.client import ClientCredentials, SessionBuddyAuthError, SessionBuddyClient
from session_buddy.client.errors import SessionBuddyError
from session_buddy.config import ResourceUrlError, load_settings
from session_buddy.mcp.challenge import BearerChallenge, quoted_value
from session_buddy.mcp.refusals import refusal_response
from session_buddy.mcp.resource_metadata import metadata_paths, resource_url
from session_buddy.mcp.step_up import FORBIDDEN
from testkit.environment import new_secret, server_environment
from testkit.git import make_git_repo
from testkit.mcp import (
    INITIALIZE,
    connect,
    http_transport,
    ok,
    post_json_rpc,
    refused,
    tools_call,
)
from testkit.oidc import BrowserLogin, MemoryTokenStorage, OpenIDProvider
from testkit.server import ServerProcess, launch_http_server, run_server
from testkit.tokens import mint
from testkit.typescript import Http, bearer, call_tool, run_typescript_client

pytestmark = pytest.mark.e2e

SECRET = new_secret()
WELL_KNOWN = "/.well-known/oauth-protected-resource"


def challenge_of(response: httpx.Response) -> str:
    return response.headers["WWW-Authenticate"]


@pytest.fixture(scope="module")
def with_issuer(workdir: Path, openid_provider: OpenIDProvider) -> Iterator[ServerProcess]:
    """The shared secret and an OAuth issuer (the kit's provider); bearer-only by default."""
    env = server_environment(
        workdir / "issuer-data", SECRET, SESSION_BUDDY_OAUTH_ISSUER=openid_provider.issuer
    )
    with launch_http_server(env, workdir) as server:
        yield server


@pytest.fixture(scope="module")
def secret_only(workdir: Path) -> Iterator[ServerProcess]:
    """The shared secret alone, settings as they default."""
    with launch_http_server(server_environment(workdir / "secret-data", SECRET), workdir) as server:
        yield server


def metadata_url_of(server: ServerProcess) -> str:
    return f"{server.base_url}{WELL_KNOWN}/mcp"


def expected_401(server: ServerProcess) -> str:
    return (
        f'Bearer realm="session-buddy", resource_metadata="{metadata_url_of(server)}", '
        'scope="read write"'
    )


# -- Protected Resource Metadata ------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{WELL_KNOWN}/mcp", WELL_KNOWN], ids=["path", "root"])
def test_the_metadata_names_the_resource_the_issuer_and_the_scopes(
    with_issuer: ServerProcess, openid_provider: OpenIDProvider, path: str
) -> None:
    response = httpx.get(f"{with_issuer.base_url}{path}", trust_env=False)
    assert response.status_code == 200
    assert response.json() == {
        "resource": with_issuer.url,
        "authorization_servers": [openid_provider.issuer],
        "scopes_supported": ["read", "write", "admin"],
        "bearer_methods_supported": ["header"],
        "resource_name": "session-buddy",
    }


def test_the_metadata_is_served_whatever_authorization_header_comes_with_it(
    with_issuer: ServerProcess,
) -> None:
    response = httpx.get(
        metadata_url_of(with_issuer), headers={"Authorization": "Bearer junk"}, trust_env=False
    )
    assert response.status_code == 200


def test_a_shared_secret_alone_publishes_no_metadata(secret_only: ServerProcess) -> None:
    for path in (f"{WELL_KNOWN}/mcp", WELL_KNOWN):
        assert httpx.get(f"{secret_only.base_url}{path}", trust_env=False).status_code == 404


def test_a_configured_resource_url_is_the_resource_and_derives_the_metadata_url(
    workdir: Path, openid_provider: OpenIDProvider
) -> None:
    env = server_environment(
        workdir / "resource-data",
        SECRET,
        SESSION_BUDDY_OAUTH_ISSUER=openid_provider.issuer,
        SESSION_BUDDY_RESOURCE_URL="https://sessions.example.com/mcp",
    )
    with launch_http_server(env, workdir) as server:
        metadata = httpx.get(f"{server.base_url}{WELL_KNOWN}/mcp", trust_env=False).json()
        refused_here = post_json_rpc(server.url, INITIALIZE)
    assert metadata["resource"] == "https://sessions.example.com/mcp"
    assert extract_field_from_www_auth(refused_here, "resource_metadata") == (
        f"https://sessions.example.com{WELL_KNOWN}/mcp"
    )


def test_an_issuer_beyond_loopback_without_a_resource_url_does_not_start(tmp_path: Path) -> None:
    env = server_environment(
        tmp_path / "data", SECRET, SESSION_BUDDY_OAUTH_ISSUER="https://idp.example.com"
    )
    result = run_server(env, tmp_path, "--transport", "http", "--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 1
    assert "but SESSION_BUDDY_RESOURCE_URL is not set" in result.stderr
    assert "set SESSION_BUDDY_RESOURCE_URL" in result.stderr


# -- 401: the challenge ------------------------------------------------------------------------


def test_initialize_without_credentials_gets_401_pointing_to_the_metadata(
    with_issuer: ServerProcess,
) -> None:
    response = post_json_rpc(with_issuer.url, INITIALIZE)
    assert response.status_code == 401
    assert challenge_of(response) == expected_401(with_issuer)
    assert "error" not in response.json()  # RFC 6750 §3.1: no token, no error code
    pointed = extract_field_from_www_auth(response, "resource_metadata")
    assert pointed is not None
    assert httpx.get(pointed, trust_env=False).json()["resource"] == with_issuer.url


def test_a_bad_token_gets_401_invalid_token_with_the_metadata(with_issuer: ServerProcess) -> None:
    expired = mint(SECRET, "alice", lifetime=-60)
    response = post_json_rpc(with_issuer.url, INITIALIZE, authorization=f"Bearer {expired}")
    assert response.status_code == 401
    assert challenge_of(response) == (
        f'{expected_401(with_issuer)}, error="invalid_token", error_description="Token has expired"'
    )


def test_hs256_tokens_keep_working_beside_an_issuer(
    with_issuer: ServerProcess, portal: BlockingPortal
) -> None:
    conn = connect(portal, http_transport(with_issuer.url, bearer=mint(SECRET, "alice")))
    try:
        identity = ok(conn.call("whoami"))
    finally:
        conn.close()
    assert identity["user_id"] == "alice" and identity["authenticated"]


def test_health_stays_open_on_a_bearer_only_server(with_issuer: ServerProcess) -> None:
    assert httpx.get(f"{with_issuer.base_url}/healthz", trust_env=False).status_code == 200


def test_a_shared_secret_alone_challenges_without_metadata(secret_only: ServerProcess) -> None:
    response = post_json_rpc(secret_only.url, INITIALIZE, authorization="Bearer not-a-jwt")
    assert challenge_of(response) == (
        'Bearer realm="session-buddy", scope="read write", error="invalid_token", '
        'error_description="Invalid token"'
    )


def test_hostile_text_never_breaks_the_challenge() -> None:
    class HostileError(InvalidTokenError):
        public_message = 'bad "x"\\ \r\nSet-Cookie: a=b\x00 é ☃ error="forged"' + "z" * 500

    challenge = BearerChallenge(resource_metadata="http://127.0.0.1:1/.well-known/x", scope="read")
    app = Starlette()
    app.add_route("/", lambda request: refusal_response(HostileError(), challenge))
    response = TestClient(app).get("/")

    header = response.headers["WWW-Authenticate"]
    assert all(" " <= char <= "~" for char in header)
    assert "set-cookie" not in response.headers
    assert extract_field_from_www_auth(response, "error") == "invalid_token"
    assert extract_field_from_www_auth(response, "scope") == "read"
    description = header.partition('error_description="')[2]
    assert description.endswith('"') and '"' not in description[:-1]
    assert "\\" not in description and len(description) <= 201
    assert quoted_value('a"b\\c\x7f') == "a'b?c?"


# -- bearer-only -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "anonymous_status"),
    [
        pytest.param({}, 200, id="default"),
        pytest.param({"SESSION_BUDDY_BEARER_ONLY": "true"}, 401, id="bearer-only"),
        pytest.param(
            {"SESSION_BUDDY_BEARER_ONLY": "true", "SESSION_BUDDY_AUTH_REQUIRED": "false"},
            200,
            id="bearer-only-in-migration-mode",
        ),
    ],
)
def test_bearer_only_answers_a_request_without_credentials_401(
    tmp_path: Path, settings: dict[str, str], anonymous_status: int
) -> None:
    env = server_environment(tmp_path / "data", SECRET, **settings)
    with launch_http_server(env, tmp_path) as server:
        anonymous = post_json_rpc(server.url, INITIALIZE)
        with_token = post_json_rpc(
            server.url, INITIALIZE, authorization=f"Bearer {mint(SECRET, 'alice')}"
        )
        health = httpx.get(f"{server.base_url}/healthz", trust_env=False)
    assert anonymous.status_code == anonymous_status
    if anonymous_status == 401:
        assert challenge_of(anonymous) == 'Bearer realm="session-buddy", scope="read write"'
        assert anonymous.json()["message"] == "❌ Authentication failed: Token required"
    assert with_token.status_code == 200 and health.status_code == 200


def test_an_issuer_with_bearer_only_false_serves_anonymous_initialize(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    env = server_environment(
        tmp_path / "data",
        SECRET,
        SESSION_BUDDY_OAUTH_ISSUER=openid_provider.issuer,
        SESSION_BUDDY_BEARER_ONLY="false",
    )
    with launch_http_server(env, tmp_path) as server:
        assert post_json_rpc(server.url, INITIALIZE).status_code == 200


def test_the_typescript_client_without_credentials_sees_the_401(
    with_issuer: ServerProcess,
) -> None:
    run = run_typescript_client(Http(with_issuer.url), [])
    assert not run.connect.ok
    assert "401" in run.connect.message or run.connect.code == 401, run.connect


# -- 403: the step-up ------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["with_issuer", "secret_only"])
def test_a_read_only_bearer_gets_403_insufficient_scope_before_the_tool_runs(
    request: pytest.FixtureRequest, server: str, tmp_path: Path
) -> None:
    process: ServerProcess = request.getfixturevalue(server)
    reader = mint(SECRET, "reader", scopes=["read"])
    call = tools_call("start_session", {"working_directory": str(tmp_path)}, request_id=7)
    response = post_json_rpc(process.url, call, authorization=f"Bearer {reader}")

    assert response.status_code == 403
    metadata = (
        f'resource_metadata="{metadata_url_of(process)}", ' if server == "with_issuer" else ""
    )
    assert challenge_of(response) == (
        f'Bearer realm="session-buddy", {metadata}scope="write", error="insufficient_scope", '
        "error_description=\"missing scope 'write'\""
    )
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {
            "code": FORBIDDEN,
            "message": "❌ Authorization failed: missing scope 'write'",
            "data": {
                "error": "insufficient_scope",
                "error_description": "missing scope 'write'",
                "scope": "write",
                "reason": "missing_scope",
            },
        },
    }
    assert not (tmp_path / ".session-buddy").exists()


def test_the_token_argument_keeps_its_tool_error(
    secret_only: ServerProcess, portal: BlockingPortal, tmp_path: Path
) -> None:
    conn = connect(portal, http_transport(secret_only.url))
    try:
        result = conn.call(
            "start_session",
            working_directory=str(tmp_path),
            token=mint(SECRET, "reader", scopes=["read"]),
        )
    finally:
        conn.close()
    assert refused(result)["reason"] == "missing_scope"


def test_a_full_token_beside_a_bearer_is_judged_by_the_tool(
    secret_only: ServerProcess, portal: BlockingPortal, tmp_path: Path
) -> None:
    project = make_git_repo(tmp_path / "project")
    reader = mint(SECRET, "carol", scopes=["read"])
    conn = connect(portal, http_transport(secret_only.url, bearer=reader))
    try:
        result = conn.call(
            "start_session",
            working_directory=str(project),
            token=mint(SECRET, "carol", scopes=["read", "write"]),
        )
    finally:
        conn.close()
    assert ok(result)["user_id"] == "carol"


def test_session_buddy_client_reports_the_403_as_an_auth_error(
    secret_only: ServerProcess, tmp_path: Path
) -> None:
    async def scenario() -> tuple[SessionBuddyAuthError, int]:
        async with SessionBuddyClient.http(
            secret_only.url, token=mint(SECRET, "dave", scopes=["read"])
        ) as sb:
            with pytest.raises(SessionBuddyAuthError) as refusal:
                await sb.start(tmp_path)
            listed = await sb.list_sessions()
        return refusal.value, len(listed.sessions)

    error, listed = anyio.run(scenario)
    assert str(error) == "❌ Authorization failed: missing scope 'write'"
    assert error.reason == "missing scope 'write'"
    assert listed == 0


def test_the_typescript_client_sees_the_403_and_keeps_its_session(
    with_issuer: ServerProcess, tmp_path: Path
) -> None:
    reader = mint(SECRET, "erin", scopes=["read"])
    run = run_typescript_client(
        Http(with_issuer.url, bearer(reader)),
        [
            call_tool("start_session", working_directory=str(tmp_path)),
            call_tool("list_sessions"),
        ],
    )
    assert run.connect.ok, run.connect.error
    start, listed = run.outcomes
    assert not start.ok and start.code == 403
    assert "missing scope 'write'" in start.message
    assert listed.value()["structuredContent"]["sessions"] == []


# -- the OAuth dance, the SDK clients doing it from our 401 -----------------------------------


def oauth_client(
    server: ServerProcess, op: OpenIDProvider, client_id: str, scope: str | None = None
) -> SessionBuddyClient:
    credentials = ClientCredentials(
        client_id, op.client(client_id).secret or "", issuer=op.issuer, scope=scope
    )
    return SessionBuddyClient.http(server.url, oauth=credentials)


def test_client_credentials_discovery_goes_from_our_401_to_the_providers_token_endpoint(
    with_issuer: ServerProcess, openid_provider: OpenIDProvider
) -> None:
    """Runs today: the SDK finds the metadata from our 401, the issuer from it, and gets a
    token from the provider; only accepting that token waits for the verifier."""
    before = openid_provider.request_count(openid_provider.token_endpoint, "POST")

    async def scenario() -> Any:
        async with oauth_client(with_issuer, openid_provider, "svc-admin") as sb:
            return await sb.whoami()

    with contextlib.suppress(SessionBuddyError):  # refused here until the verifier is merged
        anyio.run(scenario)
    assert openid_provider.request_count(openid_provider.token_endpoint, "POST") > before


def test_client_credentials_whoami_start_and_end(
    with_issuer: ServerProcess, openid_provider: OpenIDProvider, tmp_path: Path
) -> None:
    project = make_git_repo(tmp_path / "project")

    async def scenario() -> tuple[Any, Any, Any]:
        async with oauth_client(with_issuer, openid_provider, "svc-admin") as sb:
            me = await sb.whoami()
            started = await sb.start(project)
            ended = await sb.end(project, summary="done")
        return me, started, ended

    me, started, ended = anyio.run(scenario)
    assert me.authenticated and me.user_id == "svc-admin"
    assert started.user_id == f"svc-admin@{openid_provider.issuer}"  # bound to its issuer
    assert ended.markdown


def test_a_read_scoped_client_is_refused_start_with_403_and_lists(
    with_issuer: ServerProcess, openid_provider: OpenIDProvider, tmp_path: Path
) -> None:
    async def scenario() -> tuple[SessionBuddyAuthError, int]:
        async with oauth_client(with_issuer, openid_provider, "svc-reader", "read") as sb:
            with pytest.raises(SessionBuddyAuthError) as refusal:
                await sb.start(tmp_path)
            listed = await sb.list_sessions()
        return refusal.value, len(listed.sessions)

    error, listed = anyio.run(scenario)
    assert error.reason == "missing scope 'write'"
    assert listed == 0


def browser_client(server: ServerProcess, op: OpenIDProvider) -> tuple[BrowserLogin, Any]:
    """The SDK's authorization-code client (dynamic registration, PKCE) and the user at the
    browser, logging in as alice through the provider's forms."""
    browser = BrowserLogin(op, login="alice")
    provider = OAuthClientProvider(
        server.url,
        OAuthClientMetadata.model_validate(
            {
                "redirect_uris": ["http://127.0.0.1/callback"],
                "client_name": "session-buddy tests",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }
        ),
        MemoryTokenStorage(),
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    return browser, provider


async def whoami_through(server: ServerProcess, auth: Any) -> Any:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=30) as http,
        Client(streamable_http_client(server.url, http_client=http)) as client,
    ):
        return await client.call_tool("whoami", {})


def test_authorization_code_discovery_sends_the_browser_to_the_provider_for_this_resource(
    with_issuer: ServerProcess, openid_provider: OpenIDProvider
) -> None:
    """Runs today: from our 401 the SDK registers a client and sends the user to the
    provider's login with PKCE, this resource (RFC 8707) and the scopes our 401 names."""
    browser, provider = browser_client(with_issuer, openid_provider)
    with contextlib.suppress(Exception):  # refused here until the verifier is merged
        anyio.run(whoami_through, with_issuer, provider)
    assert browser.authorization_urls
    query = parse_qs(urlsplit(browser.authorization_urls[0]).query)
    assert query["resource"] == [with_issuer.url]
    assert query["scope"][0].split()[:2] == ["read", "write"]
    assert query["code_challenge_method"] == ["S256"]
    assert browser.response is not None and browser.response.code


def test_authorization_code_with_pkce_through_the_login_form(
    with_issuer: ServerProcess, openid_provider: OpenIDProvider
) -> None:
    browser, provider = browser_client(with_issuer, openid_provider)
    result = anyio.run(whoami_through, with_issuer, provider)
    assert len(browser.authorization_urls) == 1
    assert result.structured_content["user_id"] == "alice"


def test_the_resource_url_is_the_setting_else_the_loopback_address_as_bound() -> None:
    issuer = {"SESSION_BUDDY_OAUTH_ISSUER": "https://idp.example.com"}
    assert resource_url(load_settings(**issuer), "127.0.0.1", 8678) == ("http://127.0.0.1:8678/mcp")
    assert resource_url(load_settings(), "::1", 80) == "http://[::1]:80/mcp"
    assert resource_url(load_settings(), "localhost", 80) == "http://127.0.0.1:80/mcp"
    assert resource_url(load_settings(), "0.0.0.0", 80) is None
    given = load_settings(resource_url="https://sessions.example.com/mcp", **issuer)
    assert resource_url(given, "0.0.0.0", 80) == "https://sessions.example.com/mcp"
    with pytest.raises(ResourceUrlError):
        resource_url(load_settings(**issuer), "0.0.0.0", 80)
    assert metadata_paths("https://x.example/a/mcp") == (f"{WELL_KNOWN}/a/mcp", WELL_KNOWN)
