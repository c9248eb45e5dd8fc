"""Which working directories a caller may name: the path policy, applied before anything is read.

:func:`resolve_working_directory` is the only way a caller's string becomes a project
path. What it returns is absolute, real (symlinks resolved), an existing directory and,
when roots are configured, inside one of them. Every refusal is an
:class:`InvalidWorkingDirectoryError` saying what is wrong; where its message shows the
path, the path is shortened and its control characters are escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from session_buddy.sessions.errors import InvalidWorkingDirectoryError
from session_buddy.text import shorten

MAX_PATH_CHARS = 4096


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
