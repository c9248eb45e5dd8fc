"""``session-buddy secret generate``: a new signing secret, optionally stored in a .env file."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from session_buddy.cli.output import emit, fail, note, success, warn

app = typer.Typer(
    help="Generate the shared signing secret (SESSION_BUDDY_SECRET).", no_args_is_help=True
)

VARIABLE = "SESSION_BUDDY_SECRET"
_ASSIGNMENT = re.compile(rf"^\s*(export\s+)?{VARIABLE}\s*=")


def new_secret() -> str:
    """43 URL-safe characters (32 random bytes), like the documented Python one-liner."""
    return secrets.token_urlsafe(32)


def write_env_file(path: Path, secret: str) -> bool:
    """Set ``SESSION_BUDDY_SECRET=`` in ``path``, keeping every other line; mode 0600.

    Returns True when an existing assignment was replaced. The file is replaced
    atomically, so a reader never sees it half-written or briefly world-readable.
    """
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    assignment = f"{VARIABLE}={secret}"
    replaced = False
    kept: list[str] = []
    for line in lines:
        if _ASSIGNMENT.match(line):
            if not replaced:
                kept.append(assignment)
            replaced = True
        else:
            kept.append(line)
    if not replaced:
        kept.append(assignment)
    directory = path.parent if str(path.parent) else Path(".")
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(kept) + "\n")
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return replaced


def _ignored_by_git(path: Path) -> bool | None:
    """True/False when ``path`` is inside a git work tree; None when it is not (or no git)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(path.parent), "check-ignore", "-q", path.name],
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: True, 1: False}.get(result.returncode)  # 128: not a repository


@app.command(
    epilog="Examples:  session-buddy secret generate   |   "
    "session-buddy secret generate --env-file .env"
)
def generate(
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="Write SESSION_BUDDY_SECRET=… into this file (created or updated, mode 0600) "
            "instead of printing the secret.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Print a new random secret (secrets.token_urlsafe(32)), or store it in a .env file."""
    secret = new_secret()
    if env_file is None:
        emit(secret)
        return
    try:
        replaced = write_env_file(env_file, secret)
    except OSError as exc:
        fail(
            f"Cannot write {env_file}: {exc.strerror or exc}",
            "choose a writable path with --env-file",
        )
    verb = "Replaced" if replaced else "Wrote"
    success(f"{verb} {VARIABLE} in {env_file} (permissions 0600)")
    ignored = _ignored_by_git(env_file.resolve())
    if ignored is False:
        warn(f"{env_file} is NOT ignored by git: add '{env_file.name}' to .gitignore now")
    else:
        note(f"Keep {env_file} out of git (add '{env_file.name}' to .gitignore).")
    if replaced:
        note(
            "Restart running session-buddy servers to use the new secret; list the old one "
            "in SESSION_BUDDY_PREVIOUS_SECRETS so tokens already issued keep working."
        )
