"""PostgreSQL URLs as configuration: checked, read as libpq reads them, shown without
their password.

The URL is read by libpq's own parser (:func:`psycopg.conninfo.conninfo_to_dict`, which
connects to nothing), so what is shown, what the log filter redacts and what the driver
connects to are the same thing. Before that, a URL whose user name or password holds a
character that needs percent-encoding is refused: libpq would split it elsewhere and
quote the pieces — pieces of the password — in its error message. No message here ever
quotes libpq's parse error, or any part of the URL but its host, port, database and user.
The driver is imported only when a URL is actually looked at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from session_buddy.store.errors import StorageError

URL_FIX = "set SESSION_BUDDY_DATABASE_URL to postgresql://user:password@host:port/dbname"
ENCODE_FIX = (
    "percent-encode the user name and password: @ as %40, : as %3A, / as %2F, ? as %3F, "
    "# as %23, % as %25 (python3 -c 'import sys, urllib.parse; "
    'print(urllib.parse.quote(sys.argv[1], safe=""))\' PASSWORD)'
)
SCHEMES = ("postgresql://", "postgres://")
DEFAULT_PORT = "5432"
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class PostgresTarget:
    """Where a URL connects, as libpq reads it (never the password)."""

    hosts: tuple[str, ...]  # empty: libpq's default (a Unix socket)
    ports: tuple[str, ...]
    dbname: str | None
    user: str | None

    def describe(self) -> str:
        """``host:port/dbname`` over TCP; ``Unix socket DIR/.s.PGSQL.PORT, database DB``
        for a socket directory — what messages may show."""
        dbname = self.dbname or self.user or "postgres"
        places = []
        for number, host in enumerate(self.hosts or ("",)):
            port = self.ports[min(number, len(self.ports) - 1)] if self.ports else DEFAULT_PORT
            port = port or DEFAULT_PORT
            if not host:
                places.append(f"Unix socket .s.PGSQL.{port} in libpq's default directory")
            elif host.startswith(("/", "@")):
                places.append(f"Unix socket {host.rstrip('/')}/.s.PGSQL.{port}")
            else:
                places.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        if any(place.startswith("Unix socket") for place in places):
            return f"{', '.join(places)}, database {dbname}"
        return f"{','.join(places)}/{dbname}"


def _reserved_character_problem(url: str) -> str | None:
    """Why ``url``'s user name or password must be percent-encoded first, or None.

    libpq ends the user:password part at the first ``@`` and the host part at the first
    ``/`` or ``?``, so one ``@`` is allowed, before both; and every ``%`` must start a
    percent-encoded byte.
    """
    rest = url.split("://", 1)[1]
    at = [index for index, char in enumerate(rest) if char == "@"]
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    if len(at) > 1 or (at and at[0] > authority_end):
        return "has an '@' that is not the one before the host"
    if _BAD_PERCENT.search(rest):
        return "has a '%' that does not start a percent-encoded character"
    return None


def _parsed(url: str) -> dict[str, str]:
    """libpq's reading of ``url``, or :class:`StorageError` (kind ``bad_url``) that quotes
    none of it."""
    if not url.startswith(SCHEMES):
        scheme = url.split("://", 1)[0] if "://" in url else ""
        shown = scheme if scheme.isascii() and scheme.isalnum() and len(scheme) < 20 else ""
        raise StorageError(
            "SESSION_BUDDY_DATABASE_URL must start with postgresql:// "
            f"(got {shown or 'no'} scheme)",
            kind="bad_url",
            fix=URL_FIX,
        )
    problem = _reserved_character_problem(url)
    if problem is not None:
        raise StorageError(
            f"SESSION_BUDDY_DATABASE_URL {problem} (nothing was sent to the server)",
            kind="bad_url",
            fix=ENCODE_FIX,
        )
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    invalid = StorageError(
        "SESSION_BUDDY_DATABASE_URL is not a valid URL", kind="bad_url", fix=URL_FIX
    )
    try:
        parsed = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    except Error:
        raise invalid from None
    if not all(port.isdigit() for port in parsed.get("port", "").split(",") if port):
        raise invalid
    return parsed


def target_of(url: str) -> PostgresTarget:
    """Where ``url`` connects; :class:`StorageError` when it is not a usable URL."""
    parsed = _parsed(url)
    hosts = parsed.get("host") or parsed.get("hostaddr") or ""
    ports = parsed.get("port", "")
    return PostgresTarget(
        hosts=tuple(hosts.split(",")) if hosts else (),
        ports=tuple(ports.split(",")) if ports else (),
        dbname=parsed.get("dbname") or None,
        user=parsed.get("user") or None,
    )


def describe_url(url: str) -> str:
    """``host:port/dbname`` (or the Unix socket) of a ``postgresql://`` URL: what
    messages may show."""
    try:
        return target_of(url).describe()
    except StorageError:
        return "(unusable PostgreSQL URL)"


def password_of(url: str) -> str | None:
    """The password in a URL (for the log filter to redact), or None. For a URL libpq
    cannot read, the best guess, so that it is redacted all the same."""
    try:
        password = _parsed(url).get("password")
    except StorageError:
        try:
            password = urlsplit(url).password
        except ValueError:
            return None
        return unquote(password) if password else None
    return password or None


def user_of(url: str) -> str | None:
    """The user name the URL connects as, or None (libpq then uses PGUSER or the login
    name)."""
    try:
        return target_of(url).user
    except StorageError:
        return None


def check_url(url: str) -> None:
    """:class:`StorageError` (kind ``bad_url``) unless ``url`` is a usable PostgreSQL URL."""
    _parsed(url)
