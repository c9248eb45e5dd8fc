"""Which project a call is about: a directory on this server, or a project the caller reports.

Every session tool names its project in exactly one of two ways:

* ``working_directory``: an absolute directory on the server's disk, which the server
  inspects itself (manifest, markers, git);
* ``project``: a project id (see :mod:`~session_buddy.sessions.identity`) for a project
  that is not on the server's disk, with the ``branch``, ``commit`` and ``changed_files``
  the caller reports about its own checkout.

:func:`choose_project` enforces that rule and returns a working directory (``str``, checked
later by the path policy) or a :class:`ReportedProject`. A caller-reported state makes no
sense beside a directory the server reads itself, so it is refused there.
"""

from __future__ import annotations

from dataclasses import dataclass

from session_buddy.sessions.errors import InvalidProjectError
from session_buddy.sessions.identity import (
    ProjectId,
    parse_branch,
    parse_changed_files,
    parse_commit,
    parse_project_id,
)

NAME_THE_PROJECT = (
    "pass working_directory (a directory on this server) or project (a project id such as "
    "its git remote URL)"
)


@dataclass(frozen=True, slots=True)
class ReportedProject:
    """A project named by its id, with the state its caller reports (all optional)."""

    project: ProjectId
    branch: str | None = None
    commit: str | None = None
    changed_files: int | None = None

    @classmethod
    def parse(
        cls,
        project: object,
        branch: object = None,
        commit: object = None,
        changed_files: object = None,
    ) -> ReportedProject:
        """Each part checked and normalised; InvalidProjectError naming the first bad one."""
        return cls(
            parse_project_id(project),
            parse_branch(branch),
            parse_commit(commit),
            parse_changed_files(changed_files),
        )

    @property
    def id(self) -> str:
        return self.project.value


Target = str | ReportedProject
"""A working directory on this server, or a reported project."""


def choose_project(
    working_directory: str | None,
    project: str | None,
    *,
    branch: str | None = None,
    commit: str | None = None,
    changed_files: int | None = None,
) -> Target:
    """The one project the arguments name; InvalidProjectError when they name none, both,
    or report a branch, commit or changed-file count beside a working directory.

    An empty string counts as not given (some clients fill every optional argument).
    """
    working_directory, project, branch, commit = (
        None if value == "" else value for value in (working_directory, project, branch, commit)
    )
    if working_directory is not None and project is not None:
        raise InvalidProjectError(
            "pass either working_directory or project, not both", "working_directory"
        )
    if project is not None:
        return ReportedProject.parse(project, branch, commit, changed_files)
    if working_directory is None:
        raise InvalidProjectError(f"no project named; {NAME_THE_PROJECT}", "working_directory")
    reported = [
        name
        for name, value in (
            ("branch", branch),
            ("commit", commit),
            ("changed_files", changed_files),
        )
        if value is not None
    ]
    if reported:
        raise InvalidProjectError(
            f"{' and '.join(reported)} describe a project named by project id; with "
            "working_directory the server reads them from git itself",
            reported[0],
        )
    return working_directory


def choose_filter(working_directory: str | None, project: str | None) -> Target | None:
    """The project a listing is limited to (None: every project); never both."""
    if working_directory is None and project is None:
        return None
    return choose_project(working_directory, project)
