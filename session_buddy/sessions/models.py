"""What the session layer returns: pydantic models, each able to describe itself in prose.

The MCP layer returns these as structured output and shows ``summary_text()`` as the text
content; the CLI prints the same text. Times are ISO 8601 strings in UTC.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from session_buddy.text import format_duration, plural, shorten

NOTE_PREVIEW_CHARS = 200

NameSource = Literal["pyproject.toml", "package.json", "Cargo.toml", "directory", "project id"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Result(_Model):
    """A tool's whole result. ``notices`` are things the caller should know that did not
    stop the call, e.g. that credentials were removed from the project URL it sent."""

    notices: list[str] = []

    def _with_notices(self, text: str) -> str:
        return " ".join([text, *self.notices])


class ProjectMarkers(_Model):
    """Which conventional project files exist at the top of the project directory."""

    readme: bool = False
    tests: bool = False
    ci: bool = False
    lock_file: bool = False
    docs: bool = False
    license: bool = False

    def present(self) -> list[str]:
        labels = {
            "readme": "README",
            "tests": "tests",
            "ci": "CI config",
            "lock_file": "lock file",
            "docs": "docs",
            "license": "license",
        }
        return [label for field, label in labels.items() if getattr(self, field)]


class GitSnapshot(_Model):
    """The repository state at one moment; fields are None when git could not tell.

    ``note`` says why information is missing (git not installed, not a repository, no
    commits yet, timeout). ``branch`` is None on a detached HEAD while ``commit`` is set.
    ``changed_files`` counts ``git status --porcelain`` entries under the project directory.
    ``reported`` is True when the caller reported branch, commit and changed files (a
    project named by id): the server ran no git for them.
    """

    git_available: bool = False
    is_git_repo: bool = False
    branch: str | None = None
    commit: str | None = None
    changed_files: int | None = None
    note: str | None = None
    reported: bool = False

    def describe(self) -> str:
        if self.reported:
            return self._describe_reported()
        if not self.is_git_repo or self.commit is None:
            return self.note or "no git information"
        where = f"branch {self.branch}" if self.branch else "detached HEAD"
        text = f"{where} at {self.commit[:12]}"
        if self.changed_files is not None:
            text += f", {plural(self.changed_files, 'changed file')}"
        return text

    def _describe_reported(self) -> str:
        facts = []
        if self.branch:
            facts.append(f"branch {self.branch}")
        if self.commit:
            facts.append(f"at {self.commit[:12]}")
        text = " ".join(facts)
        if self.changed_files is not None:
            changed = plural(self.changed_files, "changed file")
            text = f"{text}, {changed}" if text else changed
        return f"{text} (reported)" if text else "no git state reported"


class ProjectSnapshot(_Model):
    """What a project looked like when a session started, checkpointed or ended.

    For a directory on this server: its ``path``, markers and git state as read there. For
    a project named by id: ``path`` and ``markers`` are None (nothing was inspected) and
    ``git`` holds what the caller reported. ``project_id`` is the project's id when known.
    """

    path: str | None
    name: str
    name_source: NameSource
    markers: ProjectMarkers | None
    git: GitSnapshot
    project_id: str | None = None


class SessionInfo(_Result):
    """One session. ``created`` is True only in the result of the call that started it.

    ``project_path`` is the server directory of a session started with a working
    directory (None for one started with a project id); ``project_id`` is the project's
    id — given by the caller, or the directory's own (its git remote ``origin``) — or None.
    """

    id: str
    user_id: str
    project_path: str | None
    project_id: str | None = None
    project_name: str
    started_at: str
    ended_at: str | None
    active: bool
    duration_seconds: float
    snapshot: ProjectSnapshot
    checkpoint_count: int
    created: bool = False

    def summary_text(self) -> str:
        if self.created:
            opening = f"Started session {self.id}"
        elif self.active:
            opening = f"Active session {self.id}"
        else:
            opening = f"Session {self.id} (ended {self.ended_at})"
        span = "running" if self.active else "lasted"
        return self._with_notices(
            f"{opening} for project '{self.project_name}' {self.where()}, "
            f"user {self.user_id}; started {self.started_at}, "
            f"{span} {format_duration(self.duration_seconds)}; "
            f"{plural(self.checkpoint_count, 'checkpoint')}; "
            f"at start: {self.snapshot.git.describe()}."
        )

    def where(self) -> str:
        """``at /path``, ``at /path (id)`` or ``(id)``: how the session names its project."""
        if self.project_path is None:
            return f"({self.project_id})"
        if self.project_id is None:
            return f"at {self.project_path}"
        return f"at {self.project_path} ({self.project_id})"


class CheckpointInfo(_Result):
    """One checkpoint; ``number`` counts from 1 within its session."""

    session_id: str
    number: int
    note: str | None
    created_at: str
    elapsed_seconds: float
    commits_since_previous: int | None
    changed_files: int | None
    snapshot: ProjectSnapshot

    def summary_text(self) -> str:
        text = (
            f"Checkpoint {self.number} of session {self.session_id} at {self.created_at}, "
            f"{format_duration(self.elapsed_seconds)} into the session"
        )
        if self.note:
            text += f": {shorten(self.note, NOTE_PREVIEW_CHARS)}"
        parts = []
        if self.commits_since_previous is not None:
            since = "the previous checkpoint" if self.number > 1 else "the session start"
            parts.append(f"{plural(self.commits_since_previous, 'commit')} since {since}")
        if self.changed_files is not None:
            parts.append(f"{plural(self.changed_files, 'changed file')}")
        if not parts:
            parts.append(self.snapshot.git.describe())
        return self._with_notices(f"{text}. " + "; ".join(parts) + ".")


class HandOff(_Result):
    """The result of ending a session: its final state and a Markdown hand-off document."""

    session: SessionInfo
    summary: str | None
    checkpoints: list[CheckpointInfo]
    commits_during_session: int | None
    ended_by: str
    markdown: str

    def summary_text(self) -> str:
        text = (
            f"Ended session {self.session.id} for project '{self.session.project_name}' "
            f"after {format_duration(self.session.duration_seconds)} with "
            f"{plural(len(self.checkpoints), 'checkpoint')}"
        )
        if self.commits_during_session is not None:
            text += f" and {plural(self.commits_during_session, 'commit')}"
        return self._with_notices(f"{text}.")


class SessionStatus(_Result):
    """Whether a session is active in a project, and which one."""

    active: bool
    session: SessionInfo | None
    last_checkpoint: CheckpointInfo | None = None
    message: str

    def summary_text(self) -> str:
        if self.session is None:
            return self._with_notices(self.message)
        text = f"{self.message} {self.session.summary_text()}"
        if self.last_checkpoint is not None:
            text += f" Last checkpoint: {self.last_checkpoint.summary_text()}"
        return self._with_notices(text)


class SessionList(_Result):
    """Sessions newest first; ``total`` counts all that matched, ``sessions`` is capped."""

    sessions: list[SessionInfo]
    total: int

    def summary_text(self) -> str:
        if not self.sessions:
            return self._with_notices("No sessions found.")
        items = "; ".join(
            f"{info.id[:8]} '{info.project_name}' by {info.user_id}, started "
            f"{info.started_at}, " + ("active" if info.active else f"ended {info.ended_at}")
            for info in self.sessions
        )
        shown = len(self.sessions)
        count = (
            f"{shown} of {self.total} sessions"
            if shown < self.total
            else (plural(shown, "session"))
        )
        return self._with_notices(f"{count}: {items}.")


class SessionDetail(_Model):
    """Everything stored about one session, for ``session-buddy sessions show ID``."""

    session: SessionInfo
    checkpoints: list[CheckpointInfo]
    summary: str | None
    handoff_markdown: str | None

    def summary_text(self) -> str:
        text = self.session.summary_text()
        if self.summary:
            text += f" Summary: {shorten(self.summary, NOTE_PREVIEW_CHARS)}"
        return text
