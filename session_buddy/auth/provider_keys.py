"""``ProviderKeys``: an identity provider's metadata and signing keys, fetched and cached.

Discovery (first use, or :meth:`ProviderKeys.open`): RFC 8414 metadata at
``/.well-known/oauth-authorization-server{issuer path}``, else OpenID Connect discovery at
``{issuer}/.well-known/openid-configuration``; the document's ``issuer`` must equal the
configured issuer exactly (RFC 8414 §3.3), and it gives ``jwks_uri`` and, when the provider
has one, ``introspection_endpoint``.

Keys come from ``jwks_uri`` and are kept in memory. Each key's algorithm comes from the key
itself (its ``alg``, else its type and curve), never from a token: RS256, PS256, ES256 and
EdDSA only; symmetric keys and keys for encryption are ignored. A token naming a key id
not in the set triggers one refresh — at most ``max_refreshes`` in any minute, so a flood
of forged key ids costs the provider a few requests a minute, while a rotation is picked up
at once and without a restart. A refresh never makes other requests wait: while one is
running, or after one failed (for ``retry_after_failure`` seconds), an unknown key id is
refused at once, and the keys already fetched keep working. Only a provider that never
answered (keys never fetched) is the server's own fault (``ProviderUnavailableError``, 503).

Fetching is plain HTTP(S) with short timeouts, no redirects and no proxy from the
environment (configuration is read in one place); answers are size-bounded.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt

from session_buddy.auth import errors

logger = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
_KEY_TYPES = {"RS256": ("RSA", None), "PS256": ("RSA", None), "ES256": ("EC", "P-256")}
_EDDSA_CURVES = ("Ed25519", "Ed448")
MAX_DOCUMENT_BYTES = 512 * 1024
DEFAULT_TIMEOUT_SECONDS = 3.0
DEFAULT_MAX_REFRESHES = 3  # per REFRESH_WINDOW seconds, besides the first fetch
REFRESH_WINDOW = 60.0
DEFAULT_RETRY_AFTER_FAILURE = 5.0  # a provider that did not answer is asked again after this


@dataclass(frozen=True, slots=True)
class ProviderKey:
    """One published signing key: its id, the one algorithm it verifies, the key."""

    kid: str | None
    algorithm: str
    key: jwt.PyJWK


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What discovery found (RFC 8414 / OpenID Connect Discovery)."""

    issuer: str
    jwks_uri: str
    introspection_endpoint: str | None
    source: str


@dataclass(frozen=True, slots=True)
class KeysStatus:
    """What ``auth status`` shows for one issuer."""

    issuer: str
    kids: tuple[str, ...]
    fetched_at: float | None
    jwks_uri: str | None
    introspection_endpoint: str | None
    problem: str | None


def key_algorithm(jwk: Mapping[str, Any]) -> str | None:
    """The one algorithm a JWK verifies, from the key itself; None for a key we never use
    (symmetric, for encryption, an unsupported type or curve, an ``alg`` that does not
    fit its type)."""
    if jwk.get("use", "sig") != "sig":
        return None
    kty, crv, alg = jwk.get("kty"), jwk.get("crv"), jwk.get("alg")
    if alg is None:  # no alg published: the algorithm its type and curve imply
        if kty == "RSA":
            return "RS256"
        if kty == "EC" and crv == "P-256":
            return "ES256"
        if kty == "OKP" and crv in _EDDSA_CURVES:
            return "EdDSA"
        return None
    if alg == "EdDSA":
        return alg if kty == "OKP" and crv in _EDDSA_CURVES else None
    expected = _KEY_TYPES.get(alg) if isinstance(alg, str) else None
    if expected is None or kty != expected[0] or (expected[1] and crv != expected[1]):
        return None
    return str(alg)


def metadata_urls(issuer: str) -> tuple[str, str]:
    """RFC 8414's well-known URL for ``issuer`` (the path after the well-known part), then
    OpenID Connect Discovery's (the well-known part after the path)."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    rfc8414 = urlunsplit(
        (parts.scheme, parts.netloc, f"/.well-known/oauth-authorization-server{path}", "", "")
    )
    return rfc8414, f"{issuer.rstrip('/')}/.well-known/openid-configuration"


class ProviderKeys:
    """The metadata and keys of one issuer; nothing is fetched until first needed.

    Thread-safe: readers take the current key set without a lock; one fetch at a time
    replaces it whole.
    """

    def __init__(
        self,
        issuer: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_refreshes: int = DEFAULT_MAX_REFRESHES,
        retry_after_failure: float = DEFAULT_RETRY_AFTER_FAILURE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self._timeout = timeout
        self._max_refreshes = max_refreshes
        self._refreshes: deque[float] = deque()  # when the recent refreshes were tried
        self._retry_after_failure = retry_after_failure
        self._clock = clock
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        self._metadata: ProviderMetadata | None = None
        self._keys: dict[str | None, ProviderKey] | None = None
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._problem: str | None = None

    # -- what verifiers ask -----------------------------------------------------------------

    def key(self, kid: str | None) -> ProviderKey:
        """The published key ``kid`` names (a token without ``kid``: the only key, if the
        set has exactly one). Raises ``UnknownSigningKeyError`` (401) for a key not
        published, ``ProviderUnavailableError`` (503) while no keys were ever fetched."""
        keys = self._keys
        if keys is not None:
            found = _find(keys, kid)
            if found is not None:
                return found
        keys = self._refreshed(kid, known=keys)
        found = _find(keys, kid)
        if found is None:
            raise errors.UnknownSigningKeyError(f"kid {str(kid)[:40]!r} is not in the JWKS")
        return found

    def metadata(self) -> ProviderMetadata:
        """The provider's metadata, discovered on first use (``ProviderUnavailableError``
        while it cannot be)."""
        found = self._metadata
        if found is not None:
            return found
        self._refreshed(None, known=None)
        found = self._metadata
        if found is None:  # pragma: no cover - _refreshed raises instead
            raise errors.ProviderUnavailableError("no metadata")
        return found

    def http(self) -> httpx.Client:
        """The HTTP client for this provider (made on first use)."""
        client = self._http
        if client is None:
            client = self._http = httpx.Client(
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                trust_env=False,
                headers={"Accept": "application/json"},
            )
        return client

    def open(self) -> None:
        """Discover and fetch the keys now (``auth status``, a server's start); raises
        ``ProviderUnavailableError`` when the provider cannot be reached."""
        with self._lock:
            self._fetch()

    def close(self) -> None:
        client, self._http = self._http, None
        if client is not None:
            client.close()

    def status(self) -> KeysStatus:
        keys = self._keys or {}
        metadata = self._metadata
        return KeysStatus(
            issuer=self.issuer,
            kids=tuple(str(kid) for kid in keys if kid is not None),
            fetched_at=self._fetched_at,
            jwks_uri=metadata.jwks_uri if metadata else None,
            introspection_endpoint=metadata.introspection_endpoint if metadata else None,
            problem=self._problem,
        )

    # -- fetching -----------------------------------------------------------------------------

    def _refreshed(
        self, kid: str | None, *, known: dict[str | None, ProviderKey] | None
    ) -> dict[str | None, ProviderKey]:
        """The key set after at most one fetch, if the rules allow one now."""
        if known is None:  # nothing to answer with yet: wait for a fetch running
            acquired = self._lock.acquire(timeout=2 * self._timeout + 1)
        else:  # a refresh running: the keys we have answer, at once
            acquired = self._lock.acquire(blocking=False)
        if not acquired:
            return self._current_or_unavailable("another fetch is still running")
        try:
            keys = self._keys
            if keys is not None and (keys is not known or _find(keys, kid) is not None):
                return keys  # someone else fetched meanwhile
            now = self._clock()
            if (
                self._problem is not None
                and now - (self._attempted_at or 0) < self._retry_after_failure
            ):
                return self._current_or_unavailable(self._problem)
            if keys is not None:
                while self._refreshes and now - self._refreshes[0] >= REFRESH_WINDOW:
                    self._refreshes.popleft()
                if len(self._refreshes) >= self._max_refreshes:
                    return keys  # refreshed enough this minute
                self._refreshes.append(now)
            try:
                self._fetch()
            except errors.ProviderUnavailableError:
                if keys is None:
                    raise
                return keys  # the provider is down: the keys we have keep working
            return self._keys or {}
        finally:
            self._lock.release()

    def _current_or_unavailable(self, why: str) -> dict[str | None, ProviderKey]:
        keys = self._keys
        if keys is None:
            raise errors.ProviderUnavailableError(f"{self.issuer}: {why}")
        return keys

    def _fetch(self) -> None:
        """Discover (once) and fetch the JWKS; called with the lock held."""
        self._attempted_at = self._clock()
        try:
            metadata = self._metadata or self._discover()
            keys = _parse_jwks(self._get_json(metadata.jwks_uri) or {})
        except errors.ProviderUnavailableError as exc:
            self._problem = exc.detail
            logger.warning("identity provider %s: %s", self.issuer, exc.detail)
            raise
        self._metadata = metadata
        self._keys = keys
        self._fetched_at = self._clock()
        self._problem = None
        logger.info(
            "identity provider %s: %d signing keys from %s",
            self.issuer,
            len(keys),
            metadata.jwks_uri,
        )

    def _discover(self) -> ProviderMetadata:
        for url in metadata_urls(self.issuer):
            document = self._get_json(url, missing_ok=True)
            if document is None:
                continue
            issuer = document.get("issuer")
            if issuer != self.issuer:
                raise errors.ProviderUnavailableError(
                    f"{url} names issuer {str(issuer)[:200]!r}, not {self.issuer!r} "
                    "(they must be equal, RFC 8414 section 3.3)"
                )
            jwks_uri = document.get("jwks_uri")
            if not _is_url(jwks_uri, like=self.issuer):
                raise errors.ProviderUnavailableError(f"{url} has no usable jwks_uri")
            endpoint = document.get("introspection_endpoint")
            usable = _is_url(endpoint, like=self.issuer)
            return ProviderMetadata(
                issuer=self.issuer,
                jwks_uri=str(jwks_uri),
                introspection_endpoint=str(endpoint) if usable else None,
                source=url,
            )
        raise errors.ProviderUnavailableError(
            f"{self.issuer} publishes no RFC 8414 or OpenID Connect metadata"
        )

    def _get_json(self, url: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        try:
            with self.http().stream("GET", url) as response:
                if missing_ok and response.status_code in (404, 405, 410):
                    return None
                if response.status_code != 200:
                    raise errors.ProviderUnavailableError(f"{url} answered {response.status_code}")
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise errors.ProviderUnavailableError(f"{url} answered over 512 KiB")
        except httpx.HTTPError as exc:
            raise errors.ProviderUnavailableError(
                f"{url} cannot be fetched: {type(exc).__name__}"
            ) from None
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise errors.ProviderUnavailableError(f"{url} did not answer JSON") from None
        if not isinstance(document, dict):
            raise errors.ProviderUnavailableError(f"{url} did not answer a JSON object")
        return document


def _find(keys: Mapping[str | None, ProviderKey], kid: str | None) -> ProviderKey | None:
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    return keys.get(kid) if kid is not None else None


def _parse_jwks(document: Mapping[str, Any]) -> dict[str | None, ProviderKey]:
    """The usable signing keys of a JWKS document, by kid (keys we never use dropped)."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise errors.ProviderUnavailableError("the JWKS has no keys list")
    keys: dict[str | None, ProviderKey] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        algorithm = key_algorithm(entry)
        kid = entry.get("kid")
        if algorithm is None or not (kid is None or isinstance(kid, str)) or kid in keys:
            continue
        try:
            key = jwt.PyJWK(entry, algorithm=algorithm)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue  # a key we cannot read verifies nothing
        keys[kid] = ProviderKey(kid, algorithm, key)
    return keys


def _is_url(value: object, *, like: str) -> bool:
    """An http(s) URL; plain http only when the issuer itself is plain http (tests, a
    provider on loopback)."""
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    allowed = ("https", "http") if urlsplit(like).scheme == "http" else ("https",)
    return parts.scheme in allowed and bool(parts.hostname)
