"""The one reader of the environment: every ``SESSION_BUDDY_*`` variable and ``.env``.

Everything else in session-buddy receives a :class:`Settings` (or something built
from it) as an argument; no other module looks at ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "SESSION_BUDDY_"
DEFAULT_AUDIENCE = "session-buddy"
SHARED_SECRET_VARIABLE = "BODAI_SHARED_SECRET"
SecretSource = Literal["env", "file", ".env", "shared", "unset"]
SecretFileProblem = Literal["unreadable", "empty"]

# Mahavishnu's JWT secret under both of its names, in the order we read them: its settings
# (pydantic, env_nested_delimiter "__") read the first; its docs and its mcp-common service
# auth use the second.
MAHAVISHNU_SECRET_VARIABLES = ("MAHAVISHNU_AUTH__SECRET", "MAHAVISHNU_AUTH_SECRET")
# Mahavishnu's settings field cross_project_auth_secret (env_prefix MAHAVISHNU_): the secret
# its MessageAuthenticator signs cross-project messages with.
MAHAVISHNU_CROSS_PROJECT_VARIABLE = "MAHAVISHNU_CROSS_PROJECT_AUTH_SECRET"
_VARIABLE_ALIASES = {name: MAHAVISHNU_SECRET_VARIABLES for name in MAHAVISHNU_SECRET_VARIABLES}


class SettingFileError(ValueError):
    """A ``…_FILE`` setting names a file that gives no value.

    ``str()`` names the variable and the file (never its content); ``kind`` is
    ``"unreadable"`` or ``"empty"``; ``fix`` says what to do.
    """

    variable: ClassVar[str]
    fix: ClassVar[str]

    def __init__(self, path: Path, kind: SecretFileProblem, why: str = "") -> None:
        self.path = path
        self.kind = kind
        text = "is empty" if kind == "empty" else f"cannot be read: {why}"
        super().__init__(f"{self.variable} {path} {text}")


class SecretFileError(SettingFileError):
    """``SESSION_BUDDY_SECRET_FILE`` gives no secret; authentication then fails closed."""

    variable = "SESSION_BUDDY_SECRET_FILE"
    fix = "make the secret file readable, or set SESSION_BUDDY_SECRET instead"


class DatabaseUrlFileError(SettingFileError):
    """``SESSION_BUDDY_DATABASE_URL_FILE`` gives no URL (it is never taken as SQLite)."""

    variable = "SESSION_BUDDY_DATABASE_URL_FILE"
    fix = "make the file readable and put the postgresql:// URL in it"


def _read_setting_file(path: Path, error: type[SettingFileError]) -> str:
    """The stripped content of a ``…_FILE`` setting's file, or ``error`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise error(path, "unreadable", str(exc.strerror or exc)) from None
    if not text:
        raise error(path, "empty")
    return text


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Configuration of one session-buddy process.

    Values come from ``SESSION_BUDDY_*`` environment variables, then from a ``.env``
    file in the working directory, then from these defaults.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    secret: SecretStr | None = None
    secret_file: Path | None = None
    previous_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    token_expire_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    leeway_seconds: int = Field(default=0, ge=0, le=300)
    allowed_issuers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    audience: str = DEFAULT_AUDIENCE
    require_audience: bool = False
    require_scopes: bool = False
    bearer_only: bool = False
    allow_unauthenticated: bool = False
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    shared_secret: SecretStr | None = Field(default=None, validation_alias=SHARED_SECRET_VARIABLE)
    auth_required: bool = True
    max_token_lifetime_hours: float = Field(default=24, gt=0)
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("session-buddy")))
    database_url: SecretStr | None = None
    database_url_file: Path | None = None
    allowed_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    audit: bool = True  # false: no audit trail is written (measurement, not advice)
    audit_retention_days: float = Field(default=30, gt=0)
    metrics: bool | None = None  # None: on when the HTTP server binds a loopback address
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator(
        "previous_secrets",
        "allowed_issuers",
        "allowed_roots",
        "allowed_hosts",
        "allowed_origins",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("audience", mode="before")
    @classmethod
    def _empty_audience_is_the_default(cls, value: object) -> object:
        return DEFAULT_AUDIENCE if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> object:
        """Comma-separated addresses or CIDR networks, each checked and written canonically
        (a mistyped one must not silently trust nobody, or everybody)."""
        entries = _split_commas(value)
        if not isinstance(entries, list):
            return entries
        networks = []
        for entry in entries:
            try:
                networks.append(str(ipaddress.ip_network(str(entry), strict=False)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from None
        return networks

    def resolved_secret(self) -> str | None:
        """The current signing secret, or None when authentication is disabled.

        ``SESSION_BUDDY_SECRET`` wins over ``SESSION_BUDDY_SECRET_FILE``, which wins over
        ``BODAI_SHARED_SECRET`` (the secret every service of the ecosystem may share, read
        last, as mcp-common does); an empty value counts as unset. A secret file that cannot
        be read, or is empty, raises :class:`SecretFileError` naming the file (never its
        content), so a misconfigured container fails loudly instead of silently running
        without authentication.
        """
        if self.secret is not None and self.secret.get_secret_value():
            return self.secret.get_secret_value()
        if self.secret_file is not None:
            # An empty file fails too: the operator asked for authentication by naming it.
            return _read_setting_file(self.secret_file, SecretFileError)
        if self.shared_secret is not None and self.shared_secret.get_secret_value():
            return self.shared_secret.get_secret_value()
        return None

    def secret_source(self) -> SecretSource:
        """Where the current secret came from, for ``session-buddy auth status``."""
        if self.secret is not None and self.secret.get_secret_value():
            return "env" if os.environ.get(f"{ENV_PREFIX}SECRET") else ".env"
        if self.secret_file is not None:
            return "file"
        if self.shared_secret is not None and self.shared_secret.get_secret_value():
            return "shared"
        return "unset"

    def previous_secret_values(self) -> list[str]:
        return [s.get_secret_value() for s in self.previous_secrets if s.get_secret_value()]

    @property
    def database_path(self) -> Path:
        """The SQLite file, used when no database URL is configured."""
        return self.data_dir / "session-buddy.db"

    def resolved_database_url(self) -> str | None:
        """The PostgreSQL URL, or None for the SQLite file under the data dir.

        ``SESSION_BUDDY_DATABASE_URL`` wins over ``SESSION_BUDDY_DATABASE_URL_FILE``
        (a container secret); empty counts as unset. A named file that cannot be read or
        is empty raises :class:`DatabaseUrlFileError` rather than quietly using SQLite.
        """
        if self.database_url is not None and self.database_url.get_secret_value().strip():
            return self.database_url.get_secret_value().strip()
        if self.database_url_file is not None:
            return _read_setting_file(self.database_url_file, DatabaseUrlFileError)
        return None


def child_environment(without: Collection[str] = ()) -> dict[str, str]:
    """This process's environment, minus ``without``, for a child process (git, a server
    the client starts): process plumbing, not configuration, but read here like all of it."""
    return {name: value for name, value in os.environ.items() if name not in without}


def variables_for(name: str) -> tuple[str, ...]:
    """The variables read, in order, for the secret named ``name``.

    Either of Mahavishnu's names for its JWT secret means both, settings name first
    (:data:`MAHAVISHNU_SECRET_VARIABLES`); any other name means just itself.
    """
    return _VARIABLE_ALIASES.get(name, (name,))


def secret_from_variable(name: str) -> str | None:
    """A secret held in another environment variable, or None when unset or empty.

    For secrets that belong to another project's configuration: Mahavishnu's (read by the
    client running inside Mahavishnu) and the CLI's ``--secret-env NAME``. A name with
    aliases (:func:`variables_for`) gives the first of them that is set.
    """
    for variable in variables_for(name):
        value = os.environ.get(variable)
        if value:
            return value
    return None


def mahavishnu_secret() -> str | None:
    """Mahavishnu's JWT secret: ``MAHAVISHNU_AUTH__SECRET``, else ``MAHAVISHNU_AUTH_SECRET``."""
    return secret_from_variable(MAHAVISHNU_SECRET_VARIABLES[0])


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and ``.env``) now; keyword arguments override both."""
    return Settings(**overrides)
