"""``SessionBuddyClient``: session-buddy's tools as typed async methods, for other projects.

It wraps the official MCP client (``mcp.Client``). Over stdio it starts
``python -m session_buddy serve`` and sends the token as each tool's ``token`` argument;
over HTTP it sends ``Authorization: Bearer <token>`` with every request. Results come
back as the session layer's pydantic models; refusals as exceptions::

    async with SessionBuddyClient.stdio(secret=shared_secret) as sb:
        info = await sb.start("/path/to/project")
        await sb.checkpoint("/path/to/project", note="parser done")
        handoff = await sb.end("/path/to/project", summary="ready for review")
        print(handoff.markdown)

A project that is not on the server's disk is named by its id instead, with the branch,
commit and changed files the caller reports; :func:`describe_checkout` reads them from a
local clone::

    async with SessionBuddyClient.http(url, secret=shared_secret) as sb:
        await sb.start(project=describe_checkout("/home/me/repo"))
        await sb.checkpoint(project="github.com/owner/repo", branch="main", note="tests pass")
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO, TypeVar

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT, CallToolResult, TextContent
from pydantic import BaseModel, ValidationError

from session_buddy.client.credentials import (
    MintedTokens,
    NoToken,
    StaticToken,
    TokenSource,
    secret_from_environment,
)
from session_buddy.client.errors import (
    AUTH_ERROR_KINDS,
    SessionBuddyAuthError,
    SessionBuddyConnectionError,
    SessionBuddyError,
    SessionBuddyToolError,
)
from session_buddy.client.oauth import ClientCredentials
from session_buddy.config import DEFAULT_AUDIENCE, child_environment
from session_buddy.mcp.error_meta import error_data
from session_buddy.mcp.identity import Identity
from session_buddy.sessions.models import (
    CheckpointInfo,
    HandOff,
    SessionInfo,
    SessionList,
    SessionStatus,
)
from session_buddy.sessions.target import ReportedProject

DEFAULT_URL = "http://127.0.0.1:8678/mcp"
Directory = str | Path | None
DEFAULT_TIMEOUT_SECONDS = 60.0
SECRET_VARIABLE = "SESSION_BUDDY_SECRET"
# The MCP SDK's defaults: a response stream may stay open, so reads wait longer.
HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
REFUSAL_STATUSES = (401, 403, 429)
"""What the HTTP edge answers a refused credential: 401 (none, or a bad one), 403 (a
token without the tool's scope: a JSON-RPC error whose ``data`` is the OAuth error), 429."""

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ToolResult:
    """A successful tool call: its text for people and its structured content."""

    tool: str
    text: str
    structured: dict[str, Any] | None


def _credentials(
    token: str | None,
    secret: str | None,
    *,
    anonymous: bool,
    user_id: str,
    role: str | None,
    issuer: str | None,
    audience: str | None,
    scopes: Sequence[str] | None,
    token_minutes: float,
) -> tuple[TokenSource, str | None]:
    """The token source, and the secret it signs with (None unless minting)."""
    if anonymous:
        return NoToken(), None
    if token is not None:
        return StaticToken(token), None
    settings_audience = DEFAULT_AUDIENCE
    if secret is None:
        secret, settings = secret_from_environment()
        settings_audience = settings.audience
        if secret is None:
            return NoToken(), None
    source = MintedTokens(
        secret,
        user_id=user_id,
        role=role,
        issuer=issuer,
        audience=audience if audience is not None else settings_audience,
        scopes=scopes,
        lifetime_minutes=token_minutes,
    )
    return source, secret


class _BearerAuth(httpx2.Auth):
    """Adds ``Authorization: Bearer`` from the token source."""

    def __init__(self, tokens: TokenSource) -> None:
        self._tokens = tokens

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = self._tokens.current()
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        yield request


class _RefusalWatch(httpx2.Auth):
    """Runs ``inner`` (our bearer header, or the SDK's OAuth provider with all its
    requests) and remembers why the final answer refused the credentials (401/403/429)."""

    def __init__(self, inner: httpx2.Auth) -> None:
        self._inner = inner
        self.rejection: SessionBuddyAuthError | None = None

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = self._inner.async_auth_flow(request)
        outgoing = await anext(flow)
        while True:
            response = yield outgoing
            try:
                outgoing = await flow.asend(response)
            except StopAsyncIteration:
                break
        if response.status_code in REFUSAL_STATUSES:
            await response.aread()
            self.rejection = _http_rejection(response)


def _http_rejection(response: httpx2.Response) -> SessionBuddyAuthError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict):  # a JSON-RPC error (the 403 step-up)
        data = error.get("data")
        body = {
            "message": error.get("message"),
            **(data if isinstance(data, dict) else {}),
        }
    reason = str(body.get("error_description") or f"HTTP {response.status_code}")
    if response.status_code == 429:
        retry_after = response.headers.get("retry-after", "")
        return SessionBuddyAuthError(
            f"❌ Authentication failed: {reason}",
            reason=reason,
            retry_after=int(retry_after) if retry_after.isdigit() else None,
        )
    return SessionBuddyAuthError(
        str(body.get("message") or f"❌ Authentication failed: {reason}"), reason=reason
    )


class SessionBuddyClient:
    """An async context manager connected to one session-buddy server.

    Build it with :meth:`stdio` or :meth:`http`. Credentials, in order: ``oauth=`` (HTTP:
    client credentials from an OAuth authorization server), ``anonymous=True``
    (none), ``token=`` (sent as is), ``secret=`` (tokens minted and renewed here), else
    the environment's ``MAHAVISHNU_AUTH__SECRET``, ``MAHAVISHNU_AUTH_SECRET`` or
    ``SESSION_BUDDY_SECRET`` (its file, the data dir's ``.env``, ``BODAI_SHARED_SECRET``);
    with none of these the client sends no token, which only a server without authentication (or in
    migration mode) accepts.

    Minted tokens name ``user_id`` (claims ``user_id`` and ``sub``), carry ``aud``
    (``audience=``, else ``SESSION_BUDDY_AUDIENCE``, else ``session-buddy``), and
    ``role=`` and ``scopes=`` when given (``scopes=["read"]`` for a client that only
    reads).
    """

    def __init__(
        self,
        server: StdioServerParameters | str,
        tokens: TokenSource,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        server_log: TextIO | None = None,
        oauth: ClientCredentials | None = None,
    ) -> None:
        self._server = server
        self._tokens = tokens
        self._timeout = timeout
        self._server_log = server_log
        self._oauth = oauth
        self._auth: _RefusalWatch | None = None
        self._client: Client | None = None
        self._stack: AsyncExitStack | None = None

    # -- construction --------------------------------------------------------------

    @classmethod
    def stdio(
        cls,
        *,
        token: str | None = None,
        secret: str | None = None,
        anonymous: bool = False,
        user_id: str = "mahavishnu",
        role: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        scopes: Sequence[str] | None = None,
        token_minutes: float = 60,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        server_log: TextIO | None = None,
    ) -> SessionBuddyClient:
        """A client that starts its own server (``session-buddy serve``) over stdio.

        The server inherits this process's environment plus ``env``. When the client
        mints tokens and that environment names no secret, the server is given the
        same one as ``SESSION_BUDDY_SECRET``. ``server_log`` receives the server's
        stderr (default: this process's stderr).
        """
        tokens, signing_secret = _credentials(
            token, secret, anonymous=anonymous, user_id=user_id, role=role, issuer=issuer,
            audience=audience, scopes=scopes, token_minutes=token_minutes,
        )  # fmt: skip
        child_env = child_environment()
        child_env.update(env or {})
        if signing_secret is not None and not (
            child_env.get(SECRET_VARIABLE) or child_env.get(f"{SECRET_VARIABLE}_FILE")
        ):
            child_env[SECRET_VARIABLE] = signing_secret
        argv = list(command) if command else [sys.executable, "-m", "session_buddy", "serve"]
        parameters = StdioServerParameters(command=argv[0], args=argv[1:], env=child_env, cwd=cwd)
        return cls(parameters, tokens, timeout=timeout, server_log=server_log)

    @classmethod
    def http(
        cls,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        secret: str | None = None,
        anonymous: bool = False,
        user_id: str = "mahavishnu",
        role: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        scopes: Sequence[str] | None = None,
        token_minutes: float = 60,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        oauth: ClientCredentials | None = None,
    ) -> SessionBuddyClient:
        """A client for a running ``session-buddy serve --transport http`` at ``url``.

        ``oauth``: get tokens from an OAuth authorization server by client credentials
        (the MCP SDK's ``ClientCredentialsOAuthProvider`` does the discovery from the
        server's 401 and the token requests); the other credential options are then unused.
        """
        if oauth is not None:
            return cls(url, NoToken(), timeout=timeout, oauth=oauth)
        tokens, _ = _credentials(
            token, secret, anonymous=anonymous, user_id=user_id, role=role, issuer=issuer,
            audience=audience, scopes=scopes, token_minutes=token_minutes,
        )  # fmt: skip
        return cls(url, tokens, timeout=timeout)

    @property
    def transport(self) -> str:
        return "http" if isinstance(self._server, str) else "stdio"

    # -- connection ------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        try:
            self._client = await self._connect(stack)
        except Exception as exc:
            await stack.aclose()
            raise self._connection_error(exc) from None
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def _connect(self, stack: AsyncExitStack) -> Client:
        if isinstance(self._server, str):
            inner = (
                _BearerAuth(self._tokens)
                if self._oauth is None
                else self._oauth.provider(self._server)
            )
            self._auth = _RefusalWatch(inner)
            http_client = await stack.enter_async_context(
                httpx2.AsyncClient(auth=self._auth, timeout=HTTP_TIMEOUT)
            )
            transport = streamable_http_client(self._server, http_client=http_client)
        else:
            transport = stdio_client(self._server, errlog=self._server_log or sys.stderr)
        client = Client(transport, read_timeout_seconds=self._timeout)
        return await stack.enter_async_context(client)

    def _connection_error(self, exc: Exception) -> Exception:
        if isinstance(exc, SessionBuddyError):
            return exc
        if self._auth is not None and self._auth.rejection is not None:
            return self._auth.rejection
        where = self._server if isinstance(self._server, str) else "the server process"
        detail = _describe(exc)
        hint = (
            "is `session-buddy serve --transport http` running there?"
            if isinstance(self._server, str)
            else "see its stderr (run `session-buddy auth status` to check the configuration)"
        )
        return SessionBuddyConnectionError(f"Cannot connect to {where} ({detail}); {hint}")

    # -- tools -------------------------------------------------------------------------

    async def call_tool(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """Call any tool. Over stdio the token is added as the ``token`` argument unless
        ``arguments`` has one (``"token": None`` sends the call without a token)."""
        if self._client is None:
            raise SessionBuddyError("SessionBuddyClient must be used in `async with`")
        payload = dict(arguments or {})
        if self.transport == "stdio" and "token" not in payload:
            token = self._tokens.current()
            if token:
                payload["token"] = token
        payload = {key: value for key, value in payload.items() if value is not None}
        if self._auth is not None:
            self._auth.rejection = None
        try:
            result = await self._client.call_tool(name, payload)
        except MCPError as exc:
            if self._auth is not None and self._auth.rejection is not None:
                raise self._auth.rejection from None
            if exc.code in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
                raise SessionBuddyConnectionError(f"{name}: {exc.message}") from None
            raise SessionBuddyToolError(f"{name}: {exc.message}", tool=name) from None
        except (
            OSError,
            httpx2.HTTPError,
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
        ) as exc:
            raise SessionBuddyConnectionError(f"{name}: connection failed ({exc})") from None
        return _unwrap(name, result)

    # Each session method names its project by ``working_directory`` (a directory on the
    # server's disk) or by ``project`` (an id, or a ReportedProject) with the ``branch``,
    # ``commit`` and ``changed_files`` the caller reports; the server refuses neither or both.

    async def start(
        self,
        working_directory: Directory = None,
        *,
        project: str | ReportedProject | None = None,
        branch: str | None = None,
        commit: str | None = None,
        changed_files: int | None = None,
    ) -> SessionInfo:
        """Start a session in the project (or get the caller's active one there)."""
        where = _project_arguments(working_directory, project, branch, commit, changed_files)
        return await self._model("start_session", SessionInfo, **where)

    async def checkpoint(
        self,
        working_directory: Directory = None,
        note: str | None = None,
        *,
        project: str | ReportedProject | None = None,
        branch: str | None = None,
        commit: str | None = None,
        changed_files: int | None = None,
    ) -> CheckpointInfo:
        """Record a checkpoint (git state and an optional note) in the active session."""
        where = _project_arguments(working_directory, project, branch, commit, changed_files)
        return await self._model("checkpoint", CheckpointInfo, note=note, **where)

    async def end(
        self,
        working_directory: Directory = None,
        summary: str | None = None,
        *,
        project: str | ReportedProject | None = None,
        branch: str | None = None,
        commit: str | None = None,
        changed_files: int | None = None,
    ) -> HandOff:
        """End the active session; the result's ``markdown`` is the hand-off document."""
        where = _project_arguments(working_directory, project, branch, commit, changed_files)
        return await self._model("end_session", HandOff, summary=summary, **where)

    async def status(
        self,
        working_directory: Directory = None,
        *,
        project: str | ReportedProject | None = None,
        branch: str | None = None,
    ) -> SessionStatus:
        """Whether a session is active in the project (``branch`` only helps the server
        choose among several directories of one project id)."""
        where = _project_arguments(working_directory, project, branch, None, None)
        where.pop("commit", None)
        where.pop("changed_files", None)
        return await self._model("session_status", SessionStatus, **where)

    async def list_sessions(
        self,
        working_directory: Directory = None,
        limit: int = 20,
        *,
        project: str | ReportedProject | None = None,
    ) -> SessionList:
        """The caller's sessions, newest first (every user's for orchestrators and admins),
        of one directory or one project id when given."""
        directory = None if working_directory is None else str(working_directory)
        project_id = project.id if isinstance(project, ReportedProject) else project
        return await self._model(
            "list_sessions",
            SessionList,
            working_directory=directory,
            project=project_id,
            limit=limit,
        )

    async def whoami(self) -> Identity:
        """Who the server thinks this client is."""
        return await self._model("whoami", Identity)

    async def _model(self, tool: str, model: type[M], **arguments: Any) -> M:
        result = await self.call_tool(tool, arguments)
        if result.structured is None:
            raise SessionBuddyToolError(
                f"{tool}: the server returned no structured result", tool=tool
            )
        try:
            return model.model_validate(result.structured)
        except ValidationError as exc:
            raise SessionBuddyToolError(
                f"{tool}: unexpected result shape ({exc.error_count()} errors); "
                "are client and server the same session-buddy version?",
                tool=tool,
            ) from None


def _project_arguments(
    working_directory: Directory,
    project: str | ReportedProject | None,
    branch: str | None,
    commit: str | None,
    changed_files: int | None,
) -> dict[str, Any]:
    """The tool arguments naming the project; a report's fields unless given explicitly."""
    if isinstance(project, ReportedProject):
        branch = project.branch if branch is None else branch
        commit = project.commit if commit is None else commit
        changed_files = project.changed_files if changed_files is None else changed_files
        project = project.id
    return {
        "working_directory": None if working_directory is None else str(working_directory),
        "project": project,
        "branch": branch,
        "commit": commit,
        "changed_files": changed_files,
    }


def _unwrap(tool: str, result: CallToolResult) -> ToolResult:
    text = "\n".join(part.text for part in result.content if isinstance(part, TextContent))
    if result.is_error:
        error = error_data(result) or {}
        if error.get("kind") in AUTH_ERROR_KINDS:
            raise SessionBuddyAuthError(text, reason=str(error.get("message") or text))
        raise SessionBuddyToolError(text or f"{tool} failed", tool=tool)
    structured = result.structured_content
    if structured is None and text.startswith("{"):
        try:
            structured = json.loads(text)
        except ValueError:
            structured = None
    return ToolResult(tool=tool, text=text, structured=structured)


def _describe(exc: BaseException) -> str:
    """One line for an exception or exception group (the first leaf error)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPError):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
