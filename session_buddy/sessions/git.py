"""What git says about a project, asked read-only, with a deadline, and running nothing
the repository's configuration names.

:func:`git_snapshot`, :func:`count_commits`, :func:`current_branch` and
:func:`configured_identity` report a missing, failing or silent git as data (a ``note``,
None) rather than an exception. A git that does not answer within the
timeout (:data:`GIT_TIMEOUT_SECONDS` by default) is killed with its whole process group.

A project's ``.git/config`` (and the files it includes) is written by whoever can write
the project, so git is run as if it were hostile:

* **A minimal environment.** Every git process gets ``PATH`` and ``HOME`` from this
  process and nothing else of it (no ``SESSION_BUDDY_*``, no secret, no ``GIT_*`` variable
  that would point git at another repository or inject configuration), plus ``LC_ALL=C``,
  no terminal prompts, no optional locks (``status`` never refreshes ``.git/index``), and
  no system or global configuration (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL`` set to
  the null device): only the repository's own configuration is read.
* **No program from the configuration.** Configuration given to git on its command line
  (here as ``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n``, which take any driver name
  verbatim) beats every configuration file, so each git process runs with
  ``core.fsmonitor=false``, ``core.hooksPath`` set to the null device, ``diff.external``
  empty, and every transport refused (``GIT_ALLOW_PROTOCOL`` empty, ``protocol.allow=never``:
  a partial clone's missing object is not fetched by a configured ``uploadpack`` or
  ``sshCommand``). Before ``status`` — the one command that converts working-tree files —
  the repository's configuration is read as data (``git config --list --includes``, so
  ``include.path`` and ``includeIf`` files count) and every filter driver it names gets
  empty ``clean``/``smudge``/``process`` commands (and ``required=false``), every diff
  driver empty ``textconv``/``command``. ``status`` ignores submodules (``--ignore-submodules
  =all``): a submodule's own configuration is never read, and its changes are not counted.
  A configuration naming more than :data:`MAX_CONFIGURED_DRIVERS` drivers is not run at all
  (``changed_files`` is None).

What is left: a configuration rewritten between that read and ``status`` (milliseconds
apart) could name a new driver; its program would then run with the minimal environment
above. Files are only converted when git must hash a working-tree file, and the changed-file
count is git's without the repository's filters.
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
MAX_CONFIGURED_DRIVERS = 256

# Inherited by git from this process; everything else it gets is set below.
_INHERITED_VARIABLES = ("PATH", "HOME")
_FIXED_ENVIRONMENT = {
    "LC_ALL": "C",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_OPTIONAL_LOCKS": "0",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ALLOW_PROTOCOL": "",  # an allow-list naming no protocol: no transport, whatever the config
    "GIT_NO_LAZY_FETCH": "1",
}
# Configuration that beats the repository's own, for every git process.
_ALWAYS = (
    ("core.fsmonitor", "false"),
    ("core.hooksPath", os.devnull),
    ("diff.external", ""),
    ("protocol.allow", "never"),
)
_FILTER_OFF = (("clean", ""), ("smudge", ""), ("process", ""), ("required", "false"))
_DIFF_OFF = (("textconv", ""), ("command", ""))

Overrides = tuple[tuple[str, str], ...]


class _GitUnavailable(Exception):
    """git gave no answer at all: not installed (``installed`` False) or timed out."""

    def __init__(self, message: str, *, installed: bool) -> None:
        self.installed = installed
        super().__init__(message)


def _git_environment(overrides: Overrides) -> dict[str, str]:
    inherited = child_environment()
    env = {name: inherited[name] for name in _INHERITED_VARIABLES if name in inherited}
    env.update(_FIXED_ENVIRONMENT)
    configuration = _ALWAYS + overrides
    env["GIT_CONFIG_COUNT"] = str(len(configuration))
    for index, (key, value) in enumerate(configuration):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _driver_overrides(config_listing: str) -> Overrides | None:
    """Overrides emptying every filter and diff driver in ``git config --list -z`` output.

    None when the configuration names more than :data:`MAX_CONFIGURED_DRIVERS` drivers.
    """
    drivers: set[tuple[str, str]] = set()
    for entry in config_listing.split("\0"):
        key = entry.partition("\n")[0]
        section, _, rest = key.partition(".")
        subsection, dot, _ = rest.rpartition(".")
        if dot and section in ("filter", "diff"):
            drivers.add((section, subsection))
    if len(drivers) > MAX_CONFIGURED_DRIVERS:
        return None
    overrides: list[tuple[str, str]] = []
    for section, name in sorted(drivers):
        for variable, value in _FILTER_OFF if section == "filter" else _DIFF_OFF:
            overrides.append((f"{section}.{name}.{variable}", value))
    return tuple(overrides)


def _run_git(
    git: str, path: Path, args: Sequence[str], timeout: float, overrides: Overrides = ()
) -> str | None:
    """stdout of ``git -C path …`` when it exits 0, None when it fails.

    stdout is decoded with ``surrogateescape``, so names that are not UTF-8 reach
    ``overrides`` byte for byte.
    """
    command = [git, "-C", str(path), *args]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_git_environment(overrides),
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
    return stdout.decode("utf-8", errors="surrogateescape")


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
        status = _status(git, path, timeout)
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


def _status(git: str, path: Path, timeout: float) -> str | None:
    """``git status --porcelain`` with every driver the repository configures emptied."""
    listing = _run_git(git, path, ["config", "--list", "--includes", "-z"], timeout)
    overrides = None if listing is None else _driver_overrides(listing)
    if overrides is None:
        return None
    return _run_git(
        git,
        path,
        [
            "status",
            "--porcelain=v1",
            "--untracked-files=normal",
            "--ignore-submodules=all",
            "--",
            ".",
        ],
        timeout,
        overrides,
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
