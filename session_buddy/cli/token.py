"""``session-buddy token create|header|verify|refresh|revoke``: tokens from the command line.

Only ``create``, ``header`` and ``refresh`` print a token, and they print nothing else on
stdout, so ``TOKEN=$(session-buddy token create mahavishnu)`` works and ``header`` can be
Claude Code's ``headersHelper``. Revocations go to the database configured
(``SESSION_BUDDY_DATABASE_URL``, else the SQLite file under ``SESSION_BUDDY_DATA_DIR``),
which every running server on it honours within a second.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import EllipsisType
from typing import Annotated, Any

import typer
from rich.table import Table

from session_buddy.auth import errors
from session_buddy.auth.scopes import RELEASED_VOCABULARY, granted_scopes, is_scope_name
from session_buddy.auth.tokens import finite_number
from session_buddy.cli.config import cli_settings, usable_manager, usable_runtime
from session_buddy.cli.output import cell, console, emit, fail, note, success, title, warn
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


def describe_scopes(scopes: frozenset[str] | None) -> str:
    """``"scopes: read, write"``, or what a token without a scope claim may do."""
    if scopes is None:
        return "no scope claim (every tool, unless SESSION_BUDDY_REQUIRE_SCOPES)"
    return f"scopes: {', '.join(sorted(scopes)) or '(none)'}"


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
    time = finite_number(value)  # unchecked claims (auth_time) may hold 10**400 or NaN
    if claim in ("exp", "iat", "nbf", "auth_time", "refreshed_at") and time is not None:
        if claim == "exp":
            return f"{value} ({_when(time)}, {human_expiry(time, now)})"
        return f"{value} ({_when(time)}, {_rounded(abs(now - time))} ago)"
    return value if isinstance(value, str) else json.dumps(value)


UserId = Annotated[str, typer.Argument(help="Who the token identifies (claims user_id and sub).")]
Minutes = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_MINUTES,
        help="Lifetime in minutes (default SESSION_BUDDY_TOKEN_EXPIRE_MINUTES, 60).",
    ),
]
Role = Annotated[
    str | None, typer.Option(help="Claim role, e.g. orchestrator or admin (see all sessions).")
]
Scopes = Annotated[
    list[str] | None,
    typer.Option(
        "--scope",
        metavar="SCOPE",
        help="A scope the token grants (claim scopes); repeatable: read (session_status, "
        "list_sessions), write (start_session, checkpoint, end_session), admin (all). "
        "Without --scope the token has no scope claim: full access.",
    ),
]
Audience = Annotated[
    str | None,
    typer.Option(
        metavar="SERVICE",
        help="Claim aud: the service the token is for (default SESSION_BUDDY_AUDIENCE, "
        "session-buddy; e.g. mahavishnu to call it).",
    ),
]
NoAudience = Annotated[
    bool,
    typer.Option(
        "--no-audience",
        help="No aud claim at all, for older verifiers that refuse any (Mahavishnu's "
        "JWTAuth and permissions.JWTManager decode with PyJWT and no audience).",
    ),
]


@dataclass(frozen=True)
class TokenRequest:
    """What ``token create`` and ``token header`` were asked for."""

    user_id: str
    minutes: int | None = None
    role: str | None = None
    issuer: str | None = None
    scopes: tuple[str, ...] = ()
    audience: str | None = None
    no_audience: bool = False
    claims: dict[str, Any] = field(default_factory=dict)


def _checked_scopes(scopes: list[str] | None) -> tuple[str, ...]:
    for scope in scopes or ():
        if not is_scope_name(scope):
            raise typer.BadParameter(
                f"{scope[:40]!r} is not a scope name (printable, no spaces or quotes)",
                param_hint="--scope",
            )
    return tuple(dict.fromkeys(scopes or ()))


def mint_requested(request: TokenRequest, *, quiet: bool = False) -> str:
    """The token asked for, signed with the configured secret; exit 1 with the reason
    (on stderr) when it cannot be minted. ``quiet``: no advisory warnings."""
    if request.audience is not None and request.no_audience:
        raise typer.BadParameter("give --audience or --no-audience, not both")
    extra = dict(request.claims)
    overrides: dict[str, object] = {}
    if request.minutes is not None:
        overrides["token_expire_minutes"] = request.minutes
    manager = usable_manager(cli_settings(**overrides))
    config = manager.config
    if request.role is not None:
        extra["role"] = request.role
    if request.scopes:
        extra["scopes"] = list(request.scopes)
    extra["iss"] = request.issuer or extra.get("iss", DEFAULT_ISSUER)
    audience: str | EllipsisType | None = ...
    if request.no_audience:
        audience = None
    elif request.audience is not None:
        audience = request.audience
    if not quiet:
        _advise(extra, audience, config.allowed_issuers, config.audience)
    try:
        return manager.create_token(request.user_id, extra, audience=audience)
    except errors.TokenRequestError as exc:
        fail(str(exc), exc.fix)


def _advise(
    claims: dict[str, Any],
    audience: str | EllipsisType | None,
    allowed_issuers: tuple[str, ...],
    own_audience: str,
) -> None:
    if allowed_issuers and claims["iss"] not in allowed_issuers:
        warn(
            f"issuer {claims['iss']!r} is not in SESSION_BUDDY_ALLOWED_ISSUERS; "
            "this server will reject the token"
        )
    if isinstance(audience, str) and audience != own_audience and "aud" not in claims:
        note(f"A token for {audience!r}: this server (audience {own_audience!r}) refuses it.")
    unknown = sorted(set(claims.get("scopes", ())) - RELEASED_VOCABULARY)
    if unknown:
        note(
            f"Scope {', '.join(map(repr, unknown))} is not in mcp-common's vocabulary "
            f"({', '.join(sorted(RELEASED_VOCABULARY))}): its released verifiers grant such "
            "a token no permissions at all."
        )


@app.command(
    epilog="Examples:  TOKEN=$(session-buddy token create mahavishnu)   |   "
    "session-buddy token create mahavishnu --role orchestrator --issuer mahavishnu "
    "--minutes 30 --claim team=core   |   "
    "session-buddy token create claude --scope read --scope write   |   "
    "session-buddy token create session-buddy --audience mahavishnu (to call Mahavishnu)"
)
def create(
    user_id: UserId,
    minutes: Minutes = None,
    role: Role = None,
    issuer: Annotated[
        str | None, typer.Option(help=f"Claim iss (default {DEFAULT_ISSUER}).")
    ] = None,
    scope: Scopes = None,
    audience: Audience = None,
    no_audience: NoAudience = False,
    claim: Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            help="Extra claim; repeatable. VALUE is parsed as JSON when it is JSON "
            "(42, true, [1,2]), otherwise kept as a string.",
        ),
    ] = None,
) -> None:
    """Print a new signed access token (and nothing else) on stdout.

    The token carries user_id and sub (USER_ID), iss, aud (this server's audience unless
    --audience or --no-audience), iat, exp, jti, type, and scopes when --scope is given.
    """
    request = TokenRequest(
        user_id=user_id,
        minutes=minutes,
        role=role,
        issuer=issuer,
        scopes=_checked_scopes(scope),
        audience=audience,
        no_audience=no_audience,
        claims=_parse_claims(claim or []),
    )
    emit(mint_requested(request))


@app.command(
    epilog='Example (.mcp.json):  "headersHelper": "session-buddy token header claude '
    '--scope read --scope write"   |   session-buddy token header mahavishnu --role orchestrator'
)
def header(
    user_id: UserId,
    minutes: Minutes = None,
    role: Role = None,
    scope: Scopes = None,
    audience: Audience = None,
) -> None:
    """Print {"Authorization": "Bearer <fresh token>"} and nothing else on stdout.

    For Claude Code's headersHelper: it runs this command whenever it connects, so the
    header always carries a fresh token and an expired one never sends Claude Code into
    OAuth discovery. When no token can be minted: exit 1, the reason on stderr.
    """
    request = TokenRequest(
        user_id=user_id,
        minutes=minutes,
        role=role,
        scopes=_checked_scopes(scope),
        audience=audience,
    )
    token = mint_requested(request, quiet=True)
    emit(json.dumps({"Authorization": f"Bearer {token}"}))


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
    exp = finite_number(claims["exp"]) or 0.0  # the verifier refused any other exp
    user = claims.get("user_id", claims.get("sub"))
    scopes = granted_scopes(claims)
    if as_json:
        emit(
            json.dumps(
                {
                    "valid": True,
                    "user_id": user,
                    "scopes": None if scopes is None else sorted(scopes),
                    "claims": claims,
                    "expires_at": _when(exp),
                    "expires_in_seconds": int(exp - now),
                }
            )
        )
        return
    heading = f"Token for {user}: valid, {human_expiry(exp, now)}; {describe_scopes(scopes)}"
    table = Table(title=title(heading), title_justify="left")
    table.add_column("claim", style="bold")
    table.add_column("value")
    for name, value in claims.items():
        table.add_row(cell(name), cell(_show_value(name, value, now)))
    console().print(table)


@app.command(epilog='Example:  TOKEN=$(session-buddy token refresh "$TOKEN")')
def refresh(
    token: TokenArgument = None,
) -> None:
    """Print a fresh token for a valid one; the old token is revoked (rotation)."""
    raw = read_token(token)
    runtime = usable_runtime()
    try:
        new_token = runtime.manager.refresh_token(raw)
    except errors.AuthError as exc:
        fail(describe_rejection(exc), exc.fix)
    except StorageError as exc:
        fail(str(exc), exc.fix)
    emit(new_token)
    note(f"The old token is now revoked in {describe_database(runtime.database)}.")


@app.command(epilog='Example:  session-buddy token revoke "$TOKEN"')
def revoke(
    token: TokenArgument = None,
) -> None:
    """Revoke a token for every server that shares this database (SESSION_BUDDY_DATABASE_URL,
    else the SQLite file in SESSION_BUDDY_DATA_DIR)."""
    raw = read_token(token)
    runtime = usable_runtime()
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
    where = describe_database(runtime.database)
    success(f"Token revoked in {where}: every server using it refuses the token within a second.")
    if runtime.database.dialect.name != "postgresql":
        warn(
            f"Only servers using {where} see this revocation. Servers on PostgreSQL do "
            "not: set SESSION_BUDDY_DATABASE_URL here as they have it, and revoke again."
        )
