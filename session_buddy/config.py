"""The one reader of the environment: every ``SESSION_BUDDY_*`` variable and ``.env``.

Everything else in session-buddy receives a :class:`Settings` (or something built
from it) as an argument; no other module looks at ``os.environ``.

Where a value comes from, first found wins (:meth:`Settings.settings_customise_sources`):

1. a command-line option (keyword arguments of :func:`load_settings`);
2. the process environment;
3. one ``.env`` file: the one ``SESSION_BUDDY_ENV_FILE`` names, else ``.env`` in the data
   dir. Never the working directory: an MCP client starts the server in whatever project
   it opens, and a cloned repository's ``.env`` must not choose the secret, turn tokens
   off or move the database;
4. the defaults.

A setting and its ``_FILE`` twin (``SECRET`` / ``SECRET_FILE``, ``DATABASE_URL`` /
``DATABASE_URL_FILE``) count as one setting: when a source sets either, the sources below
it give neither. Both set in the same source must agree, or using them is an error that
names both (never their values). ``SESSION_BUDDY_DATA_DIR`` and ``SESSION_BUDDY_ENV_FILE``
come only from options and the environment, since they say which ``.env`` to read. Every
``.env`` line not used is reported with the reason (:attr:`Settings.ignored`), and
:meth:`Settings.origin` says where each value came from (``session-buddy auth status``).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NoReturn
from urllib.parse import urlsplit

from platformdirs import user_data_dir
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "SESSION_BUDDY_"
DEFAULT_AUDIENCE = "session-buddy"
DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8678
MCP_PATH = "/mcp"
OAUTH_ISSUER_VARIABLE = f"{ENV_PREFIX}OAUTH_ISSUER"
SHARED_SECRET_VARIABLE = "BODAI_SHARED_SECRET"
ENV_FILE_NAME = ".env"
SecretSource = Literal["option", "env", "file", ".env", "shared", "unset"]
SecretFileProblem = Literal["unreadable", "empty", "conflict"]
SettingSource = Literal["option", "environment", ".env", "default"]

# Mahavishnu's JWT secret under both of its names, in the order we read them: its settings
# (pydantic, env_nested_delimiter "__") read the first; its docs and its mcp-common service
# auth use the second.
MAHAVISHNU_SECRET_VARIABLES = ("MAHAVISHNU_AUTH__SECRET", "MAHAVISHNU_AUTH_SECRET")
# Mahavishnu's settings field cross_project_auth_secret (env_prefix MAHAVISHNU_): the secret
# its MessageAuthenticator signs cross-project messages with.
MAHAVISHNU_CROSS_PROJECT_VARIABLE = "MAHAVISHNU_CROSS_PROJECT_AUTH_SECRET"
_VARIABLE_ALIASES = {name: MAHAVISHNU_SECRET_VARIABLES for name in MAHAVISHNU_SECRET_VARIABLES}


class SettingFileError(ValueError):
    """A ``…_FILE`` setting names a file that gives no value, or a different one than its
    twin (``SESSION_BUDDY_SECRET`` beside ``SESSION_BUDDY_SECRET_FILE``, say).

    ``str()`` names the variables, the file and where each was set (never a value);
    ``kind`` is ``"unreadable"``, ``"empty"`` or ``"conflict"``; ``fix`` says what to do.
    """

    variable: ClassVar[str]
    twin: ClassVar[str]
    noun: ClassVar[str]
    unusable_fix: ClassVar[str]

    def __init__(self, path: Path, kind: SecretFileProblem, why: str = "") -> None:
        self.path = path
        self.kind = kind
        self.fix = self.unusable_fix
        if kind == "conflict":
            text = f"{why} give different {self.noun}s"
            self.fix = (
                f"keep one of the two: unset {self.twin} or {self.variable} "
                "(session-buddy auth status shows where each is set)"
            )
        else:
            text = "is empty" if kind == "empty" else f"cannot be read: {why}"
        super().__init__(f"{self.variable} {path} {text}")


class SecretFileError(SettingFileError):
    """``SESSION_BUDDY_SECRET_FILE`` gives no secret, or not the one ``SESSION_BUDDY_SECRET``
    gives; authentication then fails closed."""

    variable = "SESSION_BUDDY_SECRET_FILE"
    twin = "SESSION_BUDDY_SECRET"
    noun = "secret"
    unusable_fix = "make the secret file readable, or set SESSION_BUDDY_SECRET instead"


class DatabaseUrlFileError(SettingFileError):
    """``SESSION_BUDDY_DATABASE_URL_FILE`` gives no URL (it is never taken as SQLite), or
    not the one ``SESSION_BUDDY_DATABASE_URL`` gives."""

    variable = "SESSION_BUDDY_DATABASE_URL_FILE"
    twin = "SESSION_BUDDY_DATABASE_URL"
    noun = "URL"
    unusable_fix = "make the file readable and put the postgresql:// URL in it"


class IntrospectionSecretFileError(SettingFileError):
    """``SESSION_BUDDY_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE`` gives no secret, or not the
    one ``SESSION_BUDDY_OAUTH_INTROSPECTION_CLIENT_SECRET`` gives."""

    variable = "SESSION_BUDDY_OAUTH_INTROSPECTION_CLIENT_SECRET_FILE"
    twin = "SESSION_BUDDY_OAUTH_INTROSPECTION_CLIENT_SECRET"
    noun = "secret"
    unusable_fix = (
        "make the file readable and put the introspection client's secret in it, or set "
        "SESSION_BUDDY_OAUTH_INTROSPECTION_CLIENT_SECRET instead"
    )


class ResourceUrlError(ValueError):
    """This server's resource URL (``SESSION_BUDDY_RESOURCE_URL``) is missing where it is
    needed, or is not one: the server refuses to start.

    ``kind`` is ``"required"`` (an identity provider is trusted and the server is reachable
    beyond loopback, where no default can be right) or ``"invalid"``; ``fix`` says what to do.
    """

    def __init__(self, message: str, *, kind: Literal["required", "invalid"], fix: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.fix = fix


@dataclass(frozen=True)
class Origin:
    """Where one setting's value came from: ``source``, and the ``variable`` (or file) that
    gave it; ``str()`` says it for people (``"environment (SESSION_BUDDY_SECRET_FILE)"``)."""

    source: SettingSource
    variable: str
    env_file: Path | None = None

    def set_where(self) -> str:
        """``"set in the environment"``, ``"set in /data/.env"``, ``"given as an option"``."""
        if self.source == "environment":
            return "set in the environment"
        if self.source == ".env":
            return f"set in {self.env_file}"
        return "given as an option" if self.source == "option" else "not set"

    def __str__(self) -> str:
        if self.source == "environment":
            return f"environment ({self.variable})"
        if self.source == ".env":
            return f".env file {self.env_file} ({self.variable})"
        return "command-line option" if self.source == "option" else "default"


@dataclass(frozen=True)
class IgnoredSetting:
    """A line of the ``.env`` file that is not used, and why."""

    variable: str
    env_file: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.variable} in {self.env_file} is not used: {self.reason}"


@dataclass
class SourceReport:
    """What the sources of one :class:`Settings` found (filled while it is built)."""

    env_file: Path | None = None
    origins: dict[str, Origin] = field(default_factory=dict)
    ignored: list[IgnoredSetting] = field(default_factory=list)
    unread_env_file: Path | None = None
    unreadable: str | None = None


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


# A setting and its _FILE twin count as one setting when deciding which source gives it.
TWINS = (
    ("secret", "secret_file"),
    ("database_url", "database_url_file"),
    ("oauth_introspection_client_secret", "oauth_introspection_client_secret_file"),
)
# Settings that say which .env to read, so no .env may set them.
ENVIRONMENT_ONLY = ("data_dir", "env_file")
# Where the .env source hands its report to the model (no variable can have this name).
_REPORT_KEY = "session_buddy.sources"
_MAX_PEEK_BYTES = 1 << 20


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps a server on this machine (127.0.0.0/8, ::1,
    localhost). Any other name counts as beyond loopback."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _loopback_authority(host: str) -> str:
    """How a client on this machine names a loopback bind: the address itself (an IPv6
    one in brackets), ``127.0.0.1`` for a name such as ``localhost``."""
    name = host.strip().strip("[]").lower()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return DEFAULT_HTTP_HOST
    return f"[{address}]" if address.version == 6 else str(address)


def _http_url(value: str, what: str) -> str:
    """``value`` when it is an absolute http(s) URL without query or fragment, else
    ``ValueError`` naming ``what``."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} {value[:200]!r} is not an http(s) URL")
    if parts.query or parts.fragment or "#" in value:
        raise ValueError(f"{what} {value[:200]!r} has a query or fragment")
    return value


def _default_data_dir() -> Path:
    return Path(user_data_dir("session-buddy"))


def _field_keys(settings_cls: type[BaseSettings]) -> dict[str, str]:
    """Each field's key in a source's values (its alias, if it has one) -> field name."""
    keys = {}
    for name, info in settings_cls.model_fields.items():
        alias = info.validation_alias
        keys[alias if isinstance(alias, str) else name] = name
    return keys


def variable_of(name: str) -> str:
    """The environment variable of the setting ``name`` (``secret`` -> SESSION_BUDDY_SECRET)."""
    alias = Settings.model_fields[name].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + name.upper()


def _twin_of(name: str) -> str | None:
    for pair in TWINS:
        if name in pair:
            return pair[1] if name == pair[0] else pair[0]
    return None


def _set_above(name: str, above: Mapping[str, Any]) -> str | None:
    """The field (``name`` or its twin) that a source above already set, or None."""
    for candidate in (name, _twin_of(name)):
        if candidate is not None and candidate in above:
            return candidate
    return None


class _EnvironmentSource(EnvSettingsSource):
    """The process environment, minus the twins of what a command-line option set."""

    def __init__(self, settings_cls: type[BaseSettings], report: SourceReport) -> None:
        super().__init__(settings_cls)
        self._report = report

    def __call__(self) -> dict[str, Any]:
        keys = _field_keys(self.settings_cls)
        above = {keys[k]: v for k, v in self.current_state.items() if k in keys}
        values = {}
        for key, value in super().__call__().items():
            name = keys.get(key)
            if name is not None and _set_above(name, above) not in (None, name):
                continue  # an option set its twin, which wins
            values[key] = value
            if name is not None and name not in above:
                self._report.origins[name] = Origin("environment", variable_of(name))
        for name in above:
            self._report.origins[name] = Origin("option", variable_of(name))
        return values


class _DotEnvSource(DotEnvSettingsSource):
    """The one ``.env`` file: ``SESSION_BUDDY_ENV_FILE``, else the data dir's ``.env``.

    Which file is decided when the source is called, from what the options and the
    environment say (``current_state``). A line is not used when a source above set the
    setting or its twin, or when it names a setting only the environment may set; each
    such line is recorded in the report with the reason.
    """

    def __init__(self, settings_cls: type[BaseSettings], report: SourceReport) -> None:
        super().__init__(settings_cls, env_file=None)
        self._report = report

    def _chosen_file(self, above: Mapping[str, Any]) -> Path:
        named = above.get("env_file")
        if named:
            return Path(named)
        return Path(above.get("data_dir") or _default_data_dir()) / ENV_FILE_NAME

    def __call__(self) -> dict[str, Any]:
        keys = _field_keys(self.settings_cls)
        above = {keys[k]: v for k, v in self.current_state.items() if k in keys}
        path = self._chosen_file(above)
        self._report.unread_env_file = _unread_env_file(path)
        values: dict[str, Any] = {}
        if path.is_file():
            self.env_file = path
            try:
                self.env_vars = self._load_env_vars()
            except (OSError, UnicodeDecodeError) as exc:
                self._report.unreadable = f"{path} cannot be read: {exc}"
                self.env_vars = {}
            else:
                self._report.env_file = path
                values = self._used(path, super().__call__(), keys, above)
        values[_REPORT_KEY] = self._report
        return values

    def _not_used_because(self, name: str, above: Mapping[str, Any]) -> str | None:
        """Why a ``.env`` line for ``name`` is not used (None: it is)."""
        if name in ENVIRONMENT_ONLY:
            return "only the environment (or an option) sets it, since it says which .env to read"
        winner = _set_above(name, above)
        if winner is None:
            return None
        where = self._report.origins.get(winner, Origin("environment", variable_of(winner)))
        return f"{variable_of(winner)} is {where.set_where()}, which wins"

    def _used(
        self, path: Path, found: dict[str, Any], keys: Mapping[str, str], above: Mapping[str, Any]
    ) -> dict[str, Any]:
        used = {}
        for key, value in found.items():
            name = keys.get(key)
            if name is None:
                continue  # not a setting (extra="ignore" would drop it anyway)
            reason = self._not_used_because(name, above)
            if reason is not None:
                self._report.ignored.append(IgnoredSetting(variable_of(name), path, reason))
                continue
            used[key] = value
            self._report.origins[name] = Origin(".env", variable_of(name), path)
        return used


def _unread_env_file(chosen: Path) -> Path | None:
    """A ``.env`` in the working directory with session-buddy settings, when it is not the
    file read: ``auth status`` says it is ignored. Only its size-bounded bytes are looked at."""
    try:
        here = Path.cwd() / ENV_FILE_NAME
        if not here.is_file() or (chosen.exists() and here.samefile(chosen)):
            return None
        with here.open("rb") as handle:
            mentions = ENV_PREFIX.encode() in handle.read(_MAX_PEEK_BYTES)
    except OSError:
        return None
    return here if mentions else None


class Settings(BaseSettings):
    """Configuration of one session-buddy process.

    Values come from options (keyword arguments), then ``SESSION_BUDDY_*`` environment
    variables, then the ``.env`` file (``SESSION_BUDDY_ENV_FILE``, else the data dir's),
    then these defaults; see the module docstring for the whole rule.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
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
    # None: on exactly when an OAuth issuer is configured (see http_bearer_only).
    bearer_only: bool | None = None
    allow_unauthenticated: bool = False
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    shared_secret: SecretStr | None = Field(default=None, validation_alias=SHARED_SECRET_VARIABLE)
    auth_required: bool = True
    max_token_lifetime_hours: float = Field(default=24, gt=0)
    data_dir: Path = Field(default_factory=_default_data_dir)
    env_file: Path | None = None
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
    # OAuth 2.1 resource server: the identity providers whose access tokens are accepted
    # (SESSION_BUDDY_OAUTH_ISSUER, one issuer URL or a comma-separated list).
    oauth_issuers: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias=OAUTH_ISSUER_VARIABLE
    )
    resource_url: str | None = None
    oauth_audience: str | None = None
    oauth_introspection_client_id: str | None = None
    oauth_introspection_client_secret: SecretStr | None = None
    oauth_introspection_client_secret_file: Path | None = None
    # Streamable HTTP without MCP sessions, so that any instance answers any request (None:
    # on when a PostgreSQL database is configured, off for the SQLite file).
    stateless_http: bool | None = None

    _sources: SourceReport = PrivateAttr(default_factory=SourceReport)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Options, then the environment, then the one ``.env`` (then the defaults)."""
        report = SourceReport()
        return (
            init_settings,
            _EnvironmentSource(settings_cls, report),
            _DotEnvSource(settings_cls, report),
        )

    @model_validator(mode="wrap")
    @classmethod
    def _keep_the_source_report(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        report = None
        if isinstance(data, dict) and _REPORT_KEY in data:
            data = dict(data)
            report = data.pop(_REPORT_KEY)
            if report.unreadable:
                raise ValueError(report.unreadable)
        settings = handler(data)
        if isinstance(report, SourceReport):
            settings._sources = report
        return settings

    @field_validator(
        "previous_secrets",
        "allowed_issuers",
        "allowed_roots",
        "allowed_hosts",
        "allowed_origins",
        "oauth_issuers",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("oauth_issuers", mode="before")
    @classmethod
    def _issuer_urls(cls, value: object) -> object:
        """Comma-separated issuer URLs, each an http(s) URL kept exactly as written (the
        provider's metadata and its tokens' ``iss`` must equal it character for character)."""
        entries = _split_commas(value)
        if not isinstance(entries, (list, tuple)):
            return entries
        issuers = tuple(_http_url(str(entry), "issuer") for entry in entries)
        if len(set(issuers)) != len(issuers):
            raise ValueError("an issuer is listed twice")
        return issuers

    @field_validator(
        "resource_url", "oauth_audience", "oauth_introspection_client_id", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip() or None
        return value

    @field_validator("resource_url")
    @classmethod
    def _resource_is_a_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "resource URL")

    @field_validator("env_file", mode="before")
    @classmethod
    def _empty_env_file_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("env_file")
    @classmethod
    def _env_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not (value.is_file() and os.access(value, os.R_OK)):
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("audience", mode="before")
    @classmethod
    def _empty_audience_is_the_default(cls, value: object) -> object:
        return DEFAULT_AUDIENCE if isinstance(value, str) and not value.strip() else value

    @field_validator("resource_url", mode="before")
    @classmethod
    def _empty_resource_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

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

    @property
    def http_bearer_only(self) -> bool:
        """Whether the HTTP server takes credentials only in the ``Authorization`` header
        (``SESSION_BUDDY_BEARER_ONLY``): a ``token`` argument is refused, and a request
        with no credentials at all is answered 401. Unset, it is on exactly when an OAuth
        issuer is configured: OAuth clients start their login from that 401."""
        if self.bearer_only is not None:
            return self.bearer_only
        return bool(self.oauth_issuers)

    # -- where values came from ------------------------------------------------------------

    def origin(self, name: str) -> Origin:
        """Where the setting ``name`` (a field name) came from; ``"default"`` when unset."""
        found = self._sources.origins.get(name)
        return found if found is not None else Origin("default", variable_of(name))

    @property
    def env_file_read(self) -> Path | None:
        """The ``.env`` file these settings read, or None."""
        return self._sources.env_file

    @property
    def ignored(self) -> tuple[IgnoredSetting, ...]:
        """The ``.env`` lines not used, each with the reason."""
        return tuple(self._sources.ignored)

    @property
    def unread_env_file(self) -> Path | None:
        """A ``.env`` in the working directory that mentions session-buddy settings and is
        not read (it would be, with ``SESSION_BUDDY_ENV_FILE``)."""
        return self._sources.unread_env_file

    # -- secrets ---------------------------------------------------------------------------

    def _given(self, value: SecretStr | None) -> str | None:
        text = value.get_secret_value() if value is not None else ""
        return text or None

    def _twin_conflict(self, name: str, error: type[SettingFileError], path: Path) -> NoReturn:
        file_origin = self.origin(f"{name}_file")
        raise error(
            path,
            "conflict",
            f"({file_origin.set_where()}) and {variable_of(name)} "
            f"({self.origin(name).set_where()})",
        )

    def resolved_secret(self) -> str | None:
        """The current signing secret, or None when authentication is disabled.

        ``SESSION_BUDDY_SECRET`` and ``SESSION_BUDDY_SECRET_FILE`` are one setting: either
        gives the secret, and when both are set they must give the same one, else
        :class:`SecretFileError` (kind ``"conflict"``) names both and where each was set.
        ``BODAI_SHARED_SECRET`` (the secret every service of the ecosystem may share, read
        last, as mcp-common does) is used only when neither is set; an empty value counts
        as unset. A secret file that cannot be read, or is empty, raises
        :class:`SecretFileError` naming the file (never its content), so a misconfigured
        container fails loudly instead of silently running without authentication.
        """
        secret = self._given(self.secret)
        if self.secret_file is not None:
            # An empty file fails too: the operator asked for authentication by naming it.
            from_file = _read_setting_file(self.secret_file, SecretFileError)
            if secret is not None and not hmac.compare_digest(secret.encode(), from_file.encode()):
                self._twin_conflict("secret", SecretFileError, self.secret_file)
            return from_file
        if secret is not None:
            return secret
        return self._given(self.shared_secret)

    def secret_source(self) -> SecretSource:
        """Where the current secret came from, for ``session-buddy auth status``."""
        if self._given(self.secret) is not None:
            source = self.origin("secret").source
            if source == "option":
                return "option"
            return "env" if source == "environment" else ".env"
        if self.secret_file is not None:
            return "file"
        if self._given(self.shared_secret) is not None:
            return "shared"
        return "unset"

    def previous_secret_values(self) -> list[str]:
        return [s.get_secret_value() for s in self.previous_secrets if s.get_secret_value()]

    def resolved_introspection_secret(self) -> str | None:
        """The introspection client's secret (RFC 7662), or None when none is configured.

        ``SESSION_BUDDY_OAUTH_INTROSPECTION_CLIENT_SECRET`` and its ``_FILE`` twin are one
        setting, as the secret's are: both set must agree, a named file must give one, else
        :class:`IntrospectionSecretFileError`.
        """
        secret = self._given(self.oauth_introspection_client_secret)
        path = self.oauth_introspection_client_secret_file
        if path is not None:
            from_file = _read_setting_file(path, IntrospectionSecretFileError)
            if secret is not None and not hmac.compare_digest(secret.encode(), from_file.encode()):
                self._twin_conflict(
                    "oauth_introspection_client_secret", IntrospectionSecretFileError, path
                )
            return from_file
        return secret

    def effective_resource_url(
        self, host: str = DEFAULT_HTTP_HOST, port: int = DEFAULT_HTTP_PORT
    ) -> str:
        """This server's resource URI (RFC 8707 / RFC 9728) when it serves on ``host``:``port``:
        ``SESSION_BUDDY_RESOURCE_URL``, else, on loopback, ``http://127.0.0.1:PORT/mcp``.

        Beyond loopback no default can be right (the name clients reach the server by is
        not the bound address), so with an identity provider configured and no
        ``SESSION_BUDDY_RESOURCE_URL`` this raises :class:`ResourceUrlError` (kind
        ``"required"``). The HTTP side (protected-resource metadata) and the provider's
        verifier (``aud``) both use this one answer.
        """
        if self.resource_url is not None:
            return self.resource_url
        if self.oauth_issuers and not is_loopback(host):
            raise ResourceUrlError(
                f"{OAUTH_ISSUER_VARIABLE} is set and the server binds {host[:100]}, beyond "
                "loopback, but SESSION_BUDDY_RESOURCE_URL is not set",
                kind="required",
                fix=(
                    "set SESSION_BUDDY_RESOURCE_URL to the URL clients use to reach this "
                    "server's MCP endpoint, e.g. https://sessions.example.com/mcp"
                ),
            )
        return f"http://{_loopback_authority(host)}:{port}{MCP_PATH}"

    @property
    def database_path(self) -> Path:
        """The SQLite file, used when no database URL is configured."""
        return self.data_dir / "session-buddy.db"

    def resolved_database_url(self) -> str | None:
        """The PostgreSQL URL, or None for the SQLite file under the data dir.

        ``SESSION_BUDDY_DATABASE_URL`` and ``SESSION_BUDDY_DATABASE_URL_FILE`` (a container
        secret) are one setting: when both are set they must agree, else
        :class:`DatabaseUrlFileError` (kind ``"conflict"``) names both; empty counts as
        unset. A named file that cannot be read or is empty raises it too, rather than
        quietly using SQLite.
        """
        url = self._given(self.database_url)
        url = url.strip() if url is not None else None
        if self.database_url_file is not None:
            from_file = _read_setting_file(self.database_url_file, DatabaseUrlFileError)
            if url and url != from_file:
                self._twin_conflict("database_url", DatabaseUrlFileError, self.database_url_file)
            return from_file
        return url or None


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
    """Read the environment (and the ``.env`` file) now; keyword arguments override both."""
    return Settings(**overrides)
