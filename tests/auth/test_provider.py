"""An identity provider's access tokens (SESSION_BUDDY_OAUTH_ISSUER), verified against a real
OpenID provider (panva's oidc-provider, testkit.oidc): what it issues is accepted, what it
would never issue — or someone else made — is refused, and its keys are fetched sparingly.

The verifiers are built the way the server builds them (``configured_verifiers`` from one
``Settings``), so the registration by issuer is under test too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest

from session_buddy.auth import errors
from session_buddy.auth.config import AuthConfig
from session_buddy.auth.provider import ProviderVerifier
from session_buddy.auth.provider_keys import key_algorithm, metadata_urls
from session_buddy.auth.verification import TokenVerification
from session_buddy.auth.verifiers import IssuerVerifiers, configured_verifiers
from session_buddy.config import load_settings
from session_buddy.runtime import Runtime
from testkit.clock import FixedClock
from testkit.environment import new_secret
from testkit.oidc import OpenIDProvider, alg_confusion, sign_with_unknown_key
from testkit.tokens import DROP, mint

RESOURCE = "http://127.0.0.1:8765/mcp"
MakeProvider = Callable[..., OpenIDProvider]


class OffsetClock:
    """The wall clock, moved forward when the test says (tokens stay valid meanwhile)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def settings_for(tmp_path: Path, *issuers: str, **options: Any) -> Any:
    options.setdefault("resource_url", RESOURCE)
    return load_settings(data_dir=tmp_path, SESSION_BUDDY_OAUTH_ISSUER=",".join(issuers), **options)


def verifiers_for(
    tmp_path: Path,
    *providers: OpenIDProvider,
    clock: Callable[[], float] = time.time,
    **options: Any,
) -> IssuerVerifiers:
    settings = settings_for(tmp_path, *(op.issuer for op in providers), **options)
    return configured_verifiers(AuthConfig(settings), clock=clock)


def provider_of(verifiers: IssuerVerifiers, index: int = 0) -> ProviderVerifier:
    verifier = verifiers.providers[index]
    assert isinstance(verifier, ProviderVerifier)
    return verifier


def refused(verifiers: IssuerVerifiers, token: str) -> errors.AuthError:
    with pytest.raises(errors.AuthError) as caught:
        verifiers.verify(token)
    return caught.value


# -- what the provider issues is accepted ---------------------------------------------------


@pytest.mark.parametrize("client", ["svc-admin", "svc-es256"])
def test_provider_tokens_are_accepted_and_bound_to_the_issuer(
    tmp_path: Path, openid_provider: OpenIDProvider, client: str
) -> None:
    op = openid_provider
    token = op.client_credentials(client, resource=RESOURCE, scope="read write").access_token
    principal = verifiers_for(tmp_path, op).verify(token)
    assert principal.user_id == client  # sub: a client acting for itself
    assert principal.authority == op.issuer
    assert principal.owner == f"{client}@{op.issuer}"
    assert principal.client_id == client
    assert principal.caller_service == client
    assert principal.scopes == frozenset({"read", "write"})


def test_the_algorithm_comes_from_the_key(openid_provider: OpenIDProvider) -> None:
    op = openid_provider
    published = {kid: key_algorithm(op.public_jwk(kid)) for kid in op.kids}
    assert published[op.signing_kid("RS256")] == "RS256"
    assert published[op.signing_kid("ES256")] == "ES256"
    assert key_algorithm({"kty": "oct", "k": "c2VjcmV0"}) is None
    assert key_algorithm({"kty": "RSA", "alg": "HS256"}) is None
    assert key_algorithm({"kty": "EC", "crv": "P-256", "alg": "RS256"}) is None
    assert key_algorithm({"kty": "RSA", "use": "enc"}) is None
    assert key_algorithm({"kty": "OKP", "crv": "Ed25519"}) == "EdDSA"


def test_metadata_is_looked_up_the_rfc8414_way_first() -> None:
    assert metadata_urls("https://idp.example/realms/x") == (
        "https://idp.example/.well-known/oauth-authorization-server/realms/x",
        "https://idp.example/realms/x/.well-known/openid-configuration",
    )


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "JWT", DROP])
def test_access_token_types_are_accepted(
    tmp_path: Path, openid_provider: OpenIDProvider, typ: object
) -> None:
    op = openid_provider
    token = op.forge(op.access_token_claims(resource=RESOURCE), header={"typ": typ})
    assert verifiers_for(tmp_path, op).verify(token).authority == op.issuer


def test_an_issuer_with_a_path_is_discovered(
    tmp_path: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider(issuer_path="/realms/test")
    token = op.client_credentials("svc-admin", resource=RESOURCE).access_token
    assert verifiers_for(tmp_path, op).verify(token).authority == op.issuer


def test_the_configured_audience_is_accepted_beside_the_resource(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    token = op.forge(op.access_token_claims(aud=["https://api.example", "other"]))
    verifiers = verifiers_for(tmp_path, op, oauth_audience="https://api.example")
    assert verifiers.verify(token).authority == op.issuer
    assert isinstance(refused(verifiers_for(tmp_path, op), token), errors.ProviderAudienceError)


# -- what it would never issue is refused ---------------------------------------------------


def claims_cases(op: OpenIDProvider) -> dict[str, tuple[dict[str, Any], type[errors.AuthError]]]:
    now = time.time()
    return {
        "another resource": (
            op.access_token_claims(resource="http://127.0.0.1:9/mcp"),
            errors.ProviderAudienceError,
        ),
        "no aud": (
            op.access_token_claims(resource=RESOURCE, aud=DROP),
            errors.ProviderAudienceError,
        ),
        "empty aud": (
            op.access_token_claims(resource=RESOURCE, aud=[]),
            errors.ProviderAudienceError,
        ),
        "expired": (
            op.access_token_claims(resource=RESOURCE, now=now - 3600),
            errors.ExpiredTokenError,
        ),
        "no exp": (op.access_token_claims(resource=RESOURCE, exp=DROP), errors.InvalidClaimError),
        "exp text": (
            op.access_token_claims(resource=RESOURCE, exp="9999999999"),
            errors.InvalidClaimError,
        ),
        "not yet valid": (
            op.access_token_claims(resource=RESOURCE, nbf=int(now) + 3600),
            errors.ImmatureTokenError,
        ),
        "issued in the future": (
            op.access_token_claims(resource=RESOURCE, iat=int(now) + 3600),
            errors.ImmatureTokenError,
        ),
        "no sub": (
            op.access_token_claims(resource=RESOURCE, sub=DROP),
            errors.MissingIdentityError,
        ),
        "empty sub": (
            {**op.access_token_claims(resource=RESOURCE), "sub": ""},
            errors.MissingIdentityError,
        ),
        "unprintable sub": (
            {**op.access_token_claims(resource=RESOURCE), "sub": "alice\x1b[2J\u202e"},
            errors.MissingIdentityError,
        ),
        "user_id is no identity": (
            op.access_token_claims(resource=RESOURCE, sub=DROP, user_id="alice"),
            errors.MissingIdentityError,
        ),
        "jti number": (op.access_token_claims(resource=RESOURCE, jti=7), errors.InvalidClaimError),
    }


def test_claims_it_would_never_issue_are_refused(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    verifiers = verifiers_for(tmp_path, op)
    for name, (claims, expected) in claims_cases(op).items():
        with pytest.raises(errors.AuthError) as caught:
            verifiers.verify(op.forge(claims))
            pytest.fail(f"{name} accepted")
        error = caught.value
        assert type(error) is expected, name
        assert error.status == 401 and error.bad_credential, name


def test_a_token_signed_by_the_issuer_for_another_issuer_is_refused(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    token = op.forge(op.access_token_claims(resource=RESOURCE, iss="https://evil.example"))
    error = refused(verifiers_for(tmp_path, op), token)
    assert isinstance(error, errors.InvalidIssuerError)
    # The verifier itself, asked directly, checks iss too (not only the choice by issuer).
    verifier = provider_of(verifiers_for(tmp_path, op))
    with pytest.raises(errors.InvalidIssuerError):
        verifier.verify(token)


def test_an_id_token_type_is_refused(tmp_path: Path, openid_provider: OpenIDProvider) -> None:
    op = openid_provider
    token = op.forge(op.access_token_claims(resource=RESOURCE), header={"typ": "id+jwt"})
    assert isinstance(refused(verifiers_for(tmp_path, op), token), errors.ProviderTokenTypeError)


def test_a_key_it_does_not_publish_is_refused(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    claims = op.access_token_claims(resource=RESOURCE)
    verifiers = verifiers_for(tmp_path, op)
    forged = refused(verifiers, sign_with_unknown_key(claims))
    assert isinstance(forged, errors.UnknownSigningKeyError)
    impostor = sign_with_unknown_key(claims, kid=op.signing_kid())  # a published kid
    assert isinstance(refused(verifiers, impostor), errors.ProviderSignatureError)


def test_an_rs256_token_naming_the_es256_key_is_refused(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    claims = op.access_token_claims(resource=RESOURCE)
    token = op.forge(claims, alg="RS256", header={"kid": op.signing_kid("ES256")})
    assert isinstance(refused(verifiers_for(tmp_path, op), token), errors.ProviderAlgorithmError)


@pytest.mark.parametrize("encoding", ["pem", "pkcs1", "der", "jwk"])
def test_alg_confusion_is_refused(
    tmp_path: Path,
    openid_provider: OpenIDProvider,
    encoding: Literal["pem", "pkcs1", "der", "jwk"],
) -> None:
    op = openid_provider
    claims = op.access_token_claims(resource=RESOURCE)
    token = alg_confusion(claims, op.public_jwk(op.signing_kid()), encoding=encoding)
    error = refused(verifiers_for(tmp_path, op, secret=new_secret()), token)
    assert isinstance(error, errors.ProviderAlgorithmError)


def test_an_hs256_token_with_the_shared_secret_naming_the_issuer_is_refused(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    secret = new_secret()
    verifiers = verifiers_for(tmp_path, op, secret=secret)
    named = mint(secret, "alice", iss=op.issuer, aud=RESOURCE)
    assert isinstance(refused(verifiers, named), errors.ProviderAlgorithmError)
    # The same secret's tokens that do not name the provider keep working beside it.
    plain = mint(secret, "alice")
    assert verifiers.verify(plain).authority is None


def test_the_same_sub_under_two_issuers_and_the_shared_secret_are_three_callers(
    tmp_path: Path, make_openid_provider: MakeProvider
) -> None:
    first, second = make_openid_provider(), make_openid_provider()
    secret = new_secret()
    verifiers = verifiers_for(tmp_path, first, second, secret=secret)
    callers = [
        verifiers.verify(op.forge(op.access_token_claims(resource=RESOURCE, sub="alice")))
        for op in (first, second)
    ]
    callers.append(verifiers.verify(mint(secret, "alice")))
    assert {caller.user_id for caller in callers} == {"alice"}
    assert len({caller.identity for caller in callers}) == 3
    assert len({caller.owner for caller in callers}) == 3
    assert callers[2].owner == "alice"  # the shared secret's names are as they always were


# -- keys: fetched sparingly, rotated, and the provider down --------------------------------


def test_a_flood_of_forged_kids_costs_the_provider_few_fetches(
    tmp_path: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider()
    clock = FixedClock(time.time())
    verifiers = verifiers_for(tmp_path, op, clock=clock)
    claims = op.access_token_claims(resource=RESOURCE, now=clock.now)

    def flood() -> None:
        for _ in range(50):
            with pytest.raises(errors.UnknownSigningKeyError):
                verifiers.verify(sign_with_unknown_key(claims, alg="ES256"))

    flood()
    # The first use fetched the keys, then three refreshes: the budget of a minute.
    assert op.request_count(op.jwks_uri) == 4
    clock.advance(61)
    flood()
    assert op.request_count(op.jwks_uri) == 7


def test_key_rotation_is_picked_up_at_once_without_a_restart(
    tmp_path: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider()
    verifiers = verifiers_for(tmp_path, op)
    verifiers.verify(op.client_credentials("svc-admin", resource=RESOURCE).access_token)
    old_kid = op.signing_kid()
    new_kid = op.rotate("RS256", retire=True)
    rotated = op.client_credentials("svc-admin", resource=RESOURCE).access_token
    assert verifiers.verify(rotated).authority == op.issuer
    status = provider_of(verifiers).status()
    assert new_kid in status.kids and old_kid not in status.kids
    assert op.request_count(op.jwks_uri) == 2


def test_while_the_provider_is_down_cached_keys_work_and_unknown_kids_are_refused(
    tmp_path: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider()
    clock = OffsetClock()
    verifiers = verifiers_for(tmp_path, op, clock=clock)
    claims = op.access_token_claims(resource=RESOURCE)

    def cached_key_works() -> None:
        token = op.forge(op.access_token_claims(resource=RESOURCE))
        assert verifiers.verify(token).authority == op.issuer

    def unknown_kid_refused() -> None:
        error = refused(verifiers, sign_with_unknown_key(claims, alg="ES256"))
        assert isinstance(error, errors.UnknownSigningKeyError)  # 401, not the server's fault

    cached_key_works()
    op.pause()  # hangs: connections accepted, never answered
    try:
        cached_key_works()
        unknown_kid_refused()  # one refresh tried; it times out
        assert provider_of(verifiers).status().problem is not None
        unknown_kid_refused()  # after a failure no refresh is tried for a while
        cached_key_works()
    finally:
        op.resume()
    op.kill()
    clock.advance(6)
    unknown_kid_refused()  # connection refused
    cached_key_works()


def test_a_provider_never_reached_is_the_servers_fault_503(
    tmp_path: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider()
    clock = OffsetClock()
    verifiers = verifiers_for(tmp_path, op, clock=clock)
    token = op.forge(op.access_token_claims(resource=RESOURCE))
    op.stop()
    error = refused(verifiers, token)
    assert isinstance(error, errors.ProviderUnavailableError)
    assert (error.status, error.bad_credential, error.retry_after) == (503, False, 30)
    op.start()
    # Asked again only after a pause: a flood of requests does not become a flood of fetches.
    assert isinstance(refused(verifiers, token), errors.ProviderUnavailableError)
    clock.advance(6)
    assert verifiers.verify(token).authority == op.issuer


def test_metadata_naming_another_issuer_is_refused(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    settings = settings_for(tmp_path, op.issuer + "/")  # a trailing slash is another issuer
    verifiers = configured_verifiers(AuthConfig(settings))
    token = op.forge(op.access_token_claims(resource=RESOURCE, iss=op.issuer + "/"))
    error = refused(verifiers, token)
    assert isinstance(error, errors.ProviderUnavailableError)
    assert "must be equal" in error.detail


def test_nothing_is_fetched_until_the_first_token(
    tmp_path: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider()
    before = op.request_count()
    runtime = Runtime.build(settings_for(tmp_path, op.issuer))
    try:
        assert runtime.manager.enabled
        assert op.request_count() == before
        provider_of(runtime.verification.verifiers).open()
        assert op.request_count(op.jwks_uri) == 1
    finally:
        runtime.close()


def test_a_provider_token_without_a_scope_claim_grants_no_scope(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    token = op.forge(op.access_token_claims(resource=RESOURCE, scope=DROP))
    assert verifiers_for(tmp_path, op).verify(token).scopes == frozenset()


# -- opaque tokens: introspection ------------------------------------------------------------


def introspecting(
    tmp_path: Path, op: OpenIDProvider, clock: Callable[[], float]
) -> IssuerVerifiers:
    return verifiers_for(
        tmp_path,
        op,
        clock=clock,
        oauth_introspection_client_id="resource-server",
        oauth_introspection_client_secret=op.client("resource-server").secret,
    )


def test_opaque_tokens_are_introspected_and_the_answer_kept_at_most_a_minute(
    tmp_path: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider()
    clock = OffsetClock()
    verifiers = introspecting(tmp_path, op, clock)
    token = op.client_credentials("svc-opaque", resource=RESOURCE, scope="read").access_token
    assert "." not in token
    principal = verifiers.verify(token)
    assert (principal.owner, principal.scopes) == (f"svc-opaque@{op.issuer}", frozenset({"read"}))
    endpoint = op.metadata()["introspection_endpoint"]
    asked = op.request_count(endpoint)
    verifiers.verify(token)
    assert op.request_count(endpoint) == asked  # the answer is kept
    op.revoke(token, "svc-opaque")
    clock.advance(61)
    assert isinstance(refused(verifiers, token), errors.InactiveTokenError)


def test_a_token_verification_cache_does_not_outlive_the_introspection_answer(
    tmp_path: Path, make_openid_provider: MakeProvider
) -> None:
    op = make_openid_provider()
    clock = OffsetClock()
    verification = TokenVerification(introspecting(tmp_path, op, clock), clock=clock)
    token = op.client_credentials("svc-opaque", resource=RESOURCE).access_token
    verification.verify(token)
    op.revoke(token, "svc-opaque")
    verification.verify(token)  # within the minute: the remembered answer
    clock.advance(61)
    with pytest.raises(errors.InactiveTokenError):
        verification.verify(token)


def test_junk_and_inactive_opaque_tokens_are_refused(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    verifiers = introspecting(tmp_path, op, time.time)
    error = refused(verifiers, "not-a-token-the-provider-issued")
    assert isinstance(error, errors.InactiveTokenError) and error.status == 401


def test_opaque_tokens_without_introspection_go_to_the_shared_secret(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    token = op.client_credentials("svc-opaque", resource=RESOURCE).access_token
    verifiers = verifiers_for(tmp_path, op, secret=new_secret())
    assert isinstance(refused(verifiers, token), errors.MalformedTokenError)


def test_wrong_introspection_credentials_are_the_servers_fault(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    token = op.client_credentials("svc-opaque", resource=RESOURCE).access_token
    verifiers = verifiers_for(
        tmp_path,
        op,
        oauth_introspection_client_id="resource-server",
        oauth_introspection_client_secret="wrong",
    )
    assert refused(verifiers, token).status == 503


# -- shared after verification: revocation by jti ------------------------------------------


def test_a_provider_token_is_revoked_by_its_jti(
    tmp_path: Path, openid_provider: OpenIDProvider
) -> None:
    op = openid_provider
    runtime = Runtime.build(settings_for(tmp_path, op.issuer))
    try:
        token = op.client_credentials("svc-admin", resource=RESOURCE).access_token
        runtime.manager.verify_token(token)
        runtime.manager.revoke_token(token)
        with pytest.raises(errors.RevokedTokenError):
            runtime.manager.verify_token(token)
    finally:
        runtime.close()


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        ({"scp": "read write"}, {"read", "write"}),  # Entra ID, delegated
        ({"roles": ["write", "Task.Manage", 7]}, {"write"}),  # Entra ID, application permissions
        ({"scope": "read", "scp": "admin", "roles": ["admin"]}, {"read"}),  # scope wins
        ({}, set()),  # no scope claim: nothing
    ],
)
def test_a_provider_token_grants_scopes_from_scope_else_entra_claims(
    tmp_path: Path, openid_provider: OpenIDProvider, claims: dict[str, Any], scopes: set[str]
) -> None:
    op = openid_provider
    verifiers = verifiers_for(tmp_path, op)
    token = op.forge({**op.access_token_claims(resource=RESOURCE, scope=DROP), **claims})
    assert verifiers.verify(token).scopes == frozenset(scopes)
