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
* the password of any ``scheme://user:password@`` URL, and the user name of an
  ``http(s)://user@`` URL (tokens travel there too);
* the configured secrets (and the database URL's password), verbatim, wherever they appear.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

REDACTED = "[REDACTED]"
FIELDS_ATTRIBUTE = "fields"  # logger.warning(..., extra={"fields": {...}})
LOG_FORMATS = ("text", "json")
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
# user@ in an http(s) URL: a token is often sent as the user name (https://<token>@host/…).
_HTTP_USER = re.compile(r"(?P<prefix>\bhttps?://)[^\s:/@]+@", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with tokens, bearer credentials and the given secrets replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _TOKEN_VALUE.sub(lambda m: f"{m['key']}{m['quote']}{REDACTED}{m['quote']}", text)
    text = _TOKEN_PARAMETER.sub(lambda m: f"{m['key']}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m['prefix']}{REDACTED}@", text)
    text = _HTTP_USER.sub(lambda m: f"{m['prefix']}{REDACTED}@", text)
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
        fields = getattr(record, FIELDS_ATTRIBUTE, None)
        if isinstance(fields, dict):
            setattr(record, FIELDS_ATTRIBUTE, self._redact_fields(fields))
        return True

    def _redact_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            key: redact(value, self._secrets) if isinstance(value, str) else value
            for key, value in fields.items()
        }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's structured
    fields (``extra={"fields": {...}}``, e.g. an auth event's reason, tool and client).
    The redacting filter has already run, so nothing here can carry a token or secret."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS_ATTRIBUTE, None)
        if isinstance(fields, dict):
            line.update({key: value for key, value in fields.items() if key not in line})
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def parse_level(name: str) -> int:
    """A level name (any case) as a number; ``ValueError`` naming the choices otherwise."""
    upper = name.strip().upper()
    if upper not in LEVELS:
        raise ValueError(f"log level {name!r} is not one of {', '.join(LEVELS)}")
    return int(logging.getLevelName(upper))


def configure_logging(
    level: str, secrets: Iterable[str] = (), *, log_format: str = "text"
) -> logging.Handler:
    """Send every logger's records to stderr through a redacting handler, at ``level``,
    as text lines or (``log_format="json"``) one JSON object per line.

    Replaces the root logger's handlers, so the MCP SDK's own ``basicConfig`` call later
    is a no-op. Returns the handler (tests attach it to their own streams).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(LOG_FORMAT))
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
