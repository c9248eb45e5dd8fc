"""A real OpenID provider for tests: panva's ``oidc-provider`` (OpenID Certified) under Node.

:class:`OpenIDProvider` runs ``testkit/node/oidc/provider.mjs`` on a free loopback port,
configured from a JSON file this module writes into the test's directory, beside the
provider's signing keys (so a restart keeps its issuer and its keys)::

    with OpenIDProvider(tmp_path, clients=[Client.service("svc", scopes=("read",))]) as op:
        token = op.client_credentials("svc", resource="http://127.0.0.1:8000/mcp").access_token

What it serves is the provider's own code: RFC 8414 metadata and OpenID Connect discovery,
the JWKS, client credentials with resource indicators (RFC 8707) issuing RFC 9068 JWT access
tokens (``typ: at+jwt``) or opaque ones, introspection (RFC 7662) and revocation, the
authorization code flow with PKCE (S256, required) through its login and consent forms,
which :meth:`OpenIDProvider.authorization_code` fills in over plain HTTP like a browser
would, and open dynamic client registration (RFC 7591).

Keys rotate live (:meth:`OpenIDProvider.rotate`): the provider re-reads its configuration on
SIGHUP and swaps in a new keystore on the same socket. :meth:`OpenIDProvider.stop` and
:meth:`OpenIDProvider.start` bring it down and back on the same port (state it held in memory,
such as opaque tokens and registered clients, is then gone, as with any restarted in-memory
provider); :meth:`OpenIDProvider.pause` makes it hang. A second instance is a second
issuer. :meth:`OpenIDProvider.request_count` says how often it was asked for, say, its JWKS.

Hostile tokens the provider would never issue are made here, with joserfc (and
:func:`testkit.tokens.assemble` for HMAC ones): validly signed with the provider's own key
but with chosen claims (:meth:`OpenIDProvider.forge`), signed by a key it does not publish
(:func:`sign_with_unknown_key`), and HS256 under its RSA public key (:func:`alg_confusion`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import secrets
import shutil
import signal
import subprocess
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import anyio
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeyParameters, OKPKey, RSAKey
from mcp.shared.auth import AuthorizationCodeResult

from session_buddy.client.oauth import MemoryTokenStorage  # the product's, re-exported
from testkit.processes import REPO_ROOT, die_with_parent
from testkit.server import LOOPBACK, free_port
from testkit.tokens import DROP, assemble, b64

NODE_DIR = REPO_ROOT / "testkit" / "node" / "oidc"
SCRIPT = NODE_DIR / "provider.mjs"
STARTUP_TIMEOUT = 30.0
DEFAULT_SCOPES = ("read", "write", "admin")
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
"""Signing algorithms a key can be made for (RSA 2048, RSA 2048, P-256, Ed25519)."""

Key = RSAKey | ECKey | OKPKey
TokenFormat = Literal["jwt", "opaque"]


class ProviderNotInstalled(RuntimeError):
    """Node or the provider's node_modules are missing; ``fix`` says how to get them."""

    fix = "install Node.js and run `make node` (npm ci in testkit/node/oidc)"


class ProviderStartFailed(RuntimeError):
    """The provider exited, or did not say it was ready in time; the log tail says why."""


class OAuthError(RuntimeError):
    """The provider answered an OAuth request with an error (RFC 6749 §5.2 body)."""

    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class ResourcePolicy:
    """What the provider issues for a resource indicator (its ``getResourceServerInfo``).

    ``scope``: the scopes it may carry (``None``: every provider scope); ``alg``: the signing
    algorithm (``None``: the first one the provider has); ``format``: ``jwt`` (RFC 9068) or
    ``opaque`` (for introspection); ``ttl``: lifetime in seconds (``None``: the provider's);
    ``audience``: ``aud`` instead of the resource URI (as Auth0 or Keycloak do).
    """

    scope: str | None = None
    alg: str | None = None
    format: TokenFormat = "jwt"
    ttl: int | None = None
    audience: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {name: value for name, value in vars(self).items() if value is not None}


@dataclass(frozen=True)
class Client:
    """A client registered with the provider from the start (oidc-provider's static clients).

    ``secret`` ``None`` makes a public client (``token_endpoint_auth_method: none``).
    ``allowed_scopes`` narrows, silently as Keycloak does, what its tokens carry;
    ``allowed_resources`` refuses other resource indicators (``invalid_target``);
    ``token_alg`` / ``token_format`` / ``token_ttl`` override the resource's policy for its
    tokens. ``metadata`` is passed to oidc-provider as is (RFC 7591 names).
    """

    client_id: str
    secret: str | None = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    grant_types: tuple[str, ...] = ("client_credentials",)
    redirect_uris: tuple[str, ...] = ()
    allowed_scopes: tuple[str, ...] | None = None
    allowed_resources: tuple[str, ...] | None = None
    token_alg: str | None = None
    token_format: TokenFormat | None = None
    token_ttl: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def service(
        cls, client_id: str, *, scopes: Sequence[str] | None = None, **options: Any
    ) -> Client:
        """A confidential client-credentials client (a service such as Mahavishnu)."""
        allowed = None if scopes is None else tuple(scopes)
        return cls(client_id, allowed_scopes=allowed, **options)

    @classmethod
    def app(
        cls,
        client_id: str,
        redirect_uri: str = "http://127.0.0.1/callback",
        *,
        public: bool = True,
        **options: Any,
    ) -> Client:
        """An authorization-code client (PKCE always required), public unless told."""
        if public:
            options["secret"] = None
        return cls(
            client_id,
            grant_types=("authorization_code", "refresh_token"),
            redirect_uris=(redirect_uri,),
            **options,
        )

    def as_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "client_id": self.client_id,
            "grant_types": list(self.grant_types),
            "redirect_uris": list(self.redirect_uris),
            "response_types": ["code"] if "authorization_code" in self.grant_types else [],
        }
        if self.secret is None:
            entry["token_endpoint_auth_method"] = "none"
        else:
            entry["client_secret"] = self.secret
        if self.allowed_scopes is not None:
            entry["allowed_scopes"] = list(self.allowed_scopes)
        if self.allowed_resources is not None:
            entry["allowed_resources"] = list(self.allowed_resources)
        overrides = {"alg": self.token_alg, "format": self.token_format, "ttl": self.token_ttl}
        overrides = {name: value for name, value in overrides.items() if value is not None}
        if overrides:
            entry["access_token"] = overrides
        entry.update(self.metadata)
        return entry


@dataclass(frozen=True)
class TokenResponse:
    """A successful token endpoint answer (RFC 6749 §5.1)."""

    access_token: str = field(repr=False)
    token_type: str
    expires_in: int | None = None
    scope: str | None = None
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AuthorizationResponse:
    """Where the provider sent the browser at the end: the client's redirect URI with a code
    (RFC 6749 §4.1.2; ``iss`` per RFC 9207), or with an ``error``."""

    redirect: str
    code: str | None
    state: str | None
    iss: str | None
    error: str | None


def generate_key(alg: str, kid: str | None = None) -> Key:
    """A fresh private signing key for ``alg`` (one of :data:`ALGORITHMS`), with ``kid``,
    ``alg`` and ``use: sig`` set (as identity providers publish them)."""
    parameters: KeyParameters = {
        "kid": kid or f"{alg.lower()}-{secrets.token_hex(4)}",
        "alg": alg,
        "use": "sig",
    }
    if alg in ("RS256", "PS256"):
        return RSAKey.generate_key(2048, parameters=parameters, private=True)
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters, private=True)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", parameters=parameters, private=True)
    raise ValueError(f"no key type for {alg!r}; one of {ALGORITHMS}")


def import_key(jwk: Mapping[str, Any]) -> Key:
    """A private JWK (as stored in the provider's directory) as a joserfc key."""
    kinds: dict[str, type[Key]] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
    return kinds[jwk["kty"]].import_key(dict(jwk))


def sign(claims: Mapping[str, Any], key: Key, *, header: Mapping[str, Any] | None = None) -> str:
    """``claims`` signed by ``key`` with its own ``alg`` and ``kid``, ``typ: at+jwt`` unless
    ``header`` says otherwise (:data:`~testkit.tokens.DROP` removes a header field)."""
    alg = str(key.get("alg"))
    fields: dict[str, Any] = {"alg": alg, "typ": "at+jwt", "kid": key.kid}
    fields.update(header or {})
    fields = {name: value for name, value in fields.items() if value is not DROP}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc: "EdDSA is deprecated via RFC 9864"
        return jose_jwt.encode(fields, dict(claims), key, algorithms=[alg])


def sign_with_unknown_key(
    claims: Mapping[str, Any], *, alg: str = "RS256", kid: str | None = None
) -> str:
    """``claims`` signed by a fresh key the provider does not publish. ``kid``: the key id to
    claim (a forged one by default; pass a published kid to impersonate that key)."""
    key = generate_key(alg, kid or f"forged-{secrets.token_hex(6)}")
    return sign(claims, key)


def alg_confusion(
    claims: Mapping[str, Any],
    public_jwk: Mapping[str, Any],
    *,
    encoding: Literal["pem", "pkcs1", "der", "jwk"] = "pem",
) -> str:
    """An HS256 token whose HMAC key is the provider's RSA (or EC) public key, in the form a
    careless verifier might hand to HMAC: PEM SubjectPublicKeyInfo, PEM PKCS#1 (RSA only),
    DER, or the JWK's JSON. The header names the key's ``kid`` and ``typ: at+jwt``."""
    key = import_key(public_jwk)
    secret: bytes
    if encoding == "jwk":
        secret = json.dumps(dict(public_jwk), separators=(",", ":")).encode()
    else:
        public = key.public_key
        if encoding == "der":
            secret = public.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            form = (
                serialization.PublicFormat.PKCS1
                if encoding == "pkcs1"
                else serialization.PublicFormat.SubjectPublicKeyInfo
            )
            secret = public.public_bytes(serialization.Encoding.PEM, form)
    header = {"alg": "HS256", "typ": "at+jwt", "kid": public_jwk.get("kid")}
    return assemble(header, dict(claims), secret)


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims, unverified (for assertions about what was issued)."""
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


class _FormReader(HTMLParser):
    """The first ``<form>`` of a page: its action, method and named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self._inside = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and not self._done and self.action is None:
            self.action = values.get("action", "")
            self.method = values.get("method", "get").lower()
            self._inside = True
        elif tag == "input" and self._inside and "name" in values:
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._inside:
            self._inside = False
            self._done = True


def _pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, b64(digest)


class OpenIDProvider:
    """One oidc-provider process and its directory (configuration, keys, log).

    Construction only decides the configuration; :meth:`start` (or ``with``) writes it, with
    keys generated on first start, and starts the process; the port is picked then and kept,
    so the issuer (``http://127.0.0.1:PORT`` plus ``issuer_path``) never changes.
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str = "op",
        port: int | None = None,
        issuer_path: str = "",
        scopes: Sequence[str] = DEFAULT_SCOPES,
        resources: Mapping[str, ResourcePolicy] | None = None,
        default_resource: ResourcePolicy | None = ResourcePolicy(),
        clients: Sequence[Client] = (),
        algorithms: Sequence[str] = ("RS256", "ES256"),
        ttl: Mapping[str, int] | None = None,
        registration: bool = True,
        startup_timeout: float = STARTUP_TIMEOUT,
        node: str | None = None,
    ) -> None:
        """``resources``: policies for given resource URIs; ``default_resource``: the policy
        for any other absolute URI (``None``: refused with ``invalid_target``).
        ``algorithms``: one signing key made for each (the first also signs ID tokens).
        ``ttl``: oidc-provider lifetimes in seconds by artifact name (``AccessToken``,
        ``ClientCredentials``, ``AuthorizationCode``, ``RefreshToken``, …). ``node``: the
        Node.js executable (default: ``node`` on PATH)."""
        if issuer_path and (not issuer_path.startswith("/") or issuer_path.endswith("/")):
            raise ValueError("issuer_path starts with / and does not end with one")
        self.directory = directory / name
        self.port = port
        self.issuer_path = issuer_path
        self.scopes = tuple(scopes)
        self.resources = dict(resources or {})
        self.default_resource = default_resource
        self.clients = {client.client_id: client for client in clients}
        self.algorithms = tuple(algorithms)
        self.ttl = dict(ttl or {})
        self.registration = registration
        self.startup_timeout = startup_timeout
        self.node = node
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._keys: list[dict[str, Any]] = []
        self._signers: dict[str, str] = {}
        self._generation = 0
        self._cookie_keys = [secrets.token_urlsafe(32)]

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> OpenIDProvider:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> OpenIDProvider:
        """Start the process on this provider's port and wait until it serves."""
        if self.running:
            raise RuntimeError("the provider is already running")
        node = self.node or shutil.which("node")
        if node is None or not (NODE_DIR / "node_modules" / "oidc-provider").is_dir():
            raise ProviderNotInstalled(ProviderNotInstalled.fix)
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port()
        self._load_or_make_keys()
        self._write_config()
        started = time.monotonic()
        since = len(self.log())
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [node, str(SCRIPT), str(self.config_path)],
                cwd=NODE_DIR,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=functools.partial(die_with_parent, signal.SIGKILL),
            )
        try:
            self._wait_for_line(f"ready generation={self._generation}", self.startup_timeout, since)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``); nothing if not running."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        process.send_signal(signal.SIGCONT)  # a paused provider takes the SIGTERM now
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections (the kernel's backlog) but nothing
        answers, as with a provider that hangs. :meth:`resume` undoes it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash would end it."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def restart(self) -> OpenIDProvider:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def reload(self) -> None:
        """Write the configuration and make the running provider take it (SIGHUP), waiting
        until it says it did; a stopped provider takes it at its next start."""
        self._write_config()
        if not self.running:
            return
        assert self.process is not None
        since = len(self.log())
        self.process.send_signal(signal.SIGHUP)
        self._wait_for_line(f"reloaded generation={self._generation}", self.startup_timeout, since)

    # -- where it is -----------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.directory / "config.json"

    @property
    def keys_path(self) -> Path:
        return self.directory / "keys.json"

    @property
    def log_path(self) -> Path:
        return self.directory / "provider.log"

    @property
    def origin(self) -> str:
        if self.port is None:
            raise RuntimeError("the provider has not been started: no port yet")
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def issuer(self) -> str:
        """The issuer identifier, exactly as the provider writes it in ``iss`` and metadata."""
        return f"{self.origin}{self.issuer_path}"

    @property
    def metadata_url(self) -> str:
        """RFC 8414 §3.1: the well-known segment between the host and the issuer's path."""
        return f"{self.origin}/.well-known/oauth-authorization-server{self.issuer_path}"

    @property
    def openid_configuration_url(self) -> str:
        """OpenID Connect Discovery 1.0: the well-known segment after the issuer's path."""
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def jwks_uri(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/token"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def introspection_endpoint(self) -> str:
        return f"{self.issuer}/token/introspection"

    @property
    def revocation_endpoint(self) -> str:
        return f"{self.issuer}/token/revocation"

    @property
    def registration_endpoint(self) -> str:
        return f"{self.issuer}/reg"

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def request_count(self, url: str | None = None, method: str | None = None) -> int:
        """How many requests reached the provider (through every start of this directory),
        for the path of ``url`` (``op.jwks_uri``, or a path) and ``method`` if given: what a
        resource server's key fetching cost the provider."""
        path = None if url is None else urlsplit(url).path
        count = 0
        for line in self.log().splitlines():
            if not line.startswith("request "):
                continue
            verb, _, quoted = line.removeprefix("request ").partition(" ")
            if (method is None or verb == method) and (path is None or json.loads(quoted) == path):
                count += 1
        return count

    def metadata(self) -> dict[str, Any]:
        """The RFC 8414 metadata document, fetched."""
        with self._http() as http:
            response = http.get(self.metadata_url)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    # -- keys ------------------------------------------------------------------------------

    def signing_kid(self, alg: str = "RS256") -> str:
        """The key id that signs ``alg`` tokens now."""
        return self._signers[alg]

    @property
    def kids(self) -> list[str]:
        """Every published key id, in JWKS order."""
        return [str(jwk["kid"]) for jwk in self._keys]

    def public_jwk(self, kid: str) -> dict[str, Any]:
        """The published (public) form of key ``kid``."""
        return dict(import_key(self._private_jwk(kid)).as_dict(private=False))

    def private_key(self, kid: str | None = None, *, alg: str = "RS256") -> Key:
        """The provider's own private key ``kid`` (default: the current ``alg`` signer), for
        tokens validly signed by this issuer with claims it would never issue."""
        return import_key(self._private_jwk(kid or self._signers[alg]))

    def add_key(self, alg: str, *, sign: bool = False, first: bool = True) -> str:
        """Publish a new key for ``alg`` (first in the JWKS unless told), making it that
        algorithm's signer if ``sign``; reloads a running provider. Returns its kid."""
        key: dict[str, Any] = dict(generate_key(alg).as_dict(private=True))
        if first:
            self._keys.insert(0, key)
        else:
            self._keys.append(key)
        if sign:
            self._signers[alg] = key["kid"]
        self._save_keys()
        self.reload()
        return str(key["kid"])

    def rotate(self, alg: str = "RS256", *, retire: bool = False) -> str:
        """A new signer for ``alg``: a new key, published and signing from now on; the old
        ``alg`` keys stay published unless ``retire``. Returns the new kid."""
        old = [jwk["kid"] for jwk in self._keys if jwk["alg"] == alg]
        kid = self.add_key(alg, sign=True)
        if retire:
            self._keys = [jwk for jwk in self._keys if jwk["kid"] not in old]
            self._save_keys()
            self.reload()
        return kid

    def remove_key(self, kid: str) -> None:
        """Stop publishing ``kid`` (refused for a current signer: rotate first)."""
        if kid in self._signers.values():
            raise ValueError(f"{kid} signs tokens now; rotate before removing it")
        self._keys = [jwk for jwk in self._keys if jwk["kid"] != kid]
        self._save_keys()
        self.reload()

    # -- clients ---------------------------------------------------------------------------

    def client(self, client_id: str) -> Client:
        return self.clients[client_id]

    def add_client(self, client: Client) -> Client:
        """Register (or replace) a static client; reloads a running provider."""
        self.clients[client.client_id] = client
        self.reload()
        return client

    def set_resource(self, resource: str, policy: ResourcePolicy) -> None:
        """Set the policy for one resource URI; reloads a running provider."""
        self.resources[resource] = policy
        self.reload()

    # -- tokens the provider issues --------------------------------------------------------

    def client_credentials(
        self,
        client: str | Client,
        resource: str | None = None,
        scope: str | None = None,
        *,
        auth: Literal["basic", "post"] = "basic",
    ) -> TokenResponse:
        """The client credentials grant (RFC 6749 §4.4) with an RFC 8707 ``resource``.
        Raises :class:`OAuthError` with the provider's error."""
        found = self._client(client)
        data = {"grant_type": "client_credentials"}
        if resource is not None:
            data["resource"] = resource
        if scope is not None:
            data["scope"] = scope
        return self._token_request(data, found, auth)

    def authorize(
        self,
        authorization_url: str,
        *,
        login: str = "alice",
        password: str = "any password",  # noqa: S107 - the dev login form takes anything
        max_steps: int = 12,
    ) -> AuthorizationResponse:
        """Drive the provider's own login and consent forms for ``authorization_url``, as a
        browser with a user would: follow redirects, fill in and submit each form, until
        the provider redirects somewhere else (the client's redirect URI)."""
        url = authorization_url
        with self._http() as http:
            for _ in range(max_steps):
                response = http.get(url)
                if response.is_redirect:
                    url = urljoin(url, response.headers["location"])
                    if not url.startswith(self.origin):
                        return _authorization_response(url)
                    continue
                form = _FormReader()
                form.feed(response.text)
                if response.status_code != 200 or form.action is None:
                    raise OAuthError(response.status_code, "no_form", response.text[:500])
                fields = dict(form.fields)
                if "login" in fields or fields.get("prompt") == "login":
                    fields.update(login=login, password=password)
                action = urljoin(url, form.action)
                answer = http.post(action, data=fields) if form.method == "post" else None
                if answer is None:
                    raise OAuthError(response.status_code, "unsupported_form", form.method)
                if not answer.is_redirect:
                    raise OAuthError(answer.status_code, "form_refused", answer.text[:500])
                url = urljoin(action, answer.headers["location"])
                if not url.startswith(self.origin):
                    return _authorization_response(url)
        raise OAuthError(0, "too_many_steps", f"no redirect back after {max_steps} steps")

    def authorization_code(
        self,
        client: str | Client,
        resource: str | None,
        scope: str = "read",
        *,
        login: str = "alice",
    ) -> TokenResponse:
        """The whole authorization code flow with PKCE (S256) for ``login``: the request, the
        provider's login and consent forms, the code exchange (with ``resource`` again)."""
        found = self._client(client)
        verifier, challenge = _pkce_pair()
        state = secrets.token_urlsafe(16)
        query = {
            "response_type": "code",
            "client_id": found.client_id,
            "redirect_uri": found.redirect_uris[0],
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if resource is not None:
            query["resource"] = resource
        answer = self.authorize(f"{self.authorization_endpoint}?{urlencode(query)}", login=login)
        if answer.error is not None or answer.code is None:
            raise OAuthError(400, answer.error or "no_code", answer.redirect)
        if answer.state != state or answer.iss != self.issuer:
            raise OAuthError(400, "bad_redirect", answer.redirect)
        data = {
            "grant_type": "authorization_code",
            "code": answer.code,
            "redirect_uri": found.redirect_uris[0],
            "code_verifier": verifier,
        }
        if resource is not None:
            data["resource"] = resource
        return self._token_request(data, found, "basic")

    def introspect(
        self, token: str, client: str | Client, *, auth: Literal["basic", "post"] = "basic"
    ) -> dict[str, Any]:
        """RFC 7662: the provider's verdict on ``token``, asked by a confidential client."""
        found = self._client(client)
        data, headers = self._client_auth({"token": token}, found, auth)
        with self._http() as http:
            response = http.post(self.introspection_endpoint, data=data, headers=headers)
        if response.status_code != 200:
            raise _oauth_error(response)
        answer: dict[str, Any] = response.json()
        return answer

    def revoke(self, token: str, client: str | Client) -> None:
        """RFC 7009: revoke a token issued to ``client``."""
        found = self._client(client)
        data, headers = self._client_auth({"token": token}, found, "basic")
        with self._http() as http:
            response = http.post(self.revocation_endpoint, data=data, headers=headers)
        if response.status_code != 200:
            raise _oauth_error(response)

    def register(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """RFC 7591 dynamic registration; the provider's answer (``client_id``, …)."""
        with self._http() as http:
            response = http.post(self.registration_endpoint, json=dict(metadata))
        if response.status_code != 201:
            raise _oauth_error(response)
        answer: dict[str, Any] = response.json()
        return answer

    # -- tokens the provider would never issue ---------------------------------------------

    def access_token_claims(
        self,
        client_id: str = "svc",
        resource: str = "http://127.0.0.1/mcp",
        scope: str = "read",
        *,
        sub: str | None = None,
        lifetime: int = 600,
        now: float | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """RFC 9068 claims as this provider writes them; ``extra`` adds or overrides,
        :data:`~testkit.tokens.DROP` removes (``aud=DROP``: no audience)."""
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(24),
            "sub": sub or client_id,
            "iat": issued,
            "exp": issued + lifetime,
            "scope": scope,
            "client_id": client_id,
            "iss": self.issuer,
            "aud": resource,
        }
        claims.update(extra)
        return {name: value for name, value in claims.items() if value is not DROP}

    def forge(
        self,
        claims: Mapping[str, Any],
        *,
        alg: str = "RS256",
        kid: str | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        """``claims`` validly signed by this provider's key (the ``alg`` signer, or ``kid``):
        expired, no ``aud``, another ``iss`` … — what its signature alone cannot catch."""
        return sign(claims, self.private_key(kid, alg=alg), header=header)

    # -- internals -------------------------------------------------------------------------

    def _client(self, client: str | Client) -> Client:
        return client if isinstance(client, Client) else self.clients[client]

    def _http(self) -> httpx.Client:
        return httpx.Client(timeout=10.0, trust_env=False, follow_redirects=False)

    def _client_auth(
        self, data: dict[str, str], client: Client, auth: Literal["basic", "post"]
    ) -> tuple[dict[str, str], dict[str, str]]:
        headers: dict[str, str] = {}
        if client.secret is None:
            data = {**data, "client_id": client.client_id}
        elif auth == "post":
            data = {**data, "client_id": client.client_id, "client_secret": client.secret}
        else:
            basic = httpx.BasicAuth(client.client_id, client.secret)
            request = next(basic.auth_flow(httpx.Request("POST", self.token_endpoint)))
            headers["Authorization"] = request.headers["Authorization"]
        return data, headers

    def _token_request(
        self, data: dict[str, str], client: Client, auth: Literal["basic", "post"]
    ) -> TokenResponse:
        data, headers = self._client_auth(data, client, auth)
        with self._http() as http:
            response = http.post(self.token_endpoint, data=data, headers=headers)
        if response.status_code != 200:
            raise _oauth_error(response)
        body = response.json()
        return TokenResponse(
            access_token=body["access_token"],
            token_type=body["token_type"],
            expires_in=body.get("expires_in"),
            scope=body.get("scope"),
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
        )

    def _load_or_make_keys(self) -> None:
        if self._keys:
            return
        if self.keys_path.exists():
            stored = json.loads(self.keys_path.read_text())
            self._keys, self._signers = stored["keys"], stored["signers"]
            return
        for alg in self.algorithms:
            key: dict[str, Any] = dict(generate_key(alg).as_dict(private=True))
            self._keys.append(key)
            self._signers[alg] = str(key["kid"])
        self._save_keys()

    def _save_keys(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"keys": self._keys, "signers": self._signers}, indent=1)
        _write_private(self.keys_path, text)

    def _private_jwk(self, kid: str) -> dict[str, Any]:
        for jwk in self._keys:
            if jwk["kid"] == kid:
                return jwk
        raise KeyError(kid)

    def _write_config(self) -> None:
        self._generation += 1
        config = {
            "issuer": self.issuer,
            "host": LOOPBACK,
            "port": self.port,
            "generation": self._generation,
            "jwks": {"keys": self._keys},
            "signers": self._signers,
            "scopes": list(self.scopes),
            "resources": {uri: policy.as_json() for uri, policy in self.resources.items()},
            "default_resource": (
                None if self.default_resource is None else self.default_resource.as_json()
            ),
            "clients": [client.as_json() for client in self.clients.values()],
            "ttl": self.ttl,
            "registration": self.registration,
            "cookie_keys": self._cookie_keys,
        }
        _write_private(self.config_path, json.dumps(config, indent=1))

    def _wait_for_line(self, line: str, timeout: float, since: int = 0) -> None:
        """Until the log, from byte ``since`` on, has ``line``: the provider's answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.log()[since:].splitlines()
            if line in lines:
                return
            if any(text.startswith("reload failed") for text in lines):
                raise ProviderStartFailed(self.tail())
            if self.process is None or self.process.poll() is not None:
                raise ProviderStartFailed(f"the provider exited: {self.tail()}")
            time.sleep(0.01)
        raise ProviderStartFailed(f"no {line!r} in {timeout:.0f} s: {self.tail()}")

    def tail(self, lines: int = 8) -> str:
        return " | ".join(self.log().strip().splitlines()[-lines:])


def standard_clients() -> list[Client]:
    """The clients a shared provider starts with (fresh secrets each call): services with
    every scope (``svc-admin``), ``read`` only (``svc-reader``), ES256 tokens
    (``svc-es256``) and opaque tokens (``svc-opaque``); ``resource-server``, the
    confidential client a resource server introspects with; ``app``, a public
    authorization-code client redirecting to ``http://127.0.0.1/callback``."""
    return [
        Client.service("svc-admin"),
        Client.service("svc-reader", scopes=("read",)),
        Client.service("svc-es256", token_alg="ES256"),
        Client.service("svc-opaque", token_format="opaque"),
        Client.service("resource-server"),
        Client.app("app"),
    ]


class BrowserLogin:
    """The user at the browser, for the MCP SDK's ``OAuthClientProvider``: its
    ``redirect_handler`` gets the authorization URL the SDK built and has the provider's
    login and consent forms filled in as ``login``; its ``callback_handler`` hands the
    code, state and ``iss`` (RFC 9207) from the redirect back to the SDK."""

    def __init__(self, provider: OpenIDProvider, login: str = "alice") -> None:
        self.provider = provider
        self.login = login
        self.authorization_urls: list[str] = []
        self.response: AuthorizationResponse | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        self.response = await anyio.to_thread.run_sync(
            functools.partial(self.provider.authorize, authorization_url, login=self.login)
        )

    async def callback_handler(self) -> AuthorizationCodeResult:
        answer = self.response
        if answer is None or answer.code is None:
            error = "no_redirect" if answer is None else answer.error or "no_code"
            raise OAuthError(400, error, "" if answer is None else answer.redirect)
        return AuthorizationCodeResult(code=answer.code, state=answer.state, iss=answer.iss)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds private keys and client secrets)."""
    temporary = path.with_suffix(".tmp")
    temporary.touch(mode=0o600)
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _oauth_error(response: httpx.Response) -> OAuthError:
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict) and "error" in body:
            return OAuthError(
                response.status_code, body["error"], body.get("error_description", "")
            )
    return OAuthError(response.status_code, "http_error", response.text[:200])


def _authorization_response(url: str) -> AuthorizationResponse:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    return AuthorizationResponse(
        redirect=url,
        code=query.get("code"),
        state=query.get("state"),
        iss=query.get("iss"),
        error=query.get("error"),
    )


__all__ = [
    "ALGORITHMS",
    "AuthorizationResponse",
    "BrowserLogin",
    "Client",
    "MemoryTokenStorage",
    "OAuthError",
    "OpenIDProvider",
    "ProviderNotInstalled",
    "ProviderStartFailed",
    "ResourcePolicy",
    "TokenResponse",
    "alg_confusion",
    "decode_unverified",
    "generate_key",
    "import_key",
    "sign",
    "sign_with_unknown_key",
    "standard_clients",
]
