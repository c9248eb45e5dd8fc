"""An identity provider's access tokens end to end: a real server process trusting a real
OpenID provider (SESSION_BUDDY_OAUTH_ISSUER) beside its shared secret, and the official MCP
client sending the provider's tokens as the bearer header.

What the provider issues for this server works like an HS256 token (whoami, sessions,
scopes); what it would never issue, or issued for another server, is refused with 401; the
shared secret's tokens keep working on the same server; the same name under two issuers
owns two sets of sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from anyio.from_thread import BlockingPortal
from mcp.shared.exceptions import MCPError

from testkit.environment import new_secret, server_environment
from testkit.mcp import INITIALIZE, connect, http_transport, ok, post_json_rpc, text_of
from testkit.oidc import OpenIDProvider, alg_confusion, sign_with_unknown_key
from testkit.released import create_service_token
from testkit.server import ServerProcess, free_port, launch_http_server
from testkit.tokens import DROP, mint

pytestmark = pytest.mark.e2e

SECRET = new_secret()
MakeProvider = Callable[..., OpenIDProvider]


def start_server(workdir: Path, name: str, *issuers: str) -> ServerProcess:
    port = free_port()
    env = server_environment(
        workdir / f"{name}-data", SECRET, SESSION_BUDDY_OAUTH_ISSUER=",".join(issuers)
    )
    return launch_http_server(env, workdir, port=port)


def resource_of(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.port}/mcp"


@pytest.fixture(scope="module")
def server(workdir: Path, openid_provider: OpenIDProvider) -> Iterator[ServerProcess]:
    with start_server(workdir, "shared", openid_provider.issuer) as started:
        yield started


def status_for(server: ServerProcess, token: str) -> int:
    return post_json_rpc(server.url, INITIALIZE, authorization=f"Bearer {token}").status_code


@pytest.mark.parametrize("client", ["svc-admin", "svc-es256"])
def test_a_provider_token_works_like_an_hs256_one(
    portal: BlockingPortal,
    server: ServerProcess,
    openid_provider: OpenIDProvider,
    repo: Path,
    client: str,
) -> None:
    op = openid_provider
    token = op.client_credentials(client, resource=resource_of(server), scope="read write")
    conn = connect(portal, http_transport(server.url, bearer=token.access_token))
    try:
        me = ok(conn.call("whoami"))
        assert (me["user_id"], me["issuer"]) == (client, op.issuer)
        assert me["scopes"] == ["read", "write"]
        started = ok(conn.call("start_session", working_directory=str(repo)))
        listed = ok(conn.call("list_sessions"))["sessions"]
        assert [s["id"] for s in listed] == [started["id"]]
        assert listed[0]["user_id"] == f"{client}@{op.issuer}"
        ended = conn.call("end_session", working_directory=str(repo))
        assert not ended.is_error, text_of(ended)
    finally:
        conn.close()


def test_a_read_only_provider_token_cannot_start_a_session(
    portal: BlockingPortal, server: ServerProcess, openid_provider: OpenIDProvider, repo: Path
) -> None:
    token = openid_provider.client_credentials(
        "svc-reader", resource=resource_of(server), scope="read write"
    )  # the provider narrows it to read
    conn = connect(portal, http_transport(server.url, bearer=token.access_token))
    try:
        assert ok(conn.call("list_sessions"))["sessions"] == []
        with pytest.raises(MCPError) as refusal:  # over HTTP: 403 insufficient_scope (step-up)
            conn.call("start_session", working_directory=str(repo))
        assert refusal.value.error.message == "❌ Authorization failed: missing scope 'write'"
        assert ok(conn.call("list_sessions"))["sessions"] == []  # the connection still serves
    finally:
        conn.close()


def test_tokens_it_would_never_issue_for_this_server_are_refused_401(
    server: ServerProcess, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    resource = resource_of(server)
    claims = op.access_token_claims(resource=resource)
    hostile = {
        "another resource": op.client_credentials(
            "svc-admin", resource="http://127.0.0.1:1/mcp"
        ).access_token,
        "expired": op.forge(op.access_token_claims(resource=resource, now=1_700_000_000)),
        "wrong issuer": op.forge({**claims, "iss": "http://127.0.0.1:1"}),
        "no aud": op.forge(op.access_token_claims(resource=resource, aud=DROP)),
        "forged kid": sign_with_unknown_key(claims),
        "alg confusion": alg_confusion(claims, op.public_jwk(op.signing_kid())),
        "shared secret naming the issuer": mint(SECRET, "alice", iss=op.issuer, aud=resource),
    }
    statuses = {name: status_for(server, token) for name, token in hostile.items()}
    assert statuses == dict.fromkeys(hostile, 401)
    assert status_for(server, claims and op.forge(claims)) == 200


def test_hs256_tokens_keep_working_beside_the_provider(
    portal: BlockingPortal, server: ServerProcess
) -> None:
    service = create_service_token(
        secret=SECRET, issuer="mahavishnu", audience="session-buddy", permissions=["read"]
    )
    for token in (mint(SECRET, "alice"), service):
        conn = connect(portal, http_transport(server.url, bearer=token))
        try:
            me = ok(conn.call("whoami"))
            assert me["authenticated"] is True and me["issuer"] != "http"
        finally:
            conn.close()


def test_the_same_sub_under_two_issuers_and_the_secret_owns_three_sessions(
    portal: BlockingPortal, workdir: Path, make_openid_provider: MakeProvider, repo: Path
) -> None:
    first, second = make_openid_provider(), make_openid_provider()
    with start_server(workdir, "two-issuers", first.issuer, second.issuer) as server:
        resource = resource_of(server)
        tokens = [
            op.forge(op.access_token_claims(resource=resource, sub="alice", scope="read write"))
            for op in (first, second)
        ]
        tokens.append(mint(SECRET, "alice"))
        ids = []
        for token in tokens:
            conn = connect(portal, http_transport(server.url, bearer=token))
            try:
                started = ok(conn.call("start_session", working_directory=str(repo)))
                assert started["created"] is True
                ids.append(started["id"])
                assert [s["id"] for s in ok(conn.call("list_sessions"))["sessions"]] == [
                    started["id"]
                ]
            finally:
                conn.close()
        assert len(set(ids)) == 3


def test_rotation_and_a_provider_stopped_mid_run(
    portal: BlockingPortal, workdir: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider()
    with start_server(workdir, "rotation", op.issuer) as server:
        resource = resource_of(server)
        before = op.client_credentials("svc-admin", resource=resource).access_token
        assert status_for(server, before) == 200
        op.rotate("RS256")  # the old key stays published; the new one signs
        rotated = op.client_credentials("svc-admin", resource=resource).access_token
        # The unknown kid makes the server fetch the JWKS again (its first refresh).
        assert status_for(server, rotated) == 200
        op.stop()
        # Keys fetched before keep working; a kid never seen is refused at once.
        assert status_for(server, rotated) == 200
        forged = sign_with_unknown_key(op.access_token_claims(resource=resource))
        assert status_for(server, forged) == 401
        op.start()
        assert status_for(server, before) == 200


def test_a_provider_unreachable_at_first_use_answers_503(
    workdir: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider()
    with start_server(workdir, "unreachable", op.issuer) as server:
        token = op.forge(op.access_token_claims(resource=resource_of(server)))
        op.kill()
        response = post_json_rpc(server.url, INITIALIZE, authorization=f"Bearer {token}")
        assert response.status_code == 503
        assert token not in server.log()
