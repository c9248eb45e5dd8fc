"""What git says about a project, asked read-only and with a deadline.

:func:`git_snapshot`, :func:`count_commits`, :func:`current_branch` and
:func:`configured_identity` report a missing, failing or silent git as data (a ``note``,
None) rather than an exception. Every git process runs as
``git -C <path>`` with ``--no-optional-locks`` (so ``status`` never refreshes
``.git/index``), ``core.fsmonitor`` off (a repository's config must not run programs), no
terminal prompts, ``LC_ALL=C``, and without the ``GIT_*`` variables that would point it at
another repository. A git that does not answer within the timeout
(:data:`GIT_TIMEOUT_SECONDS` by default) is killed with its whole process group.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from session_buddy.config import child_environment
from session_buddy.sessions.models import GitSnapshot

GIT_TIMEOUT_SECONDS = 3.0

# Variables that would point git at another repository than the one at ``-C path``.
_GIT_REDIRECTING_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
)


class _GitUnavailable(Exception):
    """git gave no answer at all: not installed (``installed`` False) or timed out."""

    def __init__(self, message: str, *, installed: bool) -> None:
        self.installed = installed
        super().__init__(message)


def _git_environment() -> dict[str, str]:
    env = child_environment(without=_GIT_REDIRECTING_VARIABLES)
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def _run_git(git: str, path: Path, args: Sequence[str], timeout: float) -> str | None:
    """stdout of ``git -C path …`` when it exits 0, None when it fails."""
    command = [git, "-C", str(path), "--no-optional-locks", "-c", "core.fsmonitor=false", *args]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_git_environment(),
            start_new_session=True,
        )
    except OSError as exc:
        raise _GitUnavailable(
            f"git is not available ({exc.strerror or exc})", installed=False
        ) from None
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        raise _GitUnavailable(f"git did not answer within {timeout:g} s", installed=True) from None
    if process.returncode != 0:
        return None
    return stdout.decode("utf-8", errors="replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (OSError, AttributeError):
        process.kill()


def git_snapshot(
    path: Path, *, git: str = "git", timeout: float = GIT_TIMEOUT_SECONDS
) -> GitSnapshot:
    """Branch, HEAD commit and changed-file count of the repository containing ``path``."""
    try:
        inside = _run_git(git, path, ["rev-parse", "--is-inside-work-tree"], timeout)
        if inside is None or inside.strip() != "true":
            return GitSnapshot(git_available=True, note="not a git repository")
        branch = _run_git(git, path, ["symbolic-ref", "--quiet", "--short", "HEAD"], timeout)
        commit = _run_git(git, path, ["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], timeout)
        status = _run_git(
            git,
            path,
            ["status", "--porcelain=v1", "--untracked-files=normal", "--", "."],
            timeout,
        )
    except _GitUnavailable as exc:
        return GitSnapshot(git_available=exc.installed, note=str(exc))
    return GitSnapshot(
        git_available=True,
        is_git_repo=True,
        branch=(branch or "").strip() or None,
        commit=(commit or "").strip() or None,
        changed_files=None if status is None else len(status.splitlines()),
        note=None if commit else "no commits yet",
    )


def current_branch(
    path: Path, *, git: str = "git", timeout: float = GIT_TIMEOUT_SECONDS
) -> str | None:
    """The branch checked out at ``path``; None on a detached HEAD, outside git, or when
    git cannot answer."""
    try:
        out = _run_git(git, path, ["symbolic-ref", "--quiet", "--short", "HEAD"], timeout)
    except _GitUnavailable:
        return None
    return (out or "").strip() or None


IDENTITY_KEY = "session-buddy.project"
_ORIGIN_KEY = "remote.origin.url"


def configured_identity(
    path: Path, *, git: str = "git", timeout: float = GIT_TIMEOUT_SECONDS
) -> str | None:
    """What the repository says its project id is, unnormalised: its local
    ``session-buddy.project`` setting, else the URL of its remote ``origin``.

    Only the top directory of a work tree has one (a subdirectory of a repository is not the
    repository's project); None there, outside git, or when git cannot answer.
    """
    try:
        top = _run_git(git, path, ["rev-parse", "--show-toplevel"], timeout)
        if top is None or not top.strip() or Path(top.strip()).resolve() != path.resolve():
            return None
        pattern = f"^({re.escape(IDENTITY_KEY)}|{re.escape(_ORIGIN_KEY)})$"
        out = _run_git(git, path, ["config", "--local", "--null", "--get-regexp", pattern], timeout)
    except (_GitUnavailable, OSError):
        return None
    values: dict[str, str] = {}
    for entry in (out or "").split("\0"):
        key, _, value = entry.partition("\n")
        values[key.lower()] = value  # the last of a repeated key, as `git config --get` reads it
    return values.get(IDENTITY_KEY) or values.get(_ORIGIN_KEY) or None


def _is_sha(value: str | None) -> bool:
    return (
        value is not None
        and 4 <= len(value) <= 64
        and all(ch in "0123456789abcdef" for ch in value)
    )


def count_commits(
    path: Path,
    old: str | None,
    new: str | None,
    *,
    git: str = "git",
    timeout: float = GIT_TIMEOUT_SECONDS,
) -> int | None:
    """Commits reachable from ``new`` but not ``old`` (``git rev-list --count old..new``).

    None when either sha is unknown or git cannot answer (e.g. ``old`` was garbage-collected).
    """
    if not _is_sha(old) or not _is_sha(new):
        return None
    if old == new:
        return 0
    try:
        out = _run_git(git, path, ["rev-list", "--count", f"{old}..{new}", "--"], timeout)
    except _GitUnavailable:
        return None
    if out is None:
        return None
    try:
        return int(out.strip())
    except ValueError:
        return None
