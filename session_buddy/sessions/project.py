"""Which project a working directory is, and what state it is in, read without side effects.

:func:`detect_project` composes the three readers: the name from
:mod:`~session_buddy.sessions.manifests`, the conventional files from
:mod:`~session_buddy.sessions.markers` and the repository state from
:mod:`~session_buddy.sessions.git`. None of them changes the process's working directory
or writes anything into the project. The path it is given should come from
:func:`~session_buddy.sessions.paths.resolve_working_directory`.
"""

from __future__ import annotations

from pathlib import Path

from session_buddy.sessions.git import GIT_TIMEOUT_SECONDS, git_snapshot
from session_buddy.sessions.manifests import project_name
from session_buddy.sessions.markers import scan_markers
from session_buddy.sessions.models import ProjectSnapshot


def detect_project(
    path: Path, *, git: str = "git", git_timeout: float = GIT_TIMEOUT_SECONDS
) -> ProjectSnapshot:
    """A snapshot of the project at ``path`` (a directory from resolve_working_directory).

    Never raises for a malformed manifest or a missing/broken git: the name falls back to
    the directory name and git fields to None.
    """
    name, source = project_name(path)
    return ProjectSnapshot(
        path=str(path),
        name=name,
        name_source=source,
        markers=scan_markers(path),
        git=git_snapshot(path, git=git, timeout=git_timeout),
    )
