"""Server logging: stderr only, and no token, Authorization header or secret in any line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from session_buddy.mcp.logs import REDACTED, configure_logging, parse_level, redact
from testkit.environment import new_secret
from testkit.tokens import mint

SECRET = new_secret()
TOKEN = mint(SECRET, "alice")
SIGNATURE = TOKEN.split(".")[2]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)


# -- redact() -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"verifying {TOKEN} now", f"verifying {REDACTED} now"),
        ("header eyJhbGciOiJIUzI1NiJ9 only", f"header {REDACTED} only"),
        ("Authorization: Bearer opaque-credential", f"Authorization: Bearer {REDACTED}"),
        ("(b'authorization', b'bearer opaque')", f"(b'authorization', b'bearer {REDACTED}')"),
        ('{"token": "opaque-value", "n": 1}', f'{{"token": "{REDACTED}", "n": 1}}'),
        ("{'token': 'opaque-value'}", f"{{'token': '{REDACTED}'}}"),
        ("call(token='opaque-value')", f"call(token='{REDACTED}')"),
        ('{\\"token\\": \\"opaque\\"}', f'{{\\"token\\": \\"{REDACTED}\\"}}'),
        ('"TOKEN":"opaque"', f'"TOKEN":"{REDACTED}"'),
        ("GET /mcp?token=opaque&x=1", f"GET /mcp?token={REDACTED}&x=1"),
    ],
)
def test_credentials_are_redacted(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_configured_secrets_are_redacted_wherever_they_appear() -> None:
    assert redact(f"secret={SECRET}!", secrets=[SECRET]) == f"secret={REDACTED}!"


@pytest.mark.parametrize(
    "text",
    [
        "session 3f2a started by alice in /tmp/project",
        "authentication failed: reason=expired tool=whoami client=stdio token_fp=0123456789ab",
        "arguments {'token': None, 'limit': 20}",
        "Token has expired",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


# -- the handler, at DEBUG, with the SDK's and uvicorn's loggers ----------------------------


def test_every_line_of_every_logger_is_redacted_at_debug(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", secrets=[SECRET])
    logging.getLogger("mcp.server.lowlevel.server").debug(
        "received %r", {"method": "tools/call", "params": {"arguments": {"token": "opaque-1"}}}
    )
    logging.getLogger("mcp.server.streamable_http").debug("headers %s", {"authorization": TOKEN})
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "POST", f"/mcp?token={TOKEN}", "1.1", 200
    )
    logging.getLogger("httpx").debug("send headers [(b'authorization', b'Bearer opaque-2')]")
    logging.getLogger("session_buddy.config").warning("loaded secret %s", SECRET)
    try:
        raise ValueError(f"could not verify {TOKEN}")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("request failed for token=%r", "opaque-3")
    captured = capsys.readouterr()
    assert captured.out == ""
    for leaked in (TOKEN, SIGNATURE, "eyJ", "opaque-1", "opaque-2", "opaque-3", SECRET):
        assert leaked not in captured.err
    assert "DEBUG mcp.server.lowlevel.server: received" in captured.err
    assert "INFO uvicorn.access: 127.0.0.1:5000" in captured.err
    assert "ValueError: could not verify" in captured.err  # the traceback survives, redacted


def test_a_broken_format_string_is_still_logged_without_its_arguments(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO")
    logging.getLogger("somewhere").info("count %d", "opaque-4")
    err = capsys.readouterr().err
    assert "count %d (unformattable arguments)" in err
    assert "opaque-4" not in err


def test_level_filters_lines(restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning")
    logging.getLogger("mcp").info("quiet")
    logging.getLogger("mcp").warning("loud")
    err = capsys.readouterr().err
    assert "quiet" not in err
    assert "loud" in err


def test_configuring_twice_keeps_one_handler(restore_logging: None) -> None:
    configure_logging("INFO")
    configure_logging("DEBUG")
    assert len(logging.getLogger().handlers) == 1


def test_log_levels_are_validated() -> None:
    assert parse_level("debug") == logging.DEBUG
    with pytest.raises(ValueError, match="'LOUD' is not one of DEBUG, INFO"):
        parse_level("LOUD")


# -- JSON lines ------------------------------------------------------------------------------


def test_json_format_is_one_object_per_line_with_redacted_fields(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", secrets=[SECRET], log_format="json")
    logger = logging.getLogger("session_buddy.auth")
    logger.warning(
        "refused %s", TOKEN, extra={"fields": {"reason": "expired", "leak": f"x {SECRET} y"}}
    )
    logger.info("plain line")

    lines = capsys.readouterr().err.splitlines()
    first, second = (json.loads(line) for line in lines)
    assert first["level"] == "WARNING" and first["logger"] == "session_buddy.auth"
    assert first["message"] == f"refused {REDACTED}"
    assert (first["reason"], first["leak"]) == ("expired", f"x {REDACTED} y")
    assert second["message"] == "plain line" and "reason" not in second
    assert TOKEN not in "\n".join(lines) and SECRET not in "\n".join(lines)


def test_a_database_url_password_is_redacted_anywhere() -> None:
    text = "connect postgresql://sb:s3cr%40t@db:5432/x failed"
    assert redact(text) == f"connect postgresql://sb:{REDACTED}@db:5432/x failed"


def test_a_token_sent_as_the_user_name_of_an_http_url_is_redacted() -> None:
    text = "project https://ghp_abc123@github.com/o/r and http://u:p@h/x"
    assert redact(text) == (
        f"project https://{REDACTED}@github.com/o/r and http://u:{REDACTED}@h/x"
    )
