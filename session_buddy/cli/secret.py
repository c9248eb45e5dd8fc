"""``session-buddy secret generate``: a new signing secret, optionally stored in a .env file.

``--save`` stores it where every session-buddy command and server reads it: the ``.env``
file of the data dir (or the file ``SESSION_BUDDY_ENV_FILE`` names). ``--env-file PATH``
writes any file, and says when session-buddy would not read that file by itself.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from session_buddy.cli.config import cli_settings
from session_buddy.cli.output import emit, fail, note, success, warn
from session_buddy.config import ENV_FILE_NAME, Settings, variable_of

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


def read_file(settings: Settings) -> Path:
    """The ``.env`` file session-buddy reads with ``settings``."""
    return settings.env_file or settings.data_dir / ENV_FILE_NAME


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _advise(env_file: Path, settings: Settings) -> None:
    """Say whether session-buddy will use the secret just written, and what to do if not."""
    if not _same_file(env_file, read_file(settings)):
        warn(
            f"session-buddy does not read {env_file} by itself: set "
            f"SESSION_BUDDY_ENV_FILE={env_file.resolve()} wherever it runs, or use --save "
            f"(writes {read_file(settings)})"
        )
    for name in ("secret", "secret_file"):
        origin = settings.origin(name)
        if origin.source in ("environment", "option"):
            warn(
                f"{variable_of(name)} is set in the environment, which wins over {env_file}: "
                f"unset it to use the new secret"
            )


@app.command(
    epilog="Examples:  session-buddy secret generate --save   |   "
    "session-buddy secret generate   |   "
    "session-buddy secret generate --env-file deploy/session-buddy.env"
)
def generate(
    save: Annotated[
        bool,
        typer.Option(
            "--save",
            help="Write SESSION_BUDDY_SECRET=… into the .env file every session-buddy "
            "command and server reads: .env in the data dir (SESSION_BUDDY_DATA_DIR), or "
            "the file SESSION_BUDDY_ENV_FILE names. Created or updated, mode 0600.",
        ),
    ] = False,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="Write SESSION_BUDDY_SECRET=… into this file (created or updated, mode 0600) "
            "instead of printing the secret. session-buddy reads it only when "
            "SESSION_BUDDY_ENV_FILE names it.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Print a new random secret (secrets.token_urlsafe(32)), or store it in a .env file."""
    if save and env_file is not None:
        raise typer.BadParameter("give --save or --env-file, not both")
    secret = new_secret()
    if not save and env_file is None:
        emit(secret)
        return
    settings = cli_settings()
    target = read_file(settings) if env_file is None else env_file
    try:
        if save:  # the data dir may not exist yet; it holds secrets, so only we may enter
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        replaced = write_env_file(target, secret)
    except OSError as exc:
        fail(
            f"Cannot write {target}: {exc.strerror or exc}",
            "choose a writable path with --env-file (or SESSION_BUDDY_DATA_DIR for --save)",
        )
    verb = "Replaced" if replaced else "Wrote"
    success(f"{verb} {VARIABLE} in {target} (permissions 0600)")
    _advise(target, settings)
    ignored = _ignored_by_git(target.resolve())
    if ignored is False:
        warn(f"{target} is NOT ignored by git: add '{target.name}' to .gitignore now")
    elif not save:
        note(f"Keep {target} out of git (add '{target.name}' to .gitignore).")
    if replaced:
        note(
            "Restart running session-buddy servers to use the new secret; list the old one "
            "in SESSION_BUDDY_PREVIOUS_SECRETS so tokens already issued keep working."
        )
