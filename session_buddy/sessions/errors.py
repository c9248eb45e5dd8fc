"""Why a session request was refused: one class per reason, rooted in :class:`SessionError`.

``str(error)`` is a short, precise message a caller may see: it names the offending path
(shortened when long) or the size of the offending input, and never echoes large input.
``reason`` is a stable code the MCP layer and CLI may use for machine-readable error data.
"""

from __future__ import annotations

from session_buddy.text import shorten


class SessionError(Exception):
    """A session request could not be carried out."""

    reason = "session_error"


class InvalidWorkingDirectoryError(SessionError):
    """The working directory is unusable: relative, missing, not a directory, too long,
    contains NUL, or lies outside the allowed roots."""

    reason = "invalid_working_directory"

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class InvalidProjectError(SessionError):
    """The project is named wrongly: neither or both of a directory and a project id, or a
    project id, branch, commit or changed-file count that is malformed, too long or
    holds control characters. ``field`` is the argument at fault."""

    reason = "invalid_project"

    def __init__(self, message: str, field: str) -> None:
        self.field = field
        super().__init__(message)


class NoActiveSessionError(SessionError):
    """No active session exists (for this caller) in the project.

    ``project_path`` is the working directory as the caller named it, not where it resolved
    to: the message must not reveal a symlink's target.
    """

    reason = "no_active_session"

    def __init__(self, project: str) -> None:
        self.project = project
        super().__init__(f"No active session for {shorten(project)}; call start_session first")


class AmbiguousProjectError(SessionError):
    """Several of the caller's active sessions, in different directories of this server,
    belong to the project id, and the reported branch does not single one out."""

    reason = "ambiguous_project"

    def __init__(self, project_id: str, places: list[str]) -> None:
        self.project_id = project_id
        self.places = places
        shown = "; ".join(shorten(place, 120) for place in places[:5])
        super().__init__(
            f"{len(places)} of your active sessions belong to project {shorten(project_id)} "
            f"({shown}); pass the branch you are on, or name the session by its "
            "working_directory, or end the ones you no longer need"
        )


class InputTooLargeError(SessionError):
    """A note or summary is longer than the limit."""

    reason = "input_too_large"

    def __init__(self, field: str, size: int, limit: int) -> None:
        self.field = field
        self.size = size
        self.limit = limit
        super().__init__(f"{field} is {size:,} characters long; the limit is {limit:,}")


class UnstorableTextError(SessionError):
    """A note or summary holds a character no database can store: a NUL (PostgreSQL text
    cannot hold it) or a lone surrogate (not Unicode text at all). Other control characters
    are stored as sent and escaped wherever they are shown."""

    reason = "unstorable_text"

    def __init__(self, field: str, character: str, position: int) -> None:
        self.field = field
        self.position = position
        name = "NUL" if character == "\x00" else "a lone surrogate"
        super().__init__(
            f"{field} contains {name} (U+{ord(character):04X}) at position {position}, "
            "which cannot be stored; remove it"
        )


class SessionNotFoundError(SessionError):
    """No session with this id exists that the caller may see."""

    reason = "session_not_found"

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(f"No session {shorten(session_id, 64)} found")
