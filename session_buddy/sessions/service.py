"""Session rules: lifecycle, ownership, project identity and what each call records. No
MCP knowledge.

Every method takes the caller's :class:`Principal` first; the identity never comes from
the request. A user sees and changes only their own sessions. A privileged principal
(role ``admin`` or ``orchestrator``) acts on its own active session in a project when it
has one, otherwise on the most recently started active session of any user there, and
lists every user's sessions.

A call names its project by a directory on this server or by a project id
(:mod:`~session_buddy.sessions.target`). Which session that is — the rule of project
identity:

* a directory's session is the caller's active session started in that directory, else
  the caller's active session started with the directory's project id (the normalised
  ``session-buddy.project`` setting or ``origin`` URL of the repository whose top
  directory it is, read when needed);
* a project id's session is the caller's active session started with that id, else the
  caller's active session started in a directory whose project id it was when that
  session started; of several such directories (two clones), the one whose checked-out
  branch is the reported branch, and otherwise :class:`AmbiguousProjectError`;
* two directories never share a session, and a session keeps the project id it started
  with (a remote renamed later does not move it).

Errors are :class:`~session_buddy.sessions.errors.SessionError` subclasses with a
user-facing message, or :class:`~session_buddy.store.StorageError` when the database
file itself cannot be used.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from session_buddy.auth.principal import Principal
from session_buddy.sessions.errors import (
    AmbiguousProjectError,
    InputTooLargeError,
    NoActiveSessionError,
    SessionNotFoundError,
    UnstorableTextError,
)
from session_buddy.sessions.git import GIT_TIMEOUT_SECONDS, count_commits, current_branch
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
from session_buddy.sessions.project import detect_project, directory_identity, reported_snapshot
from session_buddy.sessions.target import ReportedProject, Target
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
    """``value`` if within the size limit (blank means none) and storable by every backend;
    else InputTooLargeError or UnstorableTextError (never a storage failure later)."""
    if value is None:
        return None
    if len(value) > MAX_TEXT_CHARS:
        raise InputTooLargeError(field, len(value), MAX_TEXT_CHARS)
    match = _UNSTORABLE.search(value)
    if match is not None:
        raise UnstorableTextError(field, match.group(), match.start())
    return value if value.strip() else None


# NUL (PostgreSQL's text type refuses it) and lone surrogates (no database encodes them).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _is_session_id(value: str) -> bool:
    return len(value) == 32 and all(ch in "0123456789abcdef" for ch in value)


_UNREAD = object()


@dataclasses.dataclass(slots=True)
class _Place:
    """A project as a call names it: a checked directory on this server, or a reported
    project; the directory's project id is read from git once, when first needed."""

    path: Path | None = None
    reported: ReportedProject | None = None
    directory_id: object = _UNREAD
    as_named: str = ""
    """The directory as the caller spelled it: messages name it so, never where it resolved
    to (no symlink target or server directory leaks through a refusal)."""

    @property
    def shown(self) -> str:
        """The project for messages: its directory as named, or ``project <id>``."""
        if self.reported is not None:
            return f"project {self.reported.id}"
        return shorten(self.as_named or str(self.path))


def _notices(place: _Place) -> list[str]:
    """What the caller must know about the project id it sent (removed credentials…)."""
    if place.reported is None or not place.reported.project.removed:
        return []
    removed = " and ".join(place.reported.project.removed)
    return [f"Removed from the project URL and stored nowhere: {removed}; send it without them."]


class SessionService:
    """Starts, checkpoints, ends and reports coding sessions stored in ``db``.

    ``allowed_roots`` limits which directories may be projects (empty: any). ``clock``
    returns Unix time; tests pass a fixed one. ``git`` and ``git_timeout`` say how to run
    git for project snapshots.

    Each call takes its project as a :data:`~session_buddy.sessions.target.Target`: a
    working directory (``str``) or a :class:`ReportedProject`.
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

    def start(self, principal: Principal, project: Target) -> SessionInfo:
        """Start a session in the project, or return the caller's active one there.

        The result's ``created`` is True only when this call started the session.
        """
        place = self._locate(project)
        existing = self._own(principal, place)
        if existing is not None:
            return self._session_info(existing, notices=_notices(place))
        if place.path is not None:
            project_id = self._directory_id(place)
            snapshot = detect_project(
                place.path, git=self._git, git_timeout=self._git_timeout, project_id=project_id
            )
        else:
            assert place.reported is not None
            project_id = place.reported.id
            snapshot = reported_snapshot(place.reported)
        record = SessionRecord(
            id=uuid.uuid4().hex,
            user_id=principal.user_id,
            project_path=None if place.path is None else str(place.path),
            project_id=project_id,
            project_name=snapshot.name,
            started_at=self._clock(),
            ended_at=None,
            snapshot_json=snapshot.model_dump_json(),
        )
        stored, created = self._repo.create_or_get_active(record)
        if created:
            logger.info("session %s started by %s in %s", stored.id, stored.user_id, place.shown)
        return self._session_info(stored, created=created, notices=_notices(place))

    def checkpoint(
        self, principal: Principal, project: Target, note: str | None = None
    ) -> CheckpointInfo:
        """Record the project's state (and an optional note) in the active session."""
        note = _bounded_text("note", note)
        place = self._locate(project)
        session = self._target(principal, place)
        snapshot = self._snapshot(place)
        previous = self._repo.last_checkpoint(session.id)
        before = _load_snapshot(previous.snapshot_json if previous else session.snapshot_json)
        commits = self._count_commits(place, session, before.git.commit, snapshot.git.commit)
        record = self._repo.add_checkpoint(
            session.id,
            created_at=self._clock(),
            note=note,
            snapshot_json=snapshot.model_dump_json(),
            commits_since_previous=commits,
            changed_files=snapshot.git.changed_files,
        )
        if record is None:  # ended by another process meanwhile
            raise NoActiveSessionError(place.shown)
        return _checkpoint_info(record, session).model_copy(update={"notices": _notices(place)})

    def end(self, principal: Principal, project: Target, summary: str | None = None) -> HandOff:
        """End the active session and return (and store) its Markdown hand-off."""
        summary = _bounded_text("summary", summary)
        place = self._locate(project)
        session = self._target(principal, place)
        end_snapshot = self._snapshot(place)
        start_snapshot = _load_snapshot(session.snapshot_json)
        commits = self._count_commits(
            place, session, start_snapshot.git.commit, end_snapshot.git.commit
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
            ended_by=principal.user_id,
        )
        ended = self._repo.end(
            session.id,
            ended_at=ended_at,
            end_snapshot_json=end_snapshot.model_dump_json(),
            summary=summary,
            handoff=markdown,
        )
        if ended is None:  # ended by another process meanwhile
            raise NoActiveSessionError(place.shown)
        logger.info("session %s ended by %s", session.id, principal.user_id)
        return HandOff(
            session=self._session_info(ended, checkpoint_count=len(checkpoints)),
            summary=summary,
            checkpoints=checkpoints,
            commits_during_session=commits,
            ended_by=principal.user_id,
            markdown=markdown,
            notices=_notices(place),
        )

    # -- reports --------------------------------------------------------------------

    def status(self, principal: Principal, project: Target) -> SessionStatus:
        """Whether the caller (or, for privileged callers, anyone) has a session here.

        The caller's own session in a directory is read with its last checkpoint in one
        query: status is the call clients poll, and on PostgreSQL each query is a round
        trip.
        """
        place = self._locate(project)
        found = None
        if place.path is not None:
            found = self._repo.active_with_last_checkpoint(principal.user_id, str(place.path))
        if found is None:
            session = self._find(principal, place, directory_checked=place.path is not None)
            if session is not None:
                found = session, self._repo.last_checkpoint(session.id)
        if found is None:
            return SessionStatus(
                active=False,
                session=None,
                message=f"No active session for {place.shown}; call start_session to begin one.",
                notices=_notices(place),
            )
        session, last = found
        owner = "" if session.user_id == principal.user_id else f" of user {session.user_id}"
        return SessionStatus(
            active=True,
            # The last checkpoint's number is its session's checkpoint count.
            session=self._session_info(session, checkpoint_count=last.number if last else 0),
            last_checkpoint=None if last is None else _checkpoint_info(last, session),
            message=f"Session{owner} active in '{session.project_name}'.",
            notices=_notices(place),
        )

    def list_sessions(
        self,
        principal: Principal,
        project: Target | None = None,
        limit: int = DEFAULT_LIST_LIMIT,
    ) -> SessionList:
        """The caller's sessions (every user's for privileged callers), newest first;
        ``project`` limits them to one directory, or to one project id (sessions started
        with it, and those started in directories that had it)."""
        user = None if principal.is_privileged else principal.user_id
        return self._list(user, project, limit)

    def list_all(
        self, limit: int = DEFAULT_LIST_LIMIT, project: Target | None = None
    ) -> SessionList:
        """Every user's sessions, for the local operator's CLI; never expose it to callers
        identified by a token (use :meth:`list_sessions`)."""
        return self._list(None, project, limit)

    def get_session(self, principal: Principal, session_id: str) -> SessionDetail:
        """One session with its checkpoints and hand-off, if the caller may see it."""
        record = self._repo.get(session_id) if _is_session_id(session_id) else None
        if record is None or not (principal.is_privileged or record.user_id == principal.user_id):
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

    # -- finding the session ----------------------------------------------------------

    def _locate(self, project: Target) -> _Place:
        if isinstance(project, ReportedProject):
            if project.project.removed:
                logger.info(
                    "removed the %s from a project URL (%s)",
                    " and ".join(project.project.removed),
                    project.id,
                )
            return _Place(reported=project)
        return _Place(
            path=resolve_working_directory(project, self._allowed_roots), as_named=project
        )

    def _directory_id(self, place: _Place) -> str | None:
        if place.directory_id is _UNREAD:
            assert place.path is not None
            place.directory_id = directory_identity(
                place.path, git=self._git, git_timeout=self._git_timeout
            )
        return place.directory_id if isinstance(place.directory_id, str) else None

    def _own(
        self, principal: Principal, place: _Place, *, directory_checked: bool = False
    ) -> SessionRecord | None:
        """The caller's own active session of the project (see the module doc)."""
        user = principal.user_id
        if place.reported is not None:
            candidates = self._repo.active_with_project_id(user, place.reported.id)
            return self._choose(candidates, place.reported)
        assert place.path is not None
        if not directory_checked:
            own = self._repo.active_for_user(user, str(place.path))
            if own is not None:
                return own
        # Reading the directory's id costs git processes: only when it could matter.
        if not self._repo.has_active_project_sessions(user):
            return None
        project_id = self._directory_id(place)
        return None if project_id is None else self._repo.active_project_session(user, project_id)

    def _anyones(self, principal: Principal, place: _Place) -> SessionRecord | None:
        """When the caller has no session here: the latest active one of any user, for a
        privileged caller only."""
        if not principal.is_privileged:
            return None
        if place.reported is not None:
            found = self._repo.active_with_project_id(None, place.reported.id, limit=1)
            return found[0] if found else None
        assert place.path is not None
        latest = self._repo.latest_active_for_project(str(place.path))
        if latest is not None or not self._repo.has_active_project_sessions(None):
            return latest
        project_id = self._directory_id(place)
        return None if project_id is None else self._repo.active_project_session(None, project_id)

    def _find(
        self, principal: Principal, place: _Place, *, directory_checked: bool = False
    ) -> SessionRecord | None:
        own = self._own(principal, place, directory_checked=directory_checked)
        return own if own is not None else self._anyones(principal, place)

    def _target(self, principal: Principal, place: _Place) -> SessionRecord:
        session = self._find(principal, place)
        if session is None:
            raise NoActiveSessionError(place.shown)
        return session

    def _choose(
        self, candidates: Sequence[SessionRecord], reported: ReportedProject
    ) -> SessionRecord | None:
        """Of the caller's active sessions with the reported id (project sessions first):
        the project session, the only one, or the one whose directory has the reported
        branch checked out; AmbiguousProjectError otherwise."""
        if len(candidates) <= 1 or candidates[0].project_path is None:
            return candidates[0] if candidates else None
        branches = {
            session.id: current_branch(
                Path(session.project_path or ""), git=self._git, timeout=self._git_timeout
            )
            for session in candidates
        }
        if reported.branch is not None:
            matching = [s for s in candidates if branches[s.id] == reported.branch]
            if len(matching) == 1:
                return matching[0]
        raise AmbiguousProjectError(
            reported.id,
            [
                f"{session.project_path} on {branches[session.id] or 'a detached HEAD'}"
                for session in candidates
            ],
        )

    # -- recording --------------------------------------------------------------------

    def _snapshot(self, place: _Place) -> ProjectSnapshot:
        if place.reported is not None:
            return reported_snapshot(place.reported)
        assert place.path is not None
        return detect_project(place.path, git=self._git, git_timeout=self._git_timeout)

    def _count_commits(
        self, place: _Place, session: SessionRecord, old: str | None, new: str | None
    ) -> int | None:
        """Commits from ``old`` to ``new``, counted in a repository on this server: the
        directory named, else the session's own directory (a reported commit that
        repository does not have counts as unknown)."""
        where = place.path
        if where is None and session.project_path is not None:
            where = Path(session.project_path)
        if where is None:
            return None
        return count_commits(where, old, new, git=self._git, timeout=self._git_timeout)

    def _list(self, user_id: str | None, project: Target | None, limit: int) -> SessionList:
        place = None if project is None else self._locate(project)
        records, total = self._repo.list_sessions(
            user_id=user_id,
            project_path=None if place is None or place.path is None else str(place.path),
            project_id=None if place is None or place.reported is None else place.reported.id,
            limit=clamp_limit(limit),
        )
        counts = self._repo.checkpoint_counts([record.id for record in records])
        return SessionList(
            sessions=[
                self._session_info(record, checkpoint_count=counts.get(record.id, 0))
                for record in records
            ],
            total=total,
            notices=[] if place is None else _notices(place),
        )

    def _session_info(
        self,
        record: SessionRecord,
        *,
        created: bool = False,
        checkpoint_count: int | None = None,
        notices: list[str] | None = None,
    ) -> SessionInfo:
        if checkpoint_count is None:
            checkpoint_count = self._repo.checkpoint_counts([record.id]).get(record.id, 0)
        until = record.ended_at if record.ended_at is not None else self._clock()
        return SessionInfo(
            id=record.id,
            user_id=record.user_id,
            project_path=record.project_path,
            project_id=record.project_id,
            project_name=record.project_name,
            started_at=iso_time(record.started_at),
            ended_at=None if record.ended_at is None else iso_time(record.ended_at),
            active=record.active,
            duration_seconds=max(0.0, until - record.started_at),
            snapshot=_load_snapshot(record.snapshot_json, record),
            checkpoint_count=checkpoint_count,
            created=created,
            notices=notices or [],
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
            path=session.project_path if session else None,
            name=session.project_name if session else "",
            name_source="directory",
            markers=ProjectMarkers(),
            git=GitSnapshot(note="snapshot unreadable"),
        )
