"""Client credentials from an OAuth 2.1 authorization server (Keycloak, Okta, Auth0, Entra
ID, …), for a service such as Mahavishnu calling session-buddy over HTTP.

The OAuth work is the MCP SDK's own (``ClientCredentialsOAuthProvider``): from the
server's 401 it finds the Protected Resource Metadata, checks that it names ``issuer``,
reads that issuer's metadata, asks its token endpoint for a token for this server (the
RFC 8707 ``resource`` is the server's resource URI) and sends it; it asks again when the
token expires or the server answers 403 ``insufficient_scope``. The requested scope is
what the server's challenge names (``read write``), else ``scope``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mcp.client.auth import TokenStorage
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

AuthMethod = Literal["client_secret_basic", "client_secret_post"]


class MemoryTokenStorage(TokenStorage):
    """The SDK's ``TokenStorage``: one client's tokens and registration, in memory for the
    life of the client (never on disk)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass(frozen=True)
class ClientCredentials:
    """A confidential client registered with ``issuer`` (its issuer URL, exactly as the
    provider's metadata spells it): ``client_id`` and ``client_secret`` (never shown).
    ``scope``: what to ask for when the server names none (space-separated)."""

    client_id: str
    client_secret: str = field(repr=False)
    issuer: str
    scope: str | None = None
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"

    def provider(self, server_url: str) -> ClientCredentialsOAuthProvider:
        """The SDK's OAuth provider (an ``httpx`` auth) for the server at ``server_url``."""
        return ClientCredentialsOAuthProvider(
            server_url,
            MemoryTokenStorage(),
            self.client_id,
            self.client_secret,
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            scope=self.scope,
            issuer=self.issuer,
        )
