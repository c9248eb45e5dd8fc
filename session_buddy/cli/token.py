"""``session-buddy token create|verify|refresh|revoke``: tokens from the command line.

Only ``create`` and ``refresh`` print a token, and they print nothing else on stdout, so
``TOKEN=$(session-buddy token create mahavishnu)`` works. Revocations go to the database
configured (``SESSION_BUDDY_DATABASE_URL``, else the SQLite file under
``SESSION_BUDDY_DATA_DIR``), which every running server on it honours within a second.
"""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from session_buddy.auth import errors
from session_buddy.cli.config import cli_runtime, cli_settings, usable_auth_config, usable_manager
from session_buddy.cli.output import console, emit, fail, note, success, warn
from session_buddy.store import Database, StorageError
from session_buddy.text import format_duration

app = typer.Typer(
    help="Create, inspect, refresh and revoke JWT access tokens.", no_args_is_help=True
)

DEFAULT_ISSUER = "session-buddy"
MAX_MINUTES = 7 * 24 * 60

TokenArgument = Annotated[
    str | None, typer.Argument(help="The token, or '-' to read it from stdin.")
]


def describe_rejection(error: errors.AuthError) -> str:
    """The public line plus the precise reason (the local operator may see it)."""
    if (
        isinstance(error, errors.InvalidTokenError | errors.RevocationUnavailableError)
        and error.detail != error.public_message
    ):
        return f"{error.user_message} ({error.detail})"
    return error.user_message


def describe_database(database: Database) -> str:
    """Where revocations went, for the operator: a file, or ``PostgreSQL at host:port/db``
    (never the password)."""
    if database.dialect.name == "postgresql":
        return f"PostgreSQL at {database.display}"
    return f"the SQLite file {database.display}"


def read_token(token: str | None) -> str:
    """The token argument, or stdin when it is ``-`` (or omitted with stdin piped)."""
    if token is None or token == "-":
        if token is None and sys.stdin.isatty():
            raise typer.BadParameter(
                "missing: pass it as an argument, or '-' to read stdin", param_hint="TOKEN"
            )
        token = sys.stdin.read()
    token = token.strip()
    if not token:
        fail("No token given", "pass the token as an argument, or pipe it in with '-'")
    return token


def _parse_claims(pairs: list[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair[:40]!r}", param_hint="--claim")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        claims[key.strip()] = value
    return claims


def _when(timestamp: float) -> str:
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, ValueError, OSError):
        return "beyond the calendar"


def _rounded(seconds: float) -> str:
    if seconds < 60:
        return format_duration(math.ceil(seconds))
    return format_duration(round(seconds / 60) * 60)


def human_expiry(exp: float, now: float) -> str:
    """``"expires in 42 min"`` or ``"expired 3 min ago"``, to the nearest minute."""
    if exp > now:
        return f"expires in {_rounded(exp - now)}"
    return f"expired {_rounded(now - exp)} ago"


def _show_value(claim: str, value: Any, now: float) -> str:
    if claim in ("exp", "iat", "nbf", "auth_time", "refreshed_at") and isinstance(
        value, int | float
    ):
        if claim == "exp":
            return f"{value} ({_when(value)}, {human_expiry(value, now)})"
        return f"{value} ({_when(value)}, {_rounded(abs(now - value))} ago)"
    return value if isinstance(value, str) else json.dumps(value)


@app.command(
    epilog="Examples:  TOKEN=$(session-buddy token create mahavishnu)   |   "
    "session-buddy token create mahavishnu --role orchestrator --issuer mahavishnu "
    "--minutes 30 --claim team=core"
)
def create(
    user_id: Annotated[str, typer.Argument(help="Who the token identifies (claim user_id).")],
    minutes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_MINUTES,
            help="Lifetime in minutes (default SESSION_BUDDY_TOKEN_EXPIRE_MINUTES, 60).",
        ),
    ] = None,
    role: Annotated[
        str | None, typer.Option(help="Claim role, e.g. orchestrator or admin (see all sessions).")
    ] = None,
    issuer: Annotated[
        str | None, typer.Option(help=f"Claim iss (default {DEFAULT_ISSUER}).")
    ] = None,
    claim: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            help="Extra claim; repeatable. VALUE is parsed as JSON when it is JSON "
            "(42, true, [1,2]), otherwise kept as a string.",
        ),
    ] = None,
) -> None:
    """Print a new signed access token (and nothing else) on stdout."""
    extra = _parse_claims(claim or [])
    overrides: dict[str, object] = {} if minutes is None else {"token_expire_minutes": minutes}
    manager = usable_manager(cli_settings(**overrides))
    config = manager.config
    if role is not None:
        extra["role"] = role
    extra["iss"] = issuer or extra.get("iss", DEFAULT_ISSUER)
    if config.audience is not None:
        extra.setdefault("aud", config.audience)
    if config.allowed_issuers and extra["iss"] not in config.allowed_issuers:
        warn(
            f"issuer {extra['iss']!r} is not in SESSION_BUDDY_ALLOWED_ISSUERS; "
            "this server will reject the token"
        )
    try:
        token = manager.create_token(user_id, extra)
    except errors.TokenRequestError as exc:
        fail(str(exc), exc.fix)
    emit(token)


@app.command(
    epilog='Examples:  session-buddy token verify "$TOKEN"   |   '
    'echo "$TOKEN" | session-buddy token verify - --json'
)
def verify(
    token: TokenArgument = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check a token as the server would; exit 0 and show its claims, or exit 1 and why."""
    raw = read_token(token)
    manager = usable_manager()
    now = time.time()
    try:
        claims = manager.verify_token(raw)
    except errors.AuthError as exc:
        if as_json:
            emit(
                json.dumps(
                    {
                        "valid": False,
                        "error": exc.public_message,
                        "reason": exc.reason,
                        "detail": exc.detail,
                    }
                )
            )
            raise typer.Exit(1) from None
        fail(describe_rejection(exc), exc.fix)
    exp = float(claims["exp"])
    user = claims.get("user_id", claims.get("sub"))
    if as_json:
        emit(
            json.dumps(
                {
                    "valid": True,
                    "user_id": user,
                    "claims": claims,
                    "expires_at": _when(exp),
                    "expires_in_seconds": int(exp - now),
                }
            )
        )
        return
    title = escape(f"Token for {user}: valid, {human_expiry(exp, now)}")
    table = Table(title=title, title_justify="left")
    table.add_column("claim", style="bold")
    table.add_column("value")
    for name, value in claims.items():
        table.add_row(escape(name), escape(_show_value(name, value, now)))
    console().print(table)


@app.command(epilog='Example:  TOKEN=$(session-buddy token refresh "$TOKEN")')
def refresh(
    token: TokenArgument = None,
) -> None:
    """Print a fresh token for a valid one; the old token is revoked (rotation)."""
    raw = read_token(token)
    manager = usable_manager()
    try:
        new_token = manager.refresh_token(raw)
    except errors.AuthError as exc:
        fail(describe_rejection(exc), exc.fix)
    except StorageError as exc:
        fail(str(exc), exc.fix)
    emit(new_token)
    note("The old token is now revoked.")


@app.command(epilog='Example:  session-buddy token revoke "$TOKEN"')
def revoke(
    token: TokenArgument = None,
) -> None:
    """Revoke a token for every server that shares this database (SESSION_BUDDY_DATABASE_URL,
    else the SQLite file in SESSION_BUDDY_DATA_DIR)."""
    raw = read_token(token)
    runtime = cli_runtime()
    usable_auth_config(runtime.auth)
    manager = runtime.manager
    try:
        manager.revoke_token(raw)
    except errors.ExpiredTokenError:
        success("Token has already expired; no server accepts it.")
        return
    except errors.AuthError as exc:
        fail(describe_rejection(exc), exc.fix)
    except StorageError as exc:
        fail(str(exc), exc.fix)
    success(
        f"Token revoked for every server using {describe_database(runtime.database)} "
        "(running servers notice within a second)."
    )
