"""Which project a working directory is, and what state it is in, read without side effects.

:func:`detect_project` composes the three readers: the name from
:mod:`~session_buddy.sessions.manifests`, the conventional files from
:mod:`~session_buddy.sessions.markers` and the repository state from
:mod:`~session_buddy.sessions.git`. None of them changes the process's working directory
or writes anything into the project. The path it is given should come from
:func:`~session_buddy.sessions.paths.resolve_working_directory`.

:func:`directory_identity` is the project id of such a directory (see DESIGN.md, "project
identity"); :func:`reported_snapshot` the snapshot of a project named by id, made of what
its caller reported.
"""

from __future__ import annotations

import logging
from pathlib import Path

from session_buddy.sessions.errors import InvalidProjectError
from session_buddy.sessions.git import GIT_TIMEOUT_SECONDS, configured_identity, git_snapshot
from session_buddy.sessions.identity import parse_project_id
from session_buddy.sessions.manifests import project_name
from session_buddy.sessions.markers import scan_markers
from session_buddy.sessions.models import GitSnapshot, ProjectSnapshot
from session_buddy.sessions.target import ReportedProject

logger = logging.getLogger(__name__)


def detect_project(
    path: Path,
    *,
    git: str = "git",
    git_timeout: float = GIT_TIMEOUT_SECONDS,
    project_id: str | None = None,
) -> ProjectSnapshot:
    """A snapshot of the project at ``path`` (a directory from resolve_working_directory),
    carrying ``project_id`` when the caller knows it.

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
        project_id=project_id,
    )


def directory_identity(
    path: Path, *, git: str = "git", git_timeout: float = GIT_TIMEOUT_SECONDS
) -> str | None:
    """The project id of the directory ``path``: the normalised ``session-buddy.project``
    setting or ``origin`` URL of the repository whose top directory it is (credentials in
    that URL are dropped); None when it has neither, or the value is not a usable id."""
    configured = configured_identity(path, git=git, timeout=git_timeout)
    if configured is None:
        return None
    try:
        return parse_project_id(configured).value
    except InvalidProjectError as exc:
        logger.info("no project id for %s: its git configuration gives none usable (%s)", path, exc)
        return None


def reported_snapshot(reported: ReportedProject) -> ProjectSnapshot:
    """The snapshot of a project named by id: only what its caller reported."""
    return ProjectSnapshot(
        path=None,
        name=reported.project.name,
        name_source="project id",
        markers=None,
        git=GitSnapshot(
            reported=True,
            is_git_repo=reported.branch is not None or reported.commit is not None,
            branch=reported.branch,
            commit=reported.commit,
            changed_files=reported.changed_files,
        ),
        project_id=reported.id,
    )
