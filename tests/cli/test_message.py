"""``session-buddy message sign|verify`` and ``envelope sign|verify``."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from session_buddy.auth.crossproject import CrossProjectAuth
from testkit.cli import CliEnv

MESSAGE = {"action": "sync", "id": 7, "nested": {"b": 1, "a": [1, 2]}}


def mahavishnu_signature(message: dict, secret: str) -> str:
    data = json.dumps(message, sort_keys=True).encode()
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def test_sign_produces_mahavishnus_signature(cli: CliEnv) -> None:
    result = cli.run("message", "sign", json.dumps(MESSAGE))
    assert result.exit_code == 0
    assert result.stdout == mahavishnu_signature(MESSAGE, cli.secret) + "\n"


def test_verify_accepts_a_mahavishnu_signature_whatever_the_key_order(cli: CliEnv) -> None:
    signature = mahavishnu_signature(MESSAGE, cli.secret)
    reordered = json.dumps(dict(reversed(list(MESSAGE.items()))))
    result = cli.run("message", "verify", reordered, signature)
    assert result.exit_code == 0
    assert "Signature valid" in result.stdout


def test_verify_rejects_a_modified_message(cli: CliEnv) -> None:
    signature = mahavishnu_signature(MESSAGE, cli.secret)
    result = cli.run("message", "verify", json.dumps({**MESSAGE, "id": 8}), signature)
    assert result.exit_code == 1
    assert "Signature invalid" in result.stderr


def test_secret_env_selects_another_variable(cli: CliEnv) -> None:
    shared = "m" * 40
    cli.set("MAHAVISHNU_AUTH_SECRET", shared)
    signature = mahavishnu_signature(MESSAGE, shared)
    args = ("--secret-env", "MAHAVISHNU_AUTH_SECRET")
    assert cli.run("message", "verify", json.dumps(MESSAGE), signature, *args).exit_code == 0
    assert cli.run("message", "verify", json.dumps(MESSAGE), signature).exit_code == 1


def test_missing_secret_variable_is_an_error_with_the_fix(cli: CliEnv) -> None:
    result = cli.run("message", "sign", "{}", "--secret-env", "NOT_SET_ANYWHERE")
    assert result.exit_code == 1
    assert "NOT_SET_ANYWHERE is not set" in result.stderr


def test_short_shared_secret_is_refused(cli: CliEnv) -> None:
    cli.set("SHORT_SECRET", "abc")
    result = cli.run("message", "sign", "{}", "--secret-env", "SHORT_SECRET")
    assert result.exit_code == 1
    assert "at least 32 characters" in result.stderr
    assert "abc" not in result.output


def test_non_object_message_is_a_usage_error(cli: CliEnv) -> None:
    assert cli.run("message", "sign", "[1, 2]").exit_code == 2
    assert cli.run("message", "sign", "{not json").exit_code == 2


def test_message_can_come_from_stdin(cli: CliEnv) -> None:
    result = cli.run("message", "sign", "-", input=json.dumps(MESSAGE))
    assert result.stdout.strip() == mahavishnu_signature(MESSAGE, cli.secret)


def test_envelope_round_trip(cli: CliEnv) -> None:
    signed = cli.run("envelope", "sign", "mahavishnu", "session-buddy", '{"action": "checkpoint"}')
    envelope = json.loads(signed.stdout)
    assert envelope["message"]["content"] == {"action": "checkpoint"}
    assert envelope["algorithm"] == "HMAC-SHA256"
    result = cli.run("envelope", "verify", "-", input=signed.stdout)
    assert result.exit_code == 0
    assert "from mahavishnu to session-buddy" in result.stdout


def test_envelope_signed_by_the_cli_verifies_in_python(cli: CliEnv) -> None:
    signed = cli.run("envelope", "sign", "a", "b", '"hello"')
    assert CrossProjectAuth(cli.secret).verify_envelope(json.loads(signed.stdout))


def test_tampered_envelope_is_rejected(cli: CliEnv) -> None:
    envelope = json.loads(cli.run("envelope", "sign", "a", "b", "1").stdout)
    envelope["message"]["to_project"] = "c"
    result = cli.run("envelope", "verify", json.dumps(envelope))
    assert result.exit_code == 1
    assert "bad signature" in result.stderr


def test_stale_envelope_is_rejected(cli: CliEnv) -> None:
    old = (datetime.now(UTC) - timedelta(minutes=10)).timestamp()
    signer = CrossProjectAuth(cli.secret, clock=lambda: old)
    envelope = signer.sign_envelope("a", "session-buddy", 1)
    result = cli.run("envelope", "verify", json.dumps(envelope))
    assert result.exit_code == 1
    assert "stale" in result.stderr


@pytest.mark.parametrize("recipient", ["session-buddy", "session_buddy"])
def test_an_envelope_for_us_under_either_spelling_is_valid(cli: CliEnv, recipient: str) -> None:
    signed = cli.run("envelope", "sign", "mahavishnu", recipient, "{}")
    assert cli.run("envelope", "verify", "-", input=signed.stdout).exit_code == 0


def test_an_envelope_addressed_to_another_project_is_rejected_and_not_spent(cli: CliEnv) -> None:
    signed = cli.run("envelope", "sign", "mahavishnu", "crackerjack", '{"n": 1}')

    refused = cli.run("envelope", "verify", "-", input=signed.stdout)
    for_them = cli.run("envelope", "verify", "-", "--to", "crackerjack", input=signed.stdout)

    assert refused.exit_code == 1
    assert "addressed to 'crackerjack', not 'session-buddy'" in refused.stderr
    assert "--to" in refused.stderr
    assert for_them.exit_code == 0, for_them.output


def test_the_recipient_is_the_configured_audience(cli: CliEnv) -> None:
    cli.set("SESSION_BUDDY_AUDIENCE", "buddy-eu")
    to_default = cli.run("envelope", "sign", "mahavishnu", "session-buddy", "{}").stdout
    to_us = cli.run("envelope", "sign", "mahavishnu", "buddy-eu", "{}").stdout

    assert cli.run("envelope", "verify", "-", input=to_default).exit_code == 1
    assert cli.run("envelope", "verify", "-", input=to_us).exit_code == 0


def test_either_name_of_mahavishnus_secret_reads_both_settings_name_first(cli: CliEnv) -> None:
    settings_name, docs_name = "s" * 40, "d" * 40
    cli.set("MAHAVISHNU_AUTH_SECRET", docs_name)
    for name in ("MAHAVISHNU_AUTH__SECRET", "MAHAVISHNU_AUTH_SECRET"):
        signed = cli.run("message", "sign", json.dumps(MESSAGE), "--secret-env", name)
        assert signed.stdout.strip() == mahavishnu_signature(MESSAGE, docs_name)
    cli.set("MAHAVISHNU_AUTH__SECRET", settings_name)
    for name in ("MAHAVISHNU_AUTH__SECRET", "MAHAVISHNU_AUTH_SECRET"):
        signed = cli.run("message", "sign", json.dumps(MESSAGE), "--secret-env", name)
        assert signed.stdout.strip() == mahavishnu_signature(MESSAGE, settings_name)


def test_mahavishnus_cross_project_secret_signs_and_verifies_envelopes(cli: CliEnv) -> None:
    cross = "c" * 40
    cli.set("MAHAVISHNU_CROSS_PROJECT_AUTH_SECRET", cross)
    args = ("--secret-env", "MAHAVISHNU_CROSS_PROJECT_AUTH_SECRET")
    signature = mahavishnu_signature(MESSAGE, cross)
    assert cli.run("message", "verify", json.dumps(MESSAGE), signature, *args).exit_code == 0
    envelope = cli.run("envelope", "sign", "mahavishnu", "session-buddy", "{}", *args).stdout
    assert CrossProjectAuth(cross).verify_envelope(json.loads(envelope))


def test_an_unset_mahavishnu_secret_names_both_variables(cli: CliEnv) -> None:
    result = cli.run("message", "sign", "{}", "--secret-env", "MAHAVISHNU_AUTH_SECRET")
    assert result.exit_code == 1
    assert "MAHAVISHNU_AUTH__SECRET or MAHAVISHNU_AUTH_SECRET is not set" in result.stderr


def test_the_default_secret_falls_back_to_bodai_shared_secret(cli: CliEnv) -> None:
    cli.unset("SESSION_BUDDY_SECRET")
    cli.set("BODAI_SHARED_SECRET", "b" * 40)
    result = cli.run("message", "sign", json.dumps(MESSAGE))
    assert result.stdout.strip() == mahavishnu_signature(MESSAGE, "b" * 40)
