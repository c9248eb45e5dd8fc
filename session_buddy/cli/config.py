"""Configuration for CLI commands: one :class:`Settings` per command, errors as one line.

Each command reads the configuration once, through :func:`cli_settings` (or
:func:`cli_runtime`, which builds the command's :class:`~session_buddy.runtime.Runtime`
from it). A bad value becomes a red line naming the variable and the rule it breaks —
never the value, which may be a secret.
"""

from __future__ import annotations

from pydantic import ValidationError

from session_buddy.auth.config import AuthConfig
from session_buddy.auth.errors import (
    AUTH_DISABLED_WARNING,
    SecretConfigError,
    SecretNotConfiguredError,
)
from session_buddy.auth.manager import JWTManager
from session_buddy.cli.output import fail
from session_buddy.config import ENV_FILE_NAME, ENV_PREFIX, Settings, load_settings
from session_buddy.runtime import Runtime
from session_buddy.store import Database, SqliteDatabase, StorageError, database_for


def _describe(exc: ValidationError, overrides: dict[str, object]) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        if not error["loc"]:  # about the sources, not one setting
            parts.append(error["msg"].removeprefix("Value error, "))
            continue
        field = str(error["loc"][0])
        where = f"--{field.replace('_', '-')}" if field in overrides else ENV_PREFIX + field.upper()
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def cli_settings(**overrides: object) -> Settings:
    """The settings, or exit 1 naming the invalid variable (or option) and the rule."""
    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        fail(
            f"Invalid configuration: {_describe(exc, overrides)}",
            "correct it in the environment or in the .env file "
            "(SESSION_BUDDY_ENV_FILE, else .env in the data dir)",
        )


def cli_runtime(settings: Settings | None = None) -> Runtime:
    """The command's runtime, built from ``settings`` (default: :func:`cli_settings`), or
    exit 1 with the line saying why the database URL (or its file) is unusable."""
    try:
        return Runtime.build(settings if settings is not None else cli_settings())
    except StorageError as exc:
        fail(str(exc), exc.fix)


def existing_database(settings: Settings | None = None) -> Database | None:
    """The configured database for a command that only reads (``sessions``, ``audit``):
    None when it is a SQLite file that does not exist yet — reading creates nothing — or
    exit 1 with the line saying why it is unusable."""
    settings = settings if settings is not None else cli_settings()
    try:
        database = database_for(settings)
    except StorageError as exc:
        fail(str(exc), exc.fix)
    if isinstance(database, SqliteDatabase):
        if not settings.database_path.exists():
            return None
        database = SqliteDatabase(settings.database_path, create=False)
    return database


def source_warnings(settings: Settings) -> list[str]:
    """What the operator should know about where the settings came from: ``.env`` lines
    not used, and a ``.env`` in the working directory that is not read at all."""
    lines = [str(ignored) for ignored in settings.ignored]
    if settings.unread_env_file is not None:
        lines.append(
            f"{settings.unread_env_file} is not read: session-buddy reads "
            f"{settings.data_dir / ENV_FILE_NAME}, or the file SESSION_BUDDY_ENV_FILE names "
            "(a .env in the working directory could come from any repository an assistant "
            "opens) — move its settings there, or set SESSION_BUDDY_ENV_FILE"
        )
    return lines


def superuser_warning(database: Database) -> str | None:
    """The warning for a database used as a PostgreSQL superuser (after it was opened)."""
    if not database.superuser:
        return None
    return (
        f"PostgreSQL at {database.display}: connected as a superuser. session-buddy needs "
        "only a role that owns its database (whoever migrates first owns the tables): "
        "CREATE ROLE session_buddy LOGIN PASSWORD '…'; CREATE DATABASE session_buddy OWNER "
        "session_buddy — and put that role in SESSION_BUDDY_DATABASE_URL"
    )


def fail_closed(problem: SecretConfigError, suffix: str = "") -> None:
    """Exit 1 with the configuration problem as one line and its fix."""
    fail(f"{problem.headline}{suffix}", problem.fix)


def usable_auth_config(config: AuthConfig) -> AuthConfig:
    """``config`` when it can sign and verify tokens, or exit 1 with the fix."""
    if not config.secret_configured:
        fail(AUTH_DISABLED_WARNING, SecretNotConfiguredError.fix)
    problem = config.problem()
    if problem is not None:
        fail_closed(problem)
    return config


def usable_runtime(settings: Settings | None = None) -> Runtime:
    """The command's runtime, for a configuration that can sign and verify."""
    runtime = cli_runtime(settings)
    usable_auth_config(runtime.auth)
    return runtime


def usable_manager(settings: Settings | None = None) -> JWTManager:
    """The command's :class:`JWTManager`, for a configuration that can sign and verify."""
    return usable_runtime(settings).manager
