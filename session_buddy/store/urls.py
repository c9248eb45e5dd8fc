"""PostgreSQL URLs as configuration: checked, and shown without their password.

Nothing here imports the driver, so commands that only describe the configuration stay
fast.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from session_buddy.store.errors import StorageError

URL_FIX = "set SESSION_BUDDY_DATABASE_URL to postgresql://user:password@host:port/dbname"


def describe_url(url: str) -> str:
    """``host:port/dbname`` of a ``postgresql://`` URL: what messages may show."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "(unparsable PostgreSQL URL)"
    dbname = unquote(parts.path.lstrip("/")) or parts.username or "postgres"
    return f"{host}:{port}/{dbname}"


def password_of(url: str) -> str | None:
    """The password in a URL (for the log filter to redact), or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def user_of(url: str) -> str | None:
    try:
        user = urlsplit(url).username
    except ValueError:
        return None
    return unquote(user) if user else None


def check_url(url: str) -> None:
    """:class:`StorageError` (kind ``bad_url``) unless ``url`` is a usable PostgreSQL URL."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        raise StorageError(
            "SESSION_BUDDY_DATABASE_URL is not a valid URL", kind="bad_url", fix=URL_FIX
        ) from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise StorageError(
            "SESSION_BUDDY_DATABASE_URL must start with postgresql:// "
            f"(got {parts.scheme or 'no'} scheme)",
            kind="bad_url",
            fix=URL_FIX,
        )
