"""testkit.oidc: a real OpenID provider (panva's oidc-provider), checked with PyJWT alone.

Every verdict here comes from PyJWT and the provider's own endpoints, never from the kit's
helpers checking themselves. These tests fail (they do not skip) when Node or the provider's
node_modules are missing: ``make test`` installs them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import RSAAlgorithm
from mcp.shared.auth import AuthorizationCodeResult

from testkit.oidc import (
    BrowserLogin,
    Client,
    OAuthError,
    OpenIDProvider,
    ResourcePolicy,
    alg_confusion,
    decode_unverified,
    sign_with_unknown_key,
)
from testkit.processes import alive
from testkit.tokens import DROP, b64

RESOURCE = "http://127.0.0.1:8765/mcp"
OTHER_RESOURCE = "http://127.0.0.1:8766/mcp"

MakeProvider = Callable[..., OpenIDProvider]


def verify(op: OpenIDProvider, token: str, *, audience: str = RESOURCE) -> dict[str, object]:
    """What a resource server does: the key from the JWKS by kid, the algorithm from the key."""
    key = jwt.PyJWKClient(op.jwks_uri, cache_keys=False).get_signing_key_from_jwt(token)
    assert key.algorithm_name is not None
    claims: dict[str, object] = jwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        audience=audience,
        issuer=op.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    return claims


def jwks_kids(op: OpenIDProvider) -> list[str]:
    keys = httpx.get(op.jwks_uri, trust_env=False).json()["keys"]
    return [key["kid"] for key in keys]


# -- discovery ---------------------------------------------------------------------------


def test_rfc8414_metadata_and_openid_discovery_name_the_issuer_and_its_endpoints(
    openid_provider: OpenIDProvider,
) -> None:
    op = openid_provider
    oauth = httpx.get(op.metadata_url, trust_env=False).json()
    openid = httpx.get(op.openid_configuration_url, trust_env=False).json()

    assert op.metadata_url == f"{op.issuer}/.well-known/oauth-authorization-server"
    assert oauth == openid
    assert oauth["issuer"] == op.issuer
    assert oauth["jwks_uri"] == op.jwks_uri
    assert oauth["token_endpoint"] == op.token_endpoint
    assert oauth["introspection_endpoint"] == op.introspection_endpoint
    assert oauth["registration_endpoint"] == op.registration_endpoint
    assert oauth["authorization_endpoint"] == op.authorization_endpoint
    assert oauth["code_challenge_methods_supported"] == ["S256"]
    assert {"client_credentials", "authorization_code"} <= set(oauth["grant_types_supported"])
    assert {"read", "write", "admin"} <= set(oauth["scopes_supported"])


def test_an_issuer_with_a_path_publishes_rfc8414_metadata_between_host_and_path(
    make_openid_provider: MakeProvider,
) -> None:
    op = make_openid_provider(issuer_path="/realms/test")
    oauth = httpx.get(op.metadata_url, trust_env=False)
    openid = httpx.get(op.openid_configuration_url, trust_env=False)
    unmounted = httpx.get(f"{op.origin}/.well-known/openid-configuration", trust_env=False)

    assert op.metadata_url == f"{op.origin}/.well-known/oauth-authorization-server/realms/test"
    assert oauth.json()["issuer"] == openid.json()["issuer"] == op.issuer
    assert op.issuer.endswith("/realms/test")
    assert oauth.json()["token_endpoint"] == f"{op.issuer}/token"
    assert unmounted.status_code == 404
    token = op.client_credentials("svc-admin", RESOURCE, "read").access_token
    assert verify(op, token)["iss"] == op.issuer


# -- client credentials: RFC 9068 JWT access tokens --------------------------------------


def test_a_client_credentials_token_is_an_rfc9068_jwt_that_pyjwt_verifies_from_the_jwks(
    openid_provider: OpenIDProvider,
) -> None:
    op = openid_provider
    issued = op.client_credentials("svc-admin", RESOURCE, "read write")
    header, _ = decode_unverified(issued.access_token)
    claims = verify(op, issued.access_token)

    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": op.signing_kid("RS256")}
    assert claims["aud"] == RESOURCE
    assert claims["iss"] == op.issuer
    assert claims["scope"] == issued.scope == "read write"
    assert claims["client_id"] == claims["sub"] == "svc-admin"
    assert issued.token_type == "Bearer"
    assert claims["exp"] == claims["iat"] + issued.expires_in  # type: ignore[operator]


def test_es256_tokens_are_signed_by_the_ec_key_and_verify(
    openid_provider: OpenIDProvider,
) -> None:
    op = openid_provider
    token = op.client_credentials("svc-es256", RESOURCE, "read").access_token
    header, _ = decode_unverified(token)

    assert header["alg"] == "ES256"
    assert header["kid"] == op.signing_kid("ES256")
    assert verify(op, token)["scope"] == "read"


@pytest.mark.parametrize("alg", ["PS256", "EdDSA"])
def test_ps256_and_eddsa_keys_sign_tokens_pyjwt_verifies(
    make_openid_provider: MakeProvider, alg: str
) -> None:
    op = make_openid_provider(
        algorithms=("RS256", alg), clients=[Client.service("svc", token_alg=alg)]
    )
    token = op.client_credentials("svc", RESOURCE, "read").access_token

    assert decode_unverified(token)[0]["alg"] == alg
    assert verify(op, token)["client_id"] == "svc"


def test_allowed_scopes_narrow_what_a_client_gets_without_an_error(
    openid_provider: OpenIDProvider,
) -> None:
    issued = openid_provider.client_credentials("svc-reader", RESOURCE, "read write admin")

    assert issued.scope == "read"
    assert verify(openid_provider, issued.access_token)["scope"] == "read"


def test_a_token_for_another_resource_names_that_resource_only(
    openid_provider: OpenIDProvider,
) -> None:
    token = openid_provider.client_credentials("svc-admin", OTHER_RESOURCE, "read").access_token

    assert verify(openid_provider, token, audience=OTHER_RESOURCE)["aud"] == OTHER_RESOURCE
    with pytest.raises(jwt.InvalidAudienceError):
        verify(openid_provider, token, audience=RESOURCE)


def test_unknown_and_disallowed_resources_are_refused_with_invalid_target(
    make_openid_provider: MakeProvider,
) -> None:
    op = make_openid_provider(
        resources={RESOURCE: ResourcePolicy()},
        default_resource=None,
        clients=[Client.service("svc", allowed_resources=(OTHER_RESOURCE,))],
    )

    with pytest.raises(OAuthError) as unknown:
        op.client_credentials("svc", OTHER_RESOURCE, "read")
    with pytest.raises(OAuthError) as disallowed:
        op.client_credentials("svc", RESOURCE, "read")

    assert unknown.value.error == disallowed.value.error == "invalid_target"


def test_a_wrong_client_secret_is_refused_with_invalid_client(
    openid_provider: OpenIDProvider,
) -> None:
    impostor = Client.service("svc-admin", secret="not-the-secret")

    with pytest.raises(OAuthError) as refused:
        openid_provider.client_credentials(impostor, RESOURCE, "read")

    assert (refused.value.status, refused.value.error) == (401, "invalid_client")


def test_a_resource_policy_sets_the_lifetime_and_audience(
    make_openid_provider: MakeProvider,
) -> None:
    op = make_openid_provider(
        resources={RESOURCE: ResourcePolicy(ttl=5, audience="api://sessions")},
        clients=[Client.service("svc")],
    )
    issued = op.client_credentials("svc", RESOURCE, "read")
    claims = verify(op, issued.access_token, audience="api://sessions")

    assert issued.expires_in == 5
    assert claims["exp"] == claims["iat"] + 5  # type: ignore[operator]


def test_lifetimes_come_from_the_client_then_the_resource_then_the_provider(
    make_openid_provider: MakeProvider,
) -> None:
    op = make_openid_provider(
        resources={OTHER_RESOURCE: ResourcePolicy(ttl=9)},
        ttl={"ClientCredentials": 7},
        clients=[Client.service("svc"), Client.service("short", token_ttl=2)],
    )

    assert op.client_credentials("svc", RESOURCE).expires_in == 7
    assert op.client_credentials("svc", OTHER_RESOURCE).expires_in == 9
    assert op.client_credentials("short", OTHER_RESOURCE).expires_in == 2


# -- key rotation, restart, a second issuer ----------------------------------------------


def test_rotation_publishes_a_new_signer_live_and_retiring_removes_the_old_key(
    make_openid_provider: MakeProvider,
) -> None:
    op = make_openid_provider()
    pid, issuer = op.pid, op.issuer
    old_kid = op.signing_kid("RS256")
    before = op.client_credentials("svc-admin", RESOURCE, "read").access_token

    new_kid = op.rotate("RS256")
    after = op.client_credentials("svc-admin", RESOURCE, "read").access_token

    assert new_kid != old_kid
    assert decode_unverified(after)[0]["kid"] == new_kid
    assert {old_kid, new_kid} <= set(jwks_kids(op))
    assert verify(op, before) and verify(op, after)
    assert (op.pid, op.issuer) == (pid, issuer)

    op.rotate("RS256", retire=True)

    assert new_kid not in jwks_kids(op) and old_kid not in jwks_kids(op)
    with pytest.raises(jwt.PyJWKClientError):
        verify(op, after)


def test_stop_and_start_keep_the_port_the_issuer_and_the_keys(
    make_openid_provider: MakeProvider,
) -> None:
    op = make_openid_provider()
    issuer, kids = op.issuer, jwks_kids(op)
    token = op.client_credentials("svc-admin", RESOURCE, "read").access_token
    first_pid = op.pid

    op.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(op.jwks_uri, trust_env=False)
    op.start()

    assert op.pid != first_pid
    assert first_pid is not None and not alive(first_pid)
    assert op.issuer == issuer
    assert jwks_kids(op) == kids
    assert verify(op, token)["iss"] == issuer


def test_a_second_provider_is_another_issuer_giving_the_same_sub(
    openid_provider: OpenIDProvider, make_openid_provider: MakeProvider
) -> None:
    second = make_openid_provider()
    ours = verify(
        openid_provider, openid_provider.client_credentials("svc-admin", RESOURCE).access_token
    )
    theirs = verify(second, second.client_credentials("svc-admin", RESOURCE).access_token)

    assert ours["sub"] == theirs["sub"] == "svc-admin"
    assert ours["iss"] != theirs["iss"]
    assert not set(jwks_kids(openid_provider)) & set(jwks_kids(second))


def test_a_paused_provider_accepts_connections_but_answers_nothing_and_still_stops(
    make_openid_provider: MakeProvider,
) -> None:
    op = make_openid_provider()
    pid = op.pid or 0
    op.pause()
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(op.jwks_uri, trust_env=False, timeout=httpx.Timeout(5.0, read=0.5))
    op.resume()
    assert httpx.get(op.jwks_uri, trust_env=False).status_code == 200

    op.pause()
    op.stop()

    assert not alive(pid)


def test_the_provider_counts_the_requests_it_answered(make_openid_provider: MakeProvider) -> None:
    op = make_openid_provider(issuer_path="/tenant")
    before = op.request_count(op.jwks_uri)
    for _ in range(3):
        jwks_kids(op)
    httpx.get(f"{op.jwks_uri}?query=is-not-logged", trust_env=False)

    assert op.request_count(op.jwks_uri) == before + 4
    assert op.request_count("/tenant/jwks", method="POST") == 0
    assert op.request_count(op.metadata_url) == 0


def test_the_process_is_gone_after_the_block_even_when_the_block_fails(tmp_path: Path) -> None:
    provider = OpenIDProvider(tmp_path, clients=[Client.service("svc")])
    with pytest.raises(RuntimeError, match="boom"), provider:
        pid = provider.pid or 0
        assert alive(pid)
        raise RuntimeError("boom")

    assert not alive(pid)
    assert not provider.running


# -- opaque tokens and introspection -----------------------------------------------------


def test_introspection_says_active_for_an_opaque_token_and_inactive_once_revoked(
    openid_provider: OpenIDProvider,
) -> None:
    op = openid_provider
    issued = op.client_credentials("svc-opaque", RESOURCE, "read write")
    assert issued.access_token.count(".") == 0

    answer = op.introspect(issued.access_token, "resource-server")
    assert answer["active"] is True
    assert answer["client_id"] == "svc-opaque"
    assert answer["scope"] == "read write"
    assert answer["aud"] == RESOURCE
    assert answer["iss"] == op.issuer

    op.revoke(issued.access_token, "svc-opaque")

    assert op.introspect(issued.access_token, "resource-server") == {"active": False}
    assert op.introspect("no-such-token", "resource-server") == {"active": False}


def test_introspection_requires_client_authentication(openid_provider: OpenIDProvider) -> None:
    token = openid_provider.client_credentials("svc-opaque", RESOURCE).access_token
    stranger = Client.service("resource-server", secret="wrong")

    with pytest.raises(OAuthError) as refused:
        openid_provider.introspect(token, stranger)

    assert refused.value.error == "invalid_client"


def test_an_opaque_token_survives_a_key_rotation(make_openid_provider: MakeProvider) -> None:
    op = make_openid_provider()
    token = op.client_credentials("svc-opaque", RESOURCE).access_token

    op.rotate("ES256")

    assert op.introspect(token, "resource-server")["active"] is True


# -- authorization code with PKCE, dynamic registration ----------------------------------


def test_the_authorization_code_flow_through_the_login_form_yields_the_users_token(
    openid_provider: OpenIDProvider,
) -> None:
    issued = openid_provider.authorization_code("app", RESOURCE, "read write", login="bob")
    claims = verify(openid_provider, issued.access_token)

    assert claims["sub"] == "bob"
    assert claims["client_id"] == "app"
    assert claims["scope"] == "read write"


def test_an_authorization_request_without_pkce_is_refused(openid_provider: OpenIDProvider) -> None:
    query = "response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback"
    answer = openid_provider.authorize(
        f"{openid_provider.authorization_endpoint}?{query}&scope=read"
    )

    assert answer.code is None
    assert answer.error == "invalid_request"


def test_a_dynamically_registered_public_client_completes_the_flow(
    openid_provider: OpenIDProvider,
) -> None:
    registered = openid_provider.register(
        {
            "redirect_uris": ["http://localhost:33418/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "application_type": "native",
        }
    )
    client = Client.app(registered["client_id"], "http://localhost:33418/callback")
    issued = openid_provider.authorization_code(client, RESOURCE, "admin", login="carol")

    assert verify(openid_provider, issued.access_token)["client_id"] == registered["client_id"]


def test_browser_login_answers_the_sdks_redirect_and_callback_handlers(
    openid_provider: OpenIDProvider,
) -> None:
    browser = BrowserLogin(openid_provider, login="dave")
    query = (
        "response_type=code&client_id=app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback"
        "&scope=read&state=s1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        "&code_challenge_method=S256"
    )

    async def sdk_side() -> AuthorizationCodeResult:
        await browser.redirect_handler(f"{openid_provider.authorization_endpoint}?{query}")
        return await browser.callback_handler()

    result = anyio.run(sdk_side)

    assert result.state == "s1"
    assert result.iss == openid_provider.issuer
    assert result.code


# -- tokens the provider would never issue -----------------------------------------------


def test_forged_claims_signed_by_the_providers_key_fail_only_on_their_claims(
    openid_provider: OpenIDProvider,
) -> None:
    op = openid_provider
    valid = op.forge(op.access_token_claims(resource=RESOURCE))
    no_aud = op.forge(op.access_token_claims(aud=DROP))
    expired = op.forge(op.access_token_claims(resource=RESOURCE, now=1_000_000))
    wrong_issuer = op.forge(op.access_token_claims(resource=RESOURCE, iss="http://evil.test"))

    assert verify(op, valid)["aud"] == RESOURCE
    with pytest.raises(jwt.MissingRequiredClaimError):
        verify(op, no_aud)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(op, expired)
    with pytest.raises(jwt.InvalidIssuerError):
        verify(op, wrong_issuer)


def test_a_token_signed_by_an_unpublished_key_is_not_found_or_not_valid(
    openid_provider: OpenIDProvider,
) -> None:
    op = openid_provider
    claims = op.access_token_claims(resource=RESOURCE)
    forged_kid = sign_with_unknown_key(claims)
    stolen_kid = sign_with_unknown_key(claims, kid=op.signing_kid("RS256"))

    with pytest.raises(jwt.PyJWKClientError):
        verify(op, forged_kid)
    with pytest.raises(jwt.InvalidSignatureError):
        verify(op, stolen_kid)


@pytest.mark.parametrize("encoding", ["pem", "pkcs1", "der", "jwk"])
def test_alg_confusion_tokens_name_hs256_and_the_published_kid(
    openid_provider: OpenIDProvider, encoding: Literal["pem", "pkcs1", "der", "jwk"]
) -> None:
    op = openid_provider
    public = op.public_jwk(op.signing_kid("RS256"))
    token = alg_confusion(op.access_token_claims(resource=RESOURCE), public, encoding=encoding)
    header, claims = decode_unverified(token)

    assert header == {"alg": "HS256", "typ": "at+jwt", "kid": public["kid"]}
    assert claims["iss"] == op.issuer
    with pytest.raises(jwt.InvalidAlgorithmError):
        verify(op, token)


def test_alg_confusion_hmac_key_is_the_rsa_public_key_pem(openid_provider: OpenIDProvider) -> None:
    op = openid_provider
    public = op.public_jwk(op.signing_kid("RS256"))
    token = alg_confusion(op.access_token_claims(resource=RESOURCE), public)
    pem = RSAAlgorithm.from_jwk(public).public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input, signature = token.rsplit(".", 1)
    expected = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()

    assert signature == b64(expected)
