"""This server as an OAuth 2.0 protected resource: its resource URI and its Protected
Resource Metadata (RFC 9728), which MCP clients discover from a 401.

* :func:`resource_url` — the resource URI (decided by ``Settings.effective_resource_url``):
  ``SESSION_BUDDY_RESOURCE_URL``, else, on a loopback bind, ``http://127.0.0.1:PORT/mcp``
  (the address as bound); beyond loopback it must be set when an OAuth issuer is
  (:class:`~session_buddy.config.ResourceUrlError`), since only the operator knows the
  name clients use. The metadata URL derives from it (:func:`metadata_url`, RFC 9728 §3.1).
* :class:`ProtectedResourceMetadataApp` — serves the metadata at the path form
  (``/.well-known/oauth-protected-resource/mcp``) and the root form
  (``/.well-known/oauth-protected-resource``), in front of authentication: ``resource``,
  ``authorization_servers`` (the configured issuers), ``scopes_supported`` (read, write,
  admin), ``bearer_methods_supported`` ``["header"]``, ``resource_name``. The SDK's model
  and handler (with its CORS and caching headers) make the answer.

Metadata exists only when an OAuth issuer is configured: RFC 9728 metadata names the
authorization servers a client gets tokens from, and with only the shared secret there is
none (the SDK's model requires at least one; a client finding none fails discovery all the
same). Then nothing is published, and 401s carry no ``resource_metadata``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.routes import build_resource_metadata_url, cors_middleware
from mcp.shared.auth import ProtectedResourceMetadata
from pydantic import AnyHttpUrl
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from session_buddy.auth.scopes import ADMIN, READ, WRITE
from session_buddy.config import Settings, is_loopback

RESOURCE_NAME = "session-buddy"
MCP_PATH = "/mcp"
WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"
SCOPES_SUPPORTED = (READ, WRITE, ADMIN)


def resource_url(settings: Settings, host: str, port: int) -> str | None:
    """This server's resource URI for a bind to ``host``:``port``
    (:meth:`Settings.effective_resource_url`, the one place it is decided), or None beyond
    loopback when it is unset and no issuer is configured (nothing needs it then). Raises
    :class:`~session_buddy.config.ResourceUrlError` when an issuer is configured beyond
    loopback without ``SESSION_BUDDY_RESOURCE_URL``.
    """
    if not settings.resource_url and not settings.oauth_issuers and not is_loopback(host):
        return None
    return settings.effective_resource_url(host, port)


def metadata_url(resource: str) -> str:
    """Where the metadata of ``resource`` is (RFC 9728 §3.1: the well-known path inserted
    between the origin and the resource's path)."""
    return str(build_resource_metadata_url(AnyHttpUrl(resource)))


def metadata_paths(resource: str) -> tuple[str, ...]:
    """The paths the metadata is served at: the path form, then the root form."""
    path = str(AnyHttpUrl(metadata_url(resource)).path or WELL_KNOWN_PATH)
    return (path,) if path == WELL_KNOWN_PATH else (path, WELL_KNOWN_PATH)


def protected_resource_metadata(resource: str, issuers: Sequence[str]) -> ProtectedResourceMetadata:
    """The metadata of ``resource``, naming ``issuers``; ``ValueError`` (pydantic's) when
    one of them is no http(s) URL."""
    # Validated from strings, so the model keeps an issuer exactly as configured (no
    # trailing slash added): clients compare it with the issuer's own metadata.
    return ProtectedResourceMetadata.model_validate(
        {
            "resource": resource,
            "authorization_servers": list(issuers),
            "scopes_supported": list(SCOPES_SUPPORTED),
            "bearer_methods_supported": ["header"],
            "resource_name": RESOURCE_NAME,
        }
    )


class ProtectedResourceMetadataApp:
    """``app``, with ``resource``'s metadata (naming ``issuers``) answered in front of it."""

    def __init__(self, app: ASGIApp, *, resource: str, issuers: Sequence[str]) -> None:
        self.app = app
        self.metadata = protected_resource_metadata(resource, issuers)
        endpoint = cors_middleware(
            ProtectedResourceMetadataHandler(self.metadata).handle, ["GET", "OPTIONS"]
        )
        self._routes = [
            Route(path, endpoint=endpoint, methods=["GET", "OPTIONS"])
            for path in metadata_paths(resource)
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self._routes:
                match, child = route.matches(scope)
                if match is not Match.NONE:  # PARTIAL: another method, answered 405
                    scope.update(child)
                    await route.handle(scope, receive, send)
                    return
        await self.app(scope, receive, send)
