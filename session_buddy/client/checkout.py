"""What a caller reports about a project that is not on the server's disk, read from a clone.

A caller on another machine names its project by id and reports its own checkout's
branch, commit and changed files (a :class:`~session_buddy.sessions.target.ReportedProject`).
:func:`describe_checkout` reads all four from a local clone with the same read-only git
rules the server uses, and normalises the id here, so credentials in the clone's
``origin`` URL never leave this machine.
"""

from __future__ import annotations

from pathlib import Path

from session_buddy.client.errors import SessionBuddyError
from session_buddy.sessions.errors import InvalidProjectError
from session_buddy.sessions.git import IDENTITY_KEY, configured_identity, git_snapshot
from session_buddy.sessions.target import ReportedProject


def describe_checkout(path: str | Path) -> ReportedProject:
    """The project id (its ``session-buddy.project`` setting, else its ``origin`` URL,
    normalised and without credentials), branch, commit and changed-file count of the git
    work tree whose top directory is ``path``.

    :class:`SessionBuddyError` when ``path`` is not such a directory or has no usable id.
    """
    directory = Path(path).expanduser().resolve()
    configured = configured_identity(directory)
    if configured is None:
        raise SessionBuddyError(
            f"{directory} has no project id: it is not the top directory of a git work tree "
            f"with a remote 'origin' or a {IDENTITY_KEY} setting; pass project= yourself"
        )
    git = git_snapshot(directory)
    try:
        return ReportedProject.parse(configured, git.branch, git.commit, git.changed_files)
    except InvalidProjectError as exc:
        raise SessionBuddyError(f"{directory}: {exc}") from None
