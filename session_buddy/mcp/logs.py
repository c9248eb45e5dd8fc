"""Server logging: one stderr handler, and no token or secret in any line it writes.

stdout belongs to the MCP protocol on the stdio transport, so everything goes to stderr.
The handler carries a :class:`RedactingFilter`; loggers of the project, the MCP SDK,
uvicorn and everything else propagate to it, so redaction applies to every line at every
level. The filter rewrites the formatted message (after ``%`` formatting, so tokens in
``args`` are caught too), the rendered traceback and the stack info of each record:

* JWT-looking strings (``eyJ…`` base64url, with or without the ``.…`` segments);
* ``Bearer <anything>`` (Authorization headers, in any case, quoted or as bytes);
* the value of a ``token`` key: ``"token": "…"``, ``'token': '…'``, ``token='…'``, and of
  a ``token`` query parameter (``?token=…``);
* the password of any ``scheme://user:password@`` URL;
* the configured secrets (and the database URL's password), verbatim, wherever they appear.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

REDACTED = "[REDACTED]"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_TOKEN_VALUE = re.compile(
    r"""(?P<key>\\*["']token\\*["']\s*:\s*|\btoken\s*=\s*)(?P<quote>\\*["'])(?P<value>.*?)(?P=quote)""",
    re.IGNORECASE | re.DOTALL,
)
_TOKEN_PARAMETER = re.compile(r"(?P<key>[?&;]token=)[^&\s\"'#]+", re.IGNORECASE)
_BEARER = re.compile(r"""\b(?P<scheme>bearer)\s+[^\s"',;)\]}]+""", re.IGNORECASE)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*){0,2}")
# user:password@ in any URL (a database URL in a driver's message, say).
_URL_PASSWORD = re.compile(r"(?P<prefix>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with tokens, bearer credentials and the given secrets replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _TOKEN_VALUE.sub(lambda m: f"{m['key']}{m['quote']}{REDACTED}{m['quote']}", text)
    text = _TOKEN_PARAMETER.sub(lambda m: f"{m['key']}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m['prefix']}{REDACTED}@", text)
    return _JWT.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Redacts each record in place before any handler formats it (see the module doc)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the line, or leak its args
            message = f"{record.msg} (unformattable arguments)"
        record.msg = redact(message, self._secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True


def parse_level(name: str) -> int:
    """A level name (any case) as a number; ``ValueError`` naming the choices otherwise."""
    upper = name.strip().upper()
    if upper not in LEVELS:
        raise ValueError(f"log level {name!r} is not one of {', '.join(LEVELS)}")
    return int(logging.getLevelName(upper))


def configure_logging(level: str, secrets: Iterable[str] = ()) -> logging.Handler:
    """Send every logger's records to stderr through a redacting handler, at ``level``.

    Replaces the root logger's handlers, so the MCP SDK's own ``basicConfig`` call later
    is a no-op. Returns the handler (tests attach it to their own streams).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    if parse_level(level) > logging.DEBUG:
        # The pool logs every failed reconnection, Alembic every step of a migration; our
        # own lines report an outage, or a migration, once.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        logging.getLogger("alembic").setLevel(logging.WARNING)
    root.setLevel(parse_level(level))
    logging.captureWarnings(True)
    return handler
