"""``session-buddy auth status``: is authentication configured, and would it work?"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table

from session_buddy.auth.config import MIN_SECRET_LENGTH, AuthConfig
from session_buddy.auth.errors import AUTH_DISABLED_WARNING, GENERATE_FIX, AuthError
from session_buddy.auth.provider import ProviderVerifier
from session_buddy.auth.revocation import RETENTION_AFTER_EXPIRY
from session_buddy.auth.verifiers import IssuerVerifiers, configured_verifiers
from session_buddy.cli.config import (
    cli_settings,
    fail_closed,
    source_warnings,
    superuser_warning,
)
from session_buddy.cli.output import cell, console, fail, success, title, warn
from session_buddy.config import ENV_FILE_NAME, Origin, ResourceUrlError, Settings
from session_buddy.store import Database, SqliteDatabase, StorageError, database_for
from session_buddy.store.revocations import RevocationRepository
from session_buddy.store.urls import user_of
from session_buddy.text import iso_time

app = typer.Typer(help="Inspect the authentication configuration.", no_args_is_help=True)

_SECRET_SOURCES = {
    "env": "SESSION_BUDDY_SECRET",
    ".env": "SESSION_BUDDY_SECRET",
    "option": "SESSION_BUDDY_SECRET",
    "file": "file {path} (SESSION_BUDDY_SECRET_FILE)",
    "shared": "BODAI_SHARED_SECRET (the ecosystem's shared fallback; "
    "set SESSION_BUDDY_SECRET for a secret of session-buddy's own)",
    "unset": "not set",
}
_SECRET_FIELDS = {"file": "secret_file", "shared": "shared_secret", "unset": "secret"}
NO_AUD_ACCEPTED = (
    "accepted (Mahavishnu's older tokens have none). Serving HTTP beyond loopback? A token "
    "minted without aud for another service sharing the secret works here too: "
    "set SESSION_BUDDY_REQUIRE_AUDIENCE=true once your clients send aud"
)


def _writable_ancestor(path: Path) -> bool:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK)
    return False


Problem = tuple[str, str]  # (what is wrong, how to fix it)
REVOCATIONS_UNCHECKED = " (revocations cannot be checked, so every token is refused)"


def storage_rows(settings: Settings) -> tuple[str, str, Problem | None, str | None]:
    """(the database row, the revoked tokens row, problem or None, warning or None); never
    a password."""
    try:
        database = database_for(settings)
    except StorageError as exc:
        return "unusable", "unknown", (str(exc), exc.fix), None
    shown, problem = revoked_count(settings, database)
    return _backend(database), shown, problem, superuser_warning(database)


def _backend(database: Database) -> str:
    if database.dialect.name == "postgresql":
        user = user_of(database.location)
        who = f"user {user}" if user else "user not in the URL: PGUSER, else your login name"
        if database.superuser:
            who += ", a SUPERUSER"
        return f"PostgreSQL at {database.display} ({who})"
    return f"SQLite file {database.display}"


def revoked_count(settings: Settings, database: Database) -> tuple[str, Problem | None]:
    """(what to show, problem or None) for the revocation store, without creating it."""
    if isinstance(database, SqliteDatabase):
        path = settings.database_path
        if not path.exists():
            if _writable_ancestor(path.parent):
                return "0 (no database yet; created on first use)", None
            return "unknown", (
                f"data dir {settings.data_dir} cannot be created",
                "set SESSION_BUDDY_DATA_DIR to a writable directory",
            )
        database = SqliteDatabase(path, create=False)
    try:
        count = RevocationRepository(database.open()).count(time.time() - RETENTION_AFTER_EXPIRY)
    except StorageError as exc:
        return "unknown", (f"{exc}{REVOCATIONS_UNCHECKED}", exc.fix)
    finally:
        if isinstance(database, SqliteDatabase):
            database.close()
    return str(count), None


def _from(origin: Origin) -> str:
    """The "from" column: where a setting came from, without repeating its variable."""
    if origin.source == "environment":
        return "environment"
    if origin.source == ".env":
        return f".env {origin.env_file}"
    return str(origin)


def _env_file_row(settings: Settings) -> str:
    if settings.env_file_read is not None:
        return f"{settings.env_file_read} (read)"
    return f"none ({settings.data_dir / ENV_FILE_NAME} does not exist)"


def _secret_row(settings: Settings, source: str) -> tuple[str, str]:
    """(what the secret row says, where it came from)."""
    shown = _SECRET_SOURCES[source].format(path=settings.secret_file)
    if source not in ("file", "unset") and settings.secret_file is not None:
        shown += f", and file {settings.secret_file} (SESSION_BUDDY_SECRET_FILE)"
    return shown, _from(settings.origin(_SECRET_FIELDS.get(source, "secret")))


def _provider_rows(
    config: AuthConfig, verifiers: IssuerVerifiers, add: Callable[..., None]
) -> list[str]:
    """The identity providers' rows (each one's metadata and keys fetched now); returns
    what went wrong, for warnings: a provider down is not this configuration's fault."""
    if not config.oauth_issuers:
        add("OAuth issuers", "none (only the shared secret's HS256 tokens)", "oauth_issuers")
        return []
    problems = []
    try:
        resource = config.resource_url
    except ResourceUrlError as exc:  # not raised without a bound address; kept for safety
        resource = f"unset ({exc.fix})"
    add("Resource URL", resource, "resource_url")
    if config.settings.oauth_audience:
        add("OAuth audience", config.settings.oauth_audience, "oauth_audience")
    for verifier in verifiers.providers:
        if not isinstance(verifier, ProviderVerifier):
            continue
        try:
            verifier.open()
        except AuthError as exc:
            problems.append(f"identity provider {verifier.issuer}: {exc.detail}")
        finally:
            verifier.close()
        found = verifier.status()
        if found.fetched_at is None:
            keys = f"not fetched: {found.problem}"
        else:
            kids = ", ".join(found.kids) or "(no usable signing key)"
            keys = f"{kids} (fetched {iso_time(found.fetched_at)})"
        introspection = (
            "introspection at " + found.introspection_endpoint
            if verifier.takes_opaque_tokens and found.introspection_endpoint
            else "no introspection"
        )
        add(f"Issuer {verifier.issuer}", f"keys {keys}; {introspection}", "oauth_issuers")
    return problems


@app.command(
    epilog="Examples:  session-buddy auth status   |   "
    "SESSION_BUDDY_SECRET_FILE=/run/secrets/sb session-buddy auth status"
)
def status() -> None:
    """Show the auth configuration, where each setting came from (a command-line option,
    the environment, the .env file, or the default) and a verdict; exit 1 when it would
    fail closed."""
    config = AuthConfig(cli_settings())
    settings = config.settings
    verifiers = configured_verifiers(config)
    enabled = verifiers.enabled
    problem = config.problem() if config.secret_configured else None

    table = Table(title=title("session-buddy authentication"), title_justify="left")
    table.add_column("setting", style="bold")
    table.add_column("value")
    table.add_column("from", no_wrap=True)

    def add(label: str, value: str, *fields: str) -> None:
        origin = " / ".join(dict.fromkeys(_from(settings.origin(name)) for name in fields))
        table.add_row(label, cell(value), cell(origin))

    table.add_row("Authentication", "enabled" if enabled else "disabled", "")
    shown, where = _secret_row(settings, config.secret_source)
    table.add_row("Secret source", cell(shown), cell(where))
    length = config.secret_length
    if length is not None:
        verdict = "ok" if length >= MIN_SECRET_LENGTH else "TOO SHORT"
        table.add_row(
            "Secret length", f"{length} characters ({verdict}; minimum {MIN_SECRET_LENGTH})", ""
        )
    short = sum(1 for s in config.previous_secrets if len(s) < MIN_SECRET_LENGTH)
    previous = f"{len(config.previous_secrets)} (accepted for verification only)"
    previous += f", {short} TOO SHORT" if short else ""
    add("Previous secrets", previous, "previous_secrets")
    add(
        "Token required",
        "yes"
        if config.auth_required
        else "no (migration mode: calls without a token run as 'anonymous')",
        "auth_required",
    )
    add(
        "Issuer allow-list",
        ", ".join(config.allowed_issuers) or "any issuer",
        "allowed_issuers",
    )
    add("Audience", config.audience, "audience")
    add(
        "Tokens without aud",
        "refused (SESSION_BUDDY_REQUIRE_AUDIENCE)" if config.require_audience else NO_AUD_ACCEPTED,
        "require_audience",
    )
    add(
        "Tokens without scopes",
        "grant no scope (SESSION_BUDDY_REQUIRE_SCOPES)"
        if config.require_scopes
        else "full access (read: session_status, list_sessions; write or execute: "
        "start_session, checkpoint, end_session; admin: all)",
        "require_scopes",
    )
    add(
        "HTTP token argument",
        "refused: Authorization header only, none at all is HTTP 401 (SESSION_BUDDY_BEARER_ONLY"
        + (", on by default with an OAuth issuer)" if settings.bearer_only is None else ")")
        if settings.http_bearer_only
        else "accepted (SESSION_BUDDY_BEARER_ONLY=true keeps tokens out of the model's context)",
        "bearer_only",
    )
    lifetime = f"{config.expire_minutes} min (token create default)"
    add("Token lifetime", lifetime, "token_expire_minutes")
    maximum = f"{config.max_token_lifetime_hours:g} h (refresh limit)"
    add("Maximum lifetime", maximum, "max_token_lifetime_hours")
    add("Clock leeway", f"{config.leeway_seconds} s", "leeway_seconds")
    provider_problems = _provider_rows(config, verifiers, add)
    add("Data dir", str(config.data_dir), "data_dir")
    add(".env file", _env_file_row(settings), *(["env_file"] if settings.env_file else []))
    backend, shown, storage_problem, storage_warning = storage_rows(settings)
    add("Database", backend, "database_url", "database_url_file")
    table.add_row("Revoked tokens", cell(shown), "")
    console().print(table)

    for line in source_warnings(settings):
        warn(line)
    if storage_warning is not None:
        warn(storage_warning)
    if problem is not None:
        fail_closed(problem, ": authentication fails closed (every call is refused)")
    if storage_problem is not None:
        fail(*storage_problem)
    for provider_problem in provider_problems:
        warn(provider_problem)
    if not enabled:
        warn(
            f"{AUTH_DISABLED_WARNING}: every tool runs unauthenticated as 'anonymous' — "
            f"fix: {GENERATE_FIX}"
        )
        return
    mode = "" if config.auth_required else " (migration mode: tokens optional)"
    success(f"Authentication is enabled and correctly configured{mode}.")
