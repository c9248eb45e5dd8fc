"""The verifier seam: one protocol, chosen by issuer in one place; authentication is
enabled when a verifier is configured; identities are bound to their issuer.

The second verifier here is a small real one (RS256 with one RSA key, PyJWT), standing in
for the identity provider's verifier the next piece of work adds: what it must implement
is exactly what this one implements.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from session_buddy.auth import errors
from session_buddy.auth.config import AuthConfig
from session_buddy.auth.manager import JWTManager
from session_buddy.auth.principal import Principal
from session_buddy.auth.shared_secret import SharedSecretVerifier
from session_buddy.auth.tokens import SigningKeys, TokenPolicy
from session_buddy.auth.verification import TokenVerification
from session_buddy.auth.verifiers import (
    IssuerVerifiers,
    configured_verifiers,
    unverified_issuer,
)
from session_buddy.config import load_settings
from testkit.environment import new_secret
from testkit.tokens import assemble, mint

PROVIDER = "https://idp.example.test"
SECRET = new_secret()
_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = _KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


class ProviderVerifier:
    """RS256 access tokens of one identity provider: its key, its algorithm, its issuer."""

    def __init__(self, issuer: str, public_pem: bytes) -> None:
        self.issuer = issuer
        self._key = public_pem

    def verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=["RS256"],  # what its key is for: never a list the token picks from
                issuer=self.issuer,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.InvalidAlgorithmError:
            raise errors.DisallowedAlgorithmError("not RS256") from None
        except jwt.PyJWTError as exc:
            raise errors.InvalidTokenError(type(exc).__name__) from None
        return Principal.from_claims(claims, authority=self.issuer)

    def check_configuration(self) -> None:
        pass


def provider_token(sub: str = "alice", **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": PROVIDER, "sub": sub, "iat": now, "exp": now + 600, **claims}
    return jwt.encode(payload, _KEY, algorithm="RS256")


def shared_secret() -> SharedSecretVerifier:
    return SharedSecretVerifier(lambda: SigningKeys.from_secrets(SECRET), TokenPolicy())


def verification(*, with_secret: bool = True) -> TokenVerification:
    provider = ProviderVerifier(PROVIDER, PUBLIC_PEM)
    return TokenVerification(
        IssuerVerifiers(shared_secret() if with_secret else None, {PROVIDER: provider})
    )


def manager(tmp_path: Path, checked: TokenVerification, **settings: Any) -> JWTManager:
    config = AuthConfig(load_settings(data_dir=tmp_path / "data", **settings))
    return JWTManager(config, checked)


# -- choosing the verifier -------------------------------------------------------------


def test_each_token_goes_to_the_verifier_of_its_issuer() -> None:
    checked = verification()
    alice = checked.verify(provider_token("alice"))
    assert (alice.user_id, alice.authority) == ("alice", PROVIDER)
    ours = checked.verify(mint(SECRET, "alice"))
    assert (ours.user_id, ours.authority) == ("alice", None)


def test_an_hs256_token_naming_the_provider_never_reaches_the_shared_secret() -> None:
    """Signed with the shared secret, which would accept it: the issuer sends it to the
    provider's verifier, whose key is for RS256 only ("alg confusion")."""
    forged = mint(SECRET, "alice", iss=PROVIDER)
    assert shared_secret().verify(forged).user_id == "alice"  # the secret is right
    with pytest.raises(errors.InvalidTokenError):
        verification().verify(forged)


def test_an_hs256_token_signed_with_the_providers_public_key_is_refused() -> None:
    """The classic confusion: the public key used as an HMAC secret."""
    now = int(time.time())
    claims = {"iss": PROVIDER, "sub": "alice", "iat": now, "exp": now + 600}
    token = assemble({"alg": "HS256", "typ": "JWT"}, claims, PUBLIC_PEM)
    with pytest.raises(errors.InvalidTokenError):
        verification().verify(token)


def test_a_provider_token_is_refused_by_a_server_that_trusts_only_the_secret() -> None:
    only_secret = TokenVerification(IssuerVerifiers(shared_secret()))
    with pytest.raises(errors.InvalidTokenError):
        only_secret.verify(provider_token())


def test_without_the_shared_secret_an_unregistered_issuer_is_refused() -> None:
    with pytest.raises(errors.InvalidIssuerError):
        verification(with_secret=False).verify(mint(SECRET, "alice", iss="mahavishnu"))


def test_a_verifier_vouching_for_another_issuer_is_not_believed() -> None:
    """The verified ``iss`` must choose the verifier that verified it."""

    class Confused(ProviderVerifier):
        def verify(self, token: str) -> Principal:
            principal = super().verify(token)
            claims = {**principal.claims, "iss": "mahavishnu"}
            return Principal.from_claims(claims, authority=self.issuer)

    checked = TokenVerification(
        IssuerVerifiers(shared_secret(), {PROVIDER: Confused(PROVIDER, PUBLIC_PEM)})
    )
    with pytest.raises(errors.InvalidIssuerError):
        checked.verify(provider_token())


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.!!!.c", "a.bm90IGpzb24.c", "a.WzFd.c", "a.eyJpc3MiOjF9.c", "a.e30.c"],
)
def test_an_unreadable_issuer_is_none(token: str) -> None:
    assert unverified_issuer(token) is None


# -- enabled means: a verifier is configured ---------------------------------------------


def test_authentication_is_enabled_by_any_verifier_not_only_a_secret(tmp_path: Path) -> None:
    """A server with an identity provider and no secret does not run anonymous."""
    provider_only = manager(tmp_path, verification(with_secret=False))
    assert provider_only.enabled
    with pytest.raises(errors.TokenRequiredError):
        provider_only.authenticate(None)
    assert provider_only.authenticate(provider_token("bob")).identity == (PROVIDER, "bob")


def test_with_no_verifier_every_call_is_anonymous(tmp_path: Path) -> None:
    nothing = manager(tmp_path, TokenVerification(IssuerVerifiers()))
    assert not nothing.enabled
    assert not nothing.authenticate(None).authenticated


def test_the_configuration_registers_the_shared_secret_only_when_one_is_set(
    tmp_path: Path,
) -> None:
    assert configured_verifiers(AuthConfig(load_settings(secret=SECRET))).enabled
    assert not configured_verifiers(AuthConfig(load_settings(secret=""))).enabled
    short = configured_verifiers(AuthConfig(load_settings(secret="short")))
    assert short.enabled  # a bad secret fails closed, it never disables
    with pytest.raises(errors.SecretConfigError):
        short.check_configuration()


# -- identity bound to its issuer --------------------------------------------------------


def test_the_providers_alice_is_not_the_shared_secrets_alice(tmp_path: Path) -> None:
    both = manager(tmp_path, verification())
    bearer = both.verification.verify(provider_token("alice"))
    with pytest.raises(errors.IdentityMismatchError):
        both.authenticate(mint(SECRET, "alice"), bearer=bearer)
    same = both.authenticate(provider_token("alice"), bearer=bearer)
    assert same.identity == bearer.identity


def test_shared_secret_identities_ignore_the_iss_claim(tmp_path: Path) -> None:
    """As always: Mahavishnu's alice and session-buddy's alice are one user."""
    checked = verification()
    ours = checked.verify(mint(SECRET, "alice", iss="session-buddy"))
    theirs = checked.verify(mint(SECRET, "alice", iss="mahavishnu"))
    assert ours.identity == theirs.identity == (None, "alice")
