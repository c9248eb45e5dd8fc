"""Session rules: lifecycle, ownership and what each call records. No MCP knowledge.

Every method takes the caller's :class:`Principal` first; the identity never comes from
the request. A user sees and changes only their own sessions. A privileged principal
(role ``admin`` or ``orchestrator``) acts on its own active session in a project when it
has one, otherwise on the most recently started active session of any user there, and
lists every user's sessions.

Errors are :class:`~session_buddy.sessions.errors.SessionError` subclasses with a
user-facing message, or :class:`~session_buddy.store.StorageError` when the database
file itself cannot be used.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from session_buddy.auth.principal import Principal
from session_buddy.sessions.errors import (
    InputTooLargeError,
    NoActiveSessionError,
    SessionNotFoundError,
)
from session_buddy.sessions.git import GIT_TIMEOUT_SECONDS, count_commits
from session_buddy.sessions.handoff import render_handoff
from session_buddy.sessions.models import (
    CheckpointInfo,
    GitSnapshot,
    HandOff,
    ProjectMarkers,
    ProjectSnapshot,
    SessionDetail,
    SessionInfo,
    SessionList,
    SessionStatus,
)
from session_buddy.sessions.paths import resolve_working_directory
from session_buddy.sessions.project import detect_project
from session_buddy.store import Database
from session_buddy.store.sessions import CheckpointRecord, SessionRecord, SessionRepository
from session_buddy.text import iso_time, shorten

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 10_000
DEFAULT_LIST_LIMIT = 20
MAX_LIST_LIMIT = 500


def clamp_limit(limit: int) -> int:
    """``limit`` brought into 1..500."""
    return max(1, min(MAX_LIST_LIMIT, int(limit)))


def _bounded_text(field: str, value: str | None) -> str | None:
    """``value`` if within the size limit (blank means none), else InputTooLargeError."""
    if value is None:
        return None
    if len(value) > MAX_TEXT_CHARS:
        raise InputTooLargeError(field, len(value), MAX_TEXT_CHARS)
    return value if value.strip() else None


def _is_session_id(value: str) -> bool:
    return len(value) == 32 and all(ch in "0123456789abcdef" for ch in value)


class SessionService:
    """Starts, checkpoints, ends and reports coding sessions stored in ``db``.

    ``allowed_roots`` limits which directories may be projects (empty: any). ``clock``
    returns Unix time; tests pass a fixed one. ``git`` and ``git_timeout`` say how to run
    git for project snapshots.
    """

    def __init__(
        self,
        db: Database,
        allowed_roots: Sequence[Path] = (),
        clock: Callable[[], float] = time.time,
        *,
        git: str = "git",
        git_timeout: float = GIT_TIMEOUT_SECONDS,
    ) -> None:
        self._repo = SessionRepository(db)
        self._allowed_roots = tuple(Path(root) for root in allowed_roots)
        self._clock = clock
        self._git = git
        self._git_timeout = git_timeout

    # -- lifecycle ------------------------------------------------------------------

    def start(self, principal: Principal, working_directory: str) -> SessionInfo:
        """Start a session in the project, or return the caller's active one there.

        The result's ``created`` is True only when this call started the session.
        """
        path = self._resolve(working_directory)
        existing = self._repo.active_for_user(principal.owner, str(path))
        if existing is not None:
            return self._session_info(existing)
        snapshot = self._snapshot(path)
        record = SessionRecord(
            id=uuid.uuid4().hex,
            user_id=principal.owner,
            project_path=str(path),
            project_name=snapshot.name,
            started_at=self._clock(),
            ended_at=None,
            snapshot_json=snapshot.model_dump_json(),
        )
        stored, created = self._repo.create_or_get_active(record)
        if created:
            logger.info("session %s started by %s in %s", stored.id, stored.user_id, path)
        return self._session_info(stored, created=created)

    def checkpoint(
        self, principal: Principal, working_directory: str, note: str | None = None
    ) -> CheckpointInfo:
        """Record the project's state (and an optional note) in the active session."""
        note = _bounded_text("note", note)
        path = self._resolve(working_directory)
        session = self._target(principal, path, working_directory)
        snapshot = self._snapshot(path)
        previous = self._repo.last_checkpoint(session.id)
        before = _load_snapshot(previous.snapshot_json if previous else session.snapshot_json)
        commits = count_commits(
            path, before.git.commit, snapshot.git.commit, git=self._git, timeout=self._git_timeout
        )
        record = self._repo.add_checkpoint(
            session.id,
            created_at=self._clock(),
            note=note,
            snapshot_json=snapshot.model_dump_json(),
            commits_since_previous=commits,
            changed_files=snapshot.git.changed_files,
        )
        if record is None:  # ended by another process meanwhile
            raise NoActiveSessionError(working_directory)
        return _checkpoint_info(record, session)

    def end(
        self, principal: Principal, working_directory: str, summary: str | None = None
    ) -> HandOff:
        """End the active session and return (and store) its Markdown hand-off."""
        summary = _bounded_text("summary", summary)
        path = self._resolve(working_directory)
        session = self._target(principal, path, working_directory)
        end_snapshot = self._snapshot(path)
        start_snapshot = _load_snapshot(session.snapshot_json)
        commits = count_commits(
            path,
            start_snapshot.git.commit,
            end_snapshot.git.commit,
            git=self._git,
            timeout=self._git_timeout,
        )
        checkpoints = [
            _checkpoint_info(record, session) for record in self._repo.checkpoints(session.id)
        ]
        ended_at = self._clock()
        closing = self._session_info(
            dataclasses.replace(session, ended_at=ended_at), checkpoint_count=len(checkpoints)
        )
        markdown = render_handoff(
            closing,
            checkpoints,
            end_snapshot,
            summary=summary,
            commits_during_session=commits,
            ended_by=principal.owner,
        )
        ended = self._repo.end(
            session.id,
            ended_at=ended_at,
            end_snapshot_json=end_snapshot.model_dump_json(),
            summary=summary,
            handoff=markdown,
        )
        if ended is None:  # ended by another process meanwhile
            raise NoActiveSessionError(working_directory)
        logger.info("session %s ended by %s", session.id, principal.owner)
        return HandOff(
            session=self._session_info(ended, checkpoint_count=len(checkpoints)),
            summary=summary,
            checkpoints=checkpoints,
            commits_during_session=commits,
            ended_by=principal.owner,
            markdown=markdown,
        )

    # -- reports --------------------------------------------------------------------

    def status(self, principal: Principal, working_directory: str) -> SessionStatus:
        """Whether the caller (or, for privileged callers, anyone) has a session here.

        The caller's own session is read with its last checkpoint in one query: status is
        the call clients poll, and on PostgreSQL each query is a round trip.
        """
        path = self._resolve(working_directory)
        found = self._repo.active_with_last_checkpoint(principal.owner, str(path))
        if found is None and (anyone := self._anyones(principal, path)) is not None:
            found = anyone, self._repo.last_checkpoint(anyone.id)
        if found is None:
            return SessionStatus(
                active=False,
                session=None,
                message=(
                    f"No active session for {shorten(working_directory)}; call start_session "
                    "to begin one."
                ),
            )
        session, last = found
        owner = "" if session.user_id == principal.owner else f" of user {session.user_id}"
        return SessionStatus(
            active=True,
            # The last checkpoint's number is its session's checkpoint count.
            session=self._session_info(session, checkpoint_count=last.number if last else 0),
            last_checkpoint=None if last is None else _checkpoint_info(last, session),
            message=f"Session{owner} active in '{session.project_name}'.",
        )

    def list_sessions(
        self,
        principal: Principal,
        working_directory: str | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> SessionList:
        """The caller's sessions (every user's for privileged callers), newest first."""
        project = None if working_directory is None else str(self._resolve(working_directory))
        user = None if principal.is_privileged else principal.owner
        return self._list(user, project, limit)

    def list_all(
        self, limit: int = DEFAULT_LIST_LIMIT, working_directory: str | None = None
    ) -> SessionList:
        """Every user's sessions, for the local operator's CLI; never expose it to callers
        identified by a token (use :meth:`list_sessions`)."""
        project = None if working_directory is None else str(self._resolve(working_directory))
        return self._list(None, project, limit)

    def get_session(self, principal: Principal, session_id: str) -> SessionDetail:
        """One session with its checkpoints and hand-off, if the caller may see it."""
        record = self._repo.get(session_id) if _is_session_id(session_id) else None
        if record is None or not (principal.is_privileged or record.user_id == principal.owner):
            raise SessionNotFoundError(session_id)
        checkpoints = [
            _checkpoint_info(checkpoint, record) for checkpoint in self._repo.checkpoints(record.id)
        ]
        return SessionDetail(
            session=self._session_info(record, checkpoint_count=len(checkpoints)),
            checkpoints=checkpoints,
            summary=record.summary,
            handoff_markdown=record.handoff,
        )

    # -- helpers --------------------------------------------------------------------

    def _resolve(self, working_directory: str) -> Path:
        return resolve_working_directory(working_directory, self._allowed_roots)

    def _snapshot(self, path: Path) -> ProjectSnapshot:
        return detect_project(path, git=self._git, git_timeout=self._git_timeout)

    def _find_target(self, principal: Principal, path: Path) -> SessionRecord | None:
        own = self._repo.active_for_user(principal.owner, str(path))
        return own if own is not None else self._anyones(principal, path)

    def _anyones(self, principal: Principal, path: Path) -> SessionRecord | None:
        """When the caller has no session here: the latest active one of any user, for a
        privileged caller only."""
        if not principal.is_privileged:
            return None
        return self._repo.latest_active_for_project(str(path))

    def _target(self, principal: Principal, path: Path, as_named: str) -> SessionRecord:
        """The session a change applies to; the refusal names the path ``as_named`` by the
        caller, never where it resolved to."""
        session = self._find_target(principal, path)
        if session is None:
            raise NoActiveSessionError(as_named)
        return session

    def _list(self, user_id: str | None, project_path: str | None, limit: int) -> SessionList:
        records, total = self._repo.list_sessions(
            user_id=user_id, project_path=project_path, limit=clamp_limit(limit)
        )
        counts = self._repo.checkpoint_counts([record.id for record in records])
        return SessionList(
            sessions=[
                self._session_info(record, checkpoint_count=counts.get(record.id, 0))
                for record in records
            ],
            total=total,
        )

    def _session_info(
        self,
        record: SessionRecord,
        *,
        created: bool = False,
        checkpoint_count: int | None = None,
    ) -> SessionInfo:
        if checkpoint_count is None:
            checkpoint_count = self._repo.checkpoint_counts([record.id]).get(record.id, 0)
        until = record.ended_at if record.ended_at is not None else self._clock()
        return SessionInfo(
            id=record.id,
            user_id=record.user_id,
            project_path=record.project_path,
            project_name=record.project_name,
            started_at=iso_time(record.started_at),
            ended_at=None if record.ended_at is None else iso_time(record.ended_at),
            active=record.active,
            duration_seconds=max(0.0, until - record.started_at),
            snapshot=_load_snapshot(record.snapshot_json, record),
            checkpoint_count=checkpoint_count,
            created=created,
        )


def _checkpoint_info(record: CheckpointRecord, session: SessionRecord) -> CheckpointInfo:
    return CheckpointInfo(
        session_id=record.session_id,
        number=record.number,
        note=record.note,
        created_at=iso_time(record.created_at),
        elapsed_seconds=max(0.0, record.created_at - session.started_at),
        commits_since_previous=record.commits_since_previous,
        changed_files=record.changed_files,
        snapshot=_load_snapshot(record.snapshot_json, session),
    )


def _load_snapshot(text: str, session: SessionRecord | None = None) -> ProjectSnapshot:
    """A stored snapshot; an unreadable one (hand-edited row) degrades to a bare one."""
    try:
        return ProjectSnapshot.model_validate_json(text)
    except ValidationError:
        logger.warning("unreadable project snapshot in session %s", session and session.id)
        return ProjectSnapshot(
            path=session.project_path if session else "",
            name=session.project_name if session else "",
            name_source="directory",
            markers=ProjectMarkers(),
            git=GitSnapshot(note="snapshot unreadable"),
        )
