"""Configuration for CLI commands: :func:`load_settings` with errors turned into one line.

The CLI reads configuration only through :func:`session_buddy.config.load_settings` and
:class:`~session_buddy.auth.config.AuthConfig`. A bad value becomes a red line naming the
variable and the rule it breaks — never the value, which may be a secret.
"""

from __future__ import annotations

from pydantic import ValidationError

from session_buddy.auth.config import AuthConfig
from session_buddy.auth.errors import SECRET_HINT, SECRET_TOO_SHORT
from session_buddy.auth.manager import JWTManager
from session_buddy.cli.output import fail
from session_buddy.config import ENV_PREFIX, Settings, load_settings

GENERATE_FIX = "run: session-buddy secret generate --env-file .env"


def _describe(exc: ValidationError, overrides: dict[str, object]) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else "?"
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
            "correct it in the environment or in .env (see: session-buddy auth status --help)",
        )


def usable_auth_config(settings: Settings | None = None) -> AuthConfig:
    """An :class:`AuthConfig` that can sign and verify tokens, or exit 1 with the fix."""
    config = AuthConfig(settings if settings is not None else cli_settings())
    if not config.enabled:
        fail(
            "⚠️ JWT authentication disabled (SESSION_BUDDY_SECRET not set)",
            f"set SESSION_BUDDY_SECRET, or {GENERATE_FIX}",
        )
    problem = config.problem()
    if problem is not None:
        fail(*explain_problem(problem))
    return config


def explain_problem(problem: str) -> tuple[str, str]:
    """``AuthConfig.problem()`` as (message, fix) for one red line."""
    message = problem.removesuffix(SECRET_HINT).strip().removesuffix(".")
    if "PREVIOUS_SECRETS" in problem:
        return message, "replace or remove that entry of SESSION_BUDDY_PREVIOUS_SECRETS"
    if problem.startswith(SECRET_TOO_SHORT):
        return message, f"use a secret of 32+ characters; {GENERATE_FIX}"
    return message, "make the secret file readable, or set SESSION_BUDDY_SECRET instead"


def usable_manager(settings: Settings | None = None) -> JWTManager:
    """A :class:`JWTManager` for a usable configuration (see :func:`usable_auth_config`)."""
    return JWTManager(usable_auth_config(settings))
