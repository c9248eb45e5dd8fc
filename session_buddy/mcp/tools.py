"""The MCP tools: one thin method per tool — call the service, wrap the result.

The signatures are the input schemas. The caller's identity is never a parameter: it
comes from ``require_auth`` (the ``token`` argument, or a verified HTTP bearer header
found through ``ctx``), applied by :meth:`SessionTools.register` with the runtime's
:class:`JWTManager`. Results are ``CallToolResult``s carrying the session layer's pydantic
model as structured content (see :mod:`session_buddy.mcp.results`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from session_buddy.auth.crossproject import CrossProjectAuth
from session_buddy.auth.manager import JWTManager
from session_buddy.auth.principal import Principal
from session_buddy.auth.scopes import EXECUTE, READ, WRITE, ImpliedBy
from session_buddy.mcp.envelope import EnvelopeVerdict
from session_buddy.mcp.guard import get_current_user, require_auth
from session_buddy.mcp.identity import Identity
from session_buddy.mcp.metrics import ServerMetrics
from session_buddy.mcp.results import structured, verbatim_errors
from session_buddy.sessions.errors import InputTooLargeError, SessionError
from session_buddy.sessions.identity import MAX_BRANCH_CHARS, MAX_PROJECT_ID_CHARS
from session_buddy.sessions.models import (
    CheckpointInfo,
    HandOff,
    SessionInfo,
    SessionList,
    SessionStatus,
)
from session_buddy.sessions.service import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    MAX_TEXT_CHARS,
    SessionService,
)
from session_buddy.sessions.target import choose_filter, choose_project

Token = Annotated[
    str | None,
    Field(
        description=(
            "JWT access token (HS256, e.g. minted by Mahavishnu). Optional: not needed when "
            "authentication is disabled or the HTTP request carries 'Authorization: Bearer'."
        )
    ),
]
WorkingDirectory = Annotated[
    str | None,
    Field(
        description=(
            "Absolute path of the project directory on the server's disk. Give this or "
            "`project`, not both."
        )
    ),
]
ProjectId = Annotated[
    str | None,
    Field(
        description=(
            "The project's id, for a project not on the server's disk: its git remote URL "
            "(https://host/owner/repo, git@host:owner/repo) or a name; at most "
            f"{MAX_PROJECT_ID_CHARS} characters. URLs are normalised to host/path; user info "
            "(credentials) is removed and never stored. Give this or `working_directory`."
        )
    ),
]
Branch = Annotated[
    str | None,
    Field(
        description=(
            f"With `project`: the git branch you are on (at most {MAX_BRANCH_CHARS} characters)."
        )
    ),
]
Commit = Annotated[
    str | None,
    Field(description="With `project`: your HEAD commit id (4 to 64 hexadecimal characters)."),
]
ChangedFiles = Annotated[
    int | None,
    Field(description="With `project`: how many files your checkout has changed."),
]
DirectoryFilter = Annotated[
    str | None,
    Field(description="Absolute path of a project directory to list only its sessions."),
]
ProjectIdFilter = Annotated[
    str | None,
    Field(description="A project id to list only that project's sessions."),
]
Note = Annotated[
    str | None,
    Field(description=f"What happened since the last checkpoint (up to {MAX_TEXT_CHARS:,} chars)."),
]
Summary = Annotated[
    str | None,
    Field(description=f"Summary of the session for the hand-off (up to {MAX_TEXT_CHARS:,} chars)."),
]
Envelope = Annotated[
    dict[str, Any],
    Field(
        description=(
            "A signed cross-project envelope, as `session-buddy envelope sign` or "
            "CrossProjectAuth.sign_envelope makes it: {message, signature, algorithm}."
        )
    ),
]
MAX_ENVELOPE_BYTES = 256 * 1024
Limit = Annotated[
    int,
    Field(ge=1, le=MAX_LIST_LIMIT, description="Maximum number of sessions, newest first."),
]


def _caller() -> Principal:
    principal = get_current_user()
    if principal is None:  # pragma: no cover - require_auth always sets it
        raise RuntimeError("tool called without require_auth")
    return principal


# Mahavishnu's JWTAuth mints ["read", "execute"] by default, and its orchestrator starts,
# checkpoints and ends sessions as part of executing the work it runs: for the session
# tools, "execute" is that same permission, so it satisfies "write".
SESSION_SCOPES_IMPLIED_BY: ImpliedBy = {WRITE: (EXECUTE,)}


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """How a tool is published and protected: ``scope`` is the one it needs (None: any
    verified caller; :data:`SESSION_SCOPES_IMPLIED_BY` says what else satisfies it)."""

    title: str
    read_only: bool
    idempotent: bool
    optional_auth: bool = False
    scope: str | None = None


class SessionTools:
    """The session-buddy MCP tools, bound to one :class:`SessionService` and one
    :class:`JWTManager` (whose configuration, rules and revocations protect them).

    ``bearer_only`` (HTTP with ``SESSION_BUDDY_BEARER_ONLY``): the tools refuse a
    ``token`` argument and leave it out of their input schemas. ``envelopes`` checks
    cross-project envelopes for ``verify_envelope`` (None: no shared secret configured).
    """

    SPECS: ClassVar[Mapping[str, ToolSpec]] = MappingProxyType(
        {
            "start_session": ToolSpec(
                "Start session", read_only=False, idempotent=True, scope=WRITE
            ),
            "checkpoint": ToolSpec(
                "Checkpoint session", read_only=False, idempotent=False, scope=WRITE
            ),
            "end_session": ToolSpec("End session", read_only=False, idempotent=False, scope=WRITE),
            "session_status": ToolSpec(
                "Session status", read_only=True, idempotent=True, scope=READ
            ),
            "list_sessions": ToolSpec("List sessions", read_only=True, idempotent=True, scope=READ),
            "whoami": ToolSpec("Who am I", read_only=True, idempotent=True, optional_auth=True),
            # It writes: an accepted envelope's nonce is spent for every instance.
            "verify_envelope": ToolSpec(
                "Verify a cross-project envelope", read_only=False, idempotent=False, scope=WRITE
            ),
        }
    )
    """Every tool, by name (the method that implements it): the one list of tools."""

    def __init__(
        self,
        service: SessionService,
        manager: JWTManager,
        envelopes: CrossProjectAuth | None = None,
        *,
        bearer_only: bool = False,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self._service = service
        self._manager = manager
        self._envelopes = envelopes
        self._bearer_only = bearer_only
        self._metrics = metrics

    @classmethod
    def names(cls) -> frozenset[str]:
        """The name of every tool the server publishes (the HTTP layer's audit needs them
        to tell a real tool from any other name a request carries)."""
        return frozenset(cls.SPECS)

    @classmethod
    def scopes(cls) -> dict[str, str | None]:
        """Each tool's required scope (None: any verified caller), by name — what the HTTP
        layer's step-up checks a bearer token against before the tool runs."""
        return {name: spec.scope for name, spec in cls.SPECS.items()}

    def specs(self) -> dict[Callable[..., CallToolResult], ToolSpec]:
        return {getattr(self, name): spec for name, spec in self.SPECS.items()}

    def register(self, server: MCPServer) -> None:
        """Add every tool to ``server``, protected, with titles and behaviour hints."""
        for method, spec in self.specs().items():
            guarded = require_auth(
                self._manager,
                optional=spec.optional_auth,
                scopes=() if spec.scope is None else (spec.scope,),
                implied_by=SESSION_SCOPES_IMPLIED_BY,
                bearer_only=self._bearer_only,
            )(method)
            tool = verbatim_errors(guarded)
            if self._metrics is not None:
                tool = self._metrics.measured(method.__name__, tool)
            server.add_tool(
                tool,
                title=spec.title,
                annotations=ToolAnnotations(
                    title=spec.title,
                    read_only_hint=spec.read_only,
                    destructive_hint=False,
                    idempotent_hint=spec.idempotent,
                    open_world_hint=False,
                ),
            )

    def start_session(
        self,
        ctx: Context,
        working_directory: WorkingDirectory = None,
        project: ProjectId = None,
        branch: Branch = None,
        commit: Commit = None,
        changed_files: ChangedFiles = None,
        token: Token = None,
    ) -> Annotated[CallToolResult, SessionInfo]:
        """Start a coding session in a project (or return your active one there).

        Name the project by `working_directory` (the server records its name, git branch
        and commit, and project markers) or by `project` id with the branch, commit and
        changed files you report.
        """
        where = choose_project(
            working_directory, project, branch=branch, commit=commit, changed_files=changed_files
        )
        return structured(self._service.start(_caller(), where))

    def checkpoint(
        self,
        ctx: Context,
        working_directory: WorkingDirectory = None,
        project: ProjectId = None,
        branch: Branch = None,
        commit: Commit = None,
        changed_files: ChangedFiles = None,
        note: Note = None,
        token: Token = None,
    ) -> Annotated[CallToolResult, CheckpointInfo]:
        """Record a checkpoint in the active session: git state, commits since last, a note."""
        where = choose_project(
            working_directory, project, branch=branch, commit=commit, changed_files=changed_files
        )
        return structured(self._service.checkpoint(_caller(), where, note))

    def end_session(
        self,
        ctx: Context,
        working_directory: WorkingDirectory = None,
        project: ProjectId = None,
        branch: Branch = None,
        commit: Commit = None,
        changed_files: ChangedFiles = None,
        summary: Summary = None,
        token: Token = None,
    ) -> Annotated[CallToolResult, HandOff]:
        """End the active session and return its Markdown hand-off document."""
        where = choose_project(
            working_directory, project, branch=branch, commit=commit, changed_files=changed_files
        )
        handoff = self._service.end(_caller(), where, summary)
        return structured(handoff, handoff.markdown)

    def session_status(
        self,
        ctx: Context,
        working_directory: WorkingDirectory = None,
        project: ProjectId = None,
        branch: Branch = None,
        token: Token = None,
    ) -> Annotated[CallToolResult, SessionStatus]:
        """Whether a session is active in the project, with its last checkpoint."""
        where = choose_project(working_directory, project, branch=branch)
        return structured(self._service.status(_caller(), where))

    def list_sessions(
        self,
        ctx: Context,
        working_directory: DirectoryFilter = None,
        project: ProjectIdFilter = None,
        limit: Limit = DEFAULT_LIST_LIMIT,
        token: Token = None,
    ) -> Annotated[CallToolResult, SessionList]:
        """Your sessions, newest first (admins and orchestrators see every user's)."""
        where = choose_filter(working_directory, project)
        return structured(self._service.list_sessions(_caller(), where, limit))

    def whoami(self, ctx: Context, token: Token = None) -> Annotated[CallToolResult, Identity]:
        """Whether authentication is enabled, and who the verified caller is (never the token)."""
        identity = Identity.of(_caller(), auth_enabled=self._manager.enabled)
        return structured(identity)

    def verify_envelope(
        self, envelope: Envelope, ctx: Context, token: Token = None
    ) -> Annotated[CallToolResult, EnvelopeVerdict]:
        """Check a signed cross-project envelope (Mahavishnu's HMAC-SHA256 format).

        Valid means: signed with the shared secret, addressed to this server (to_project
        'session-buddy', or SESSION_BUDDY_AUDIENCE; '_' and '-' alike), fresh (at most 5
        minutes old), and not accepted before by any session-buddy instance on this
        database — so a replay to another instance is refused too. Accepting spends the
        envelope, so the call needs the 'write' scope. The verdict carries the sender,
        recipient and content of a valid envelope.
        """
        if self._envelopes is None:
            raise EnvelopesUnavailableError()
        size = len(json.dumps(envelope, default=str))
        if size > MAX_ENVELOPE_BYTES:
            raise InputTooLargeError("envelope", size, MAX_ENVELOPE_BYTES)
        return structured(EnvelopeVerdict.of(self._envelopes.check_envelope(envelope)))


class EnvelopesUnavailableError(SessionError):
    """No shared secret is configured, so no envelope can be checked."""

    reason = "envelopes_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "Envelopes cannot be verified: no shared secret is configured "
            "(set SESSION_BUDDY_SECRET on the server)"
        )
