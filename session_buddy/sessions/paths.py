"""Which working directories a caller may name: the path policy, applied before anything is read.

:func:`resolve_working_directory` is the only way a caller's string becomes a project
path. What it returns is absolute, real (symlinks resolved), an existing directory, not
reached through ``/proc`` (whose links lead to this process's working directory, root and
open files), and, when roots are configured, inside one of them. Every refusal is an
:class:`InvalidWorkingDirectoryError` saying what is wrong. Its message shows the path only
as the caller spelled it (shortened, control characters escaped): never where a symlink
leads, so a refusal is no oracle for the server's file system or working directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from session_buddy.sessions.errors import InvalidWorkingDirectoryError
from session_buddy.text import shorten

MAX_PATH_CHARS = 4096
_PROCESS_FILE_SYSTEM = Path("/proc")
_MAX_LINKS = 40  # as the kernel's ELOOP limit


def resolve_working_directory(raw: str, allowed_roots: Sequence[Path] = ()) -> Path:
    """The real absolute directory ``raw`` names, or :class:`InvalidWorkingDirectoryError`.

    ``raw`` must be absolute, at most 4096 characters, without NUL, and name an existing
    directory; symlinks are resolved before the allowed-roots check, so a link cannot lead
    out of the roots. A path that leads through ``/proc`` is refused (``/proc/self/cwd``
    would name the server's own working directory). With no roots configured, any other
    directory is allowed.
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
    if _leads_through_proc(candidate):
        raise InvalidWorkingDirectoryError(
            f"working directory {shorten(raw)} leads into /proc; name the project directory itself",
            raw,
        )
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
    except RuntimeError:  # a symlink loop (Python < 3.13); its text names the link's target
        raise InvalidWorkingDirectoryError(
            f"working directory {shorten(raw)} cannot be accessed (too many levels of symbolic "
            "links)",
            raw,
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidWorkingDirectoryError(
            f"working directory {shorten(raw)} cannot be accessed ({reason})", raw
        ) from None


def _require_within_roots(raw: str, resolved: Path, allowed_roots: Sequence[Path]) -> None:
    if not _within_any(resolved, allowed_roots):
        roots = ", ".join(str(root) for root in allowed_roots)
        raise InvalidWorkingDirectoryError(
            f"working directory {shorten(raw)} is outside the allowed roots "
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


def _leads_through_proc(path: Path) -> bool:
    """Whether resolving ``path`` (absolute) enters ``/proc``, following symlinks one by one
    without ever reading a link inside ``/proc`` itself."""
    pending = list(reversed(path.parts[1:]))
    current = Path(path.anchor)
    links = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        current = current / part
        if current == _PROCESS_FILE_SYSTEM or current.is_relative_to(_PROCESS_FILE_SYSTEM):
            return True
        try:
            target = Path(os.readlink(current))
        except OSError:  # not a link, or missing: resolve() reports what is wrong
            continue
        links += 1
        if links > _MAX_LINKS:
            return False  # a loop: resolve() reports it
        current = current.parent
        if target.is_absolute():
            current = Path(target.anchor)
        pending.extend(reversed([part for part in target.parts if part != target.anchor]))
    return False
