"""Which project a working directory is, and what state it is in, read without side effects.

:func:`resolve_working_directory` turns the caller's string into a trusted absolute path.
:func:`detect_project` reads a few top-level files and asks ``git`` about the repository.
Neither changes the process's working directory nor writes anything into the project:
git runs with ``--no-optional-locks`` (so ``status`` never refreshes ``.git/index``),
``core.fsmonitor`` off (a repository's config must not run programs), no prompts, and a
timeout after which the git process group is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tomllib
from collections.abc import Sequence
from pathlib import Path

from session_buddy.sessions.errors import InvalidWorkingDirectoryError
from session_buddy.sessions.models import (
    GitSnapshot,
    NameSource,
    ProjectMarkers,
    ProjectSnapshot,
)
from session_buddy.text import shorten

MAX_PATH_CHARS = 4096
GIT_TIMEOUT_SECONDS = 3.0
MAX_MANIFEST_BYTES = 1_000_000
MAX_NAME_CHARS = 200
MAX_LISTED_ENTRIES = 5_000

README_PREFIXES = ("readme",)
LICENSE_PREFIXES = ("license", "licence", "copying")
TEST_DIRS = frozenset({"tests", "test", "spec", "specs", "__tests__"})
DOC_DIRS = frozenset({"docs", "doc", "documentation"})
CI_FILES = frozenset(
    {
        ".gitlab-ci.yml",
        ".ci",
        "jenkinsfile",
        ".circleci",
        ".travis.yml",
        "azure-pipelines.yml",
        "bitbucket-pipelines.yml",
        ".drone.yml",
        ".woodpecker.yml",
        ".woodpecker",
        ".buildkite",
    }
)
LOCK_FILES = frozenset(
    {
        "uv.lock",
        "poetry.lock",
        "pdm.lock",
        "pipfile.lock",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lock",
        "bun.lockb",
        "cargo.lock",
        "go.sum",
        "gemfile.lock",
        "composer.lock",
        "flake.lock",
    }
)

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


def resolve_working_directory(raw: str, allowed_roots: Sequence[Path] = ()) -> Path:
    """The real absolute directory ``raw`` names, or :class:`InvalidWorkingDirectoryError`.

    ``raw`` must be absolute, at most 4096 characters, without NUL, and name an existing
    directory; symlinks are resolved before the allowed-roots check, so a link cannot lead
    out of the roots. With no roots configured, any directory is allowed.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidWorkingDirectoryError(
            "working_directory is empty; pass the absolute path of the project directory"
        )
    if len(raw) > MAX_PATH_CHARS:
        raise InvalidWorkingDirectoryError(
            f"working directory is {len(raw):,} characters long; the limit is "
            f"{MAX_PATH_CHARS:,} ({shorten(raw)})",
            raw,
        )
    if "\x00" in raw:
        raise InvalidWorkingDirectoryError(
            f"working directory contains a NUL character: {shorten(raw)}", raw
        )
    candidate = Path(raw)
    if not candidate.is_absolute():
        raise InvalidWorkingDirectoryError(
            f"working directory must be an absolute path, got {shorten(raw)}", raw
        )
    # The allow-list first, so paths outside it reveal nothing (exists? a directory?).
    if allowed_roots:
        _require_within_roots(raw, _resolve(candidate, raw, strict=False), allowed_roots)
    resolved = _resolve(candidate, raw, strict=True)
    if not resolved.is_dir():
        raise InvalidWorkingDirectoryError(
            f"working directory {shorten(raw)} is not a directory", raw
        )
    if allowed_roots:  # the strict resolution may differ (a link created meanwhile)
        _require_within_roots(raw, resolved, allowed_roots)
    return resolved


def _resolve(candidate: Path, raw: str, *, strict: bool) -> Path:
    try:
        return candidate.resolve(strict=strict)
    except FileNotFoundError:
        raise InvalidWorkingDirectoryError(
            f"working directory {shorten(raw)} does not exist", raw
        ) from None
    except (OSError, RuntimeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidWorkingDirectoryError(
            f"working directory {shorten(raw)} cannot be accessed ({reason})", raw
        ) from None


def _require_within_roots(raw: str, resolved: Path, allowed_roots: Sequence[Path]) -> None:
    if not _within_any(resolved, allowed_roots):
        via = "" if str(resolved) == raw else f" (resolves to {shorten(str(resolved))})"
        roots = ", ".join(str(root) for root in allowed_roots)
        raise InvalidWorkingDirectoryError(
            f"working directory {shorten(raw)}{via} is outside the allowed roots "
            f"({shorten(roots)}); add its root to SESSION_BUDDY_ALLOWED_ROOTS",
            raw,
        )


def _within_any(path: Path, roots: Sequence[Path]) -> bool:
    for root in roots:
        try:
            real_root = Path(root).resolve()
        except (OSError, RuntimeError):
            continue
        if path == real_root or path.is_relative_to(real_root):
            return True
    return False


def detect_project(
    path: Path, *, git: str = "git", git_timeout: float = GIT_TIMEOUT_SECONDS
) -> ProjectSnapshot:
    """A snapshot of the project at ``path`` (a directory from resolve_working_directory).

    Never raises for a malformed manifest or a missing/broken git: the name falls back to
    the directory name and git fields to None.
    """
    name, source = _project_name(path)
    return ProjectSnapshot(
        path=str(path),
        name=name,
        name_source=source,
        markers=_markers(path),
        git=git_snapshot(path, git=git, timeout=git_timeout),
    )


def _project_name(path: Path) -> tuple[str, NameSource]:
    pyproject = _read_toml(path / "pyproject.toml")
    name = _clean_name(_dig(pyproject, "project", "name")) or _clean_name(
        _dig(pyproject, "tool", "poetry", "name")
    )
    if name:
        return name, "pyproject.toml"
    name = _clean_name(_dig(_read_json(path / "package.json"), "name"))
    if name:
        return name, "package.json"
    name = _clean_name(_dig(_read_toml(path / "Cargo.toml"), "package", "name"))
    if name:
        return name, "Cargo.toml"
    return path.name or str(path), "directory"


def _read_bytes(file: Path) -> bytes | None:
    try:
        if not file.is_file() or file.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        return file.read_bytes()
    except OSError:
        return None


def _read_toml(file: Path) -> object:
    data = _read_bytes(file)
    if data is None:
        return None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None


def _read_json(file: Path) -> object:
    data = _read_bytes(file)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _clean_name(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    name = "".join(ch for ch in value.strip() if ch.isprintable())
    return name[:MAX_NAME_CHARS] or None


def _markers(path: Path) -> ProjectMarkers:
    files: set[str] = set()
    dirs: set[str] = set()
    try:
        with os.scandir(path) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_LISTED_ENTRIES:
                    break
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                (dirs if is_dir else files).add(entry.name.lower())
    except OSError:
        return ProjectMarkers()
    names = files | dirs
    return ProjectMarkers(
        readme=any(name.startswith(README_PREFIXES) for name in files),
        tests=bool(dirs & TEST_DIRS),
        ci=bool(names & CI_FILES) or (path / ".github" / "workflows").is_dir(),
        lock_file=bool(files & LOCK_FILES),
        docs=bool(dirs & DOC_DIRS),
        license=any(name.startswith(LICENSE_PREFIXES) for name in files),
    )


class _GitUnavailable(Exception):
    """git gave no answer at all: not installed (``installed`` False) or timed out."""

    def __init__(self, message: str, *, installed: bool) -> None:
        self.installed = installed
        super().__init__(message)


def _git_environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTING_VARIABLES}
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
