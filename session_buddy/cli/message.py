"""``session-buddy message …`` and ``envelope …``: Mahavishnu-compatible signed messages.

A message signature is Mahavishnu's: hex HMAC-SHA256 over ``json.dumps(message,
sort_keys=True)`` with the shared secret. An envelope adds sender, recipient, a timestamp
and a nonce; verification refuses stale, future-dated and replayed envelopes. Accepted
envelopes are remembered in the configured database, so a replay is refused by every later
``envelope verify`` and by every server's ``verify_envelope`` tool on that database.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from session_buddy.auth.config import AuthConfig
from session_buddy.auth.crossproject import CrossProjectAuth, NonceStore
from session_buddy.auth.errors import (
    GENERATE_FIX,
    SECRET_TOO_SHORT,
    SecretConfigError,
)
from session_buddy.cli.config import cli_runtime, cli_settings, fail_closed
from session_buddy.cli.output import emit, fail, success
from session_buddy.config import secret_from_variable, variables_for
from session_buddy.store import StorageError
from session_buddy.store.nonces import NonceRepository
from session_buddy.text import shorten

DEFAULT_SECRET_ENV = "SESSION_BUDDY_SECRET"

message_app = typer.Typer(
    help="Sign and verify cross-project messages (HMAC-SHA256, Mahavishnu's format).",
    no_args_is_help=True,
)
envelope_app = typer.Typer(
    help="Sign and verify replay-safe cross-project envelopes.", no_args_is_help=True
)

SecretEnv = Annotated[
    str,
    typer.Option(
        "--secret-env",
        metavar="NAME",
        help="Environment variable holding the shared secret. SESSION_BUDDY_SECRET (the "
        "default) also reads SESSION_BUDDY_SECRET_FILE, the .env file and BODAI_SHARED_SECRET; "
        "MAHAVISHNU_CROSS_PROJECT_AUTH_SECRET is what Mahavishnu signs cross-project "
        "messages with; MAHAVISHNU_AUTH__SECRET or MAHAVISHNU_AUTH_SECRET reads both, in "
        "that order (Mahavishnu's JWT secret).",
    ),
]


def shared_secret(
    variable: str,
    nonces: NonceStore | None = None,
    config: AuthConfig | None = None,
    recipient: str | None = None,
) -> CrossProjectAuth:
    """Signatures with the secret in ``variable`` (SESSION_BUDDY_SECRET: also its file/.env,
    from ``config`` when the command has read it already); envelopes must be addressed to
    ``recipient`` when given."""
    if variable == DEFAULT_SECRET_ENV:
        config = config if config is not None else AuthConfig(cli_settings())
        try:
            secret: str | None = config.secret
        except SecretConfigError as exc:
            if config.secret_configured:
                fail_closed(exc)
            secret = None
    else:
        secret = secret_from_variable(variable)
    if secret is None:
        names = " or ".join(variables_for(variable))
        fail(f"{names} is not set", f"export {variable}=<shared secret>, or {GENERATE_FIX}")
    try:
        return CrossProjectAuth(secret, nonces=nonces, recipient=recipient)
    except ValueError:
        fail(
            f"The secret in {variable} is unusable: {SECRET_TOO_SHORT.removeprefix('❌ ')}",
            SecretConfigError.fix,
        )


def _read(text: str) -> str:
    return sys.stdin.read() if text == "-" else text


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(_read(text))
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{what} is not valid JSON ({exc.msg})") from None


def parse_object(text: str, what: str) -> dict[str, Any]:
    value = parse_json(text, what)
    if not isinstance(value, dict):
        raise typer.BadParameter(f'{what} must be a JSON object, like \'{{"action": "sync"}}\'')
    return value


@message_app.command(
    "sign", epilog='Example:  session-buddy message sign \'{"action": "sync", "id": 7}\''
)
def message_sign(
    message: Annotated[str, typer.Argument(help="A JSON object, or '-' to read stdin.")],
    secret_env: SecretEnv = DEFAULT_SECRET_ENV,
) -> None:
    """Print the hex HMAC-SHA256 signature of a JSON message."""
    value = parse_object(message, "MESSAGE")
    emit(shared_secret(secret_env).sign_message(value))


@message_app.command(
    "verify",
    epilog='Example:  session-buddy message verify \'{"action": "sync", "id": 7}\' "$SIG" '
    "--secret-env MAHAVISHNU_CROSS_PROJECT_AUTH_SECRET",
)
def message_verify(
    message: Annotated[str, typer.Argument(help="The JSON object, or '-' to read stdin.")],
    signature: Annotated[str, typer.Argument(help="The hex signature to check.")],
    secret_env: SecretEnv = DEFAULT_SECRET_ENV,
) -> None:
    """Exit 0 when the signature matches the message and the shared secret, else 1."""
    value = parse_object(message, "MESSAGE")
    if not shared_secret(secret_env).verify_message(value, signature.strip()):
        fail(
            "Signature invalid",
            "sign the same JSON content with the same shared secret (key order does not matter)",
        )
    success("Signature valid.")


@envelope_app.command(
    "sign",
    epilog="Example:  session-buddy envelope sign mahavishnu session-buddy "
    '\'{"action": "checkpoint"}\' > envelope.json',
)
def envelope_sign(
    from_project: Annotated[str, typer.Argument(help="Sender project.")],
    to_project: Annotated[str, typer.Argument(help="Recipient project.")],
    content: Annotated[str, typer.Argument(help="Content as JSON, or '-' to read stdin.")],
    secret_env: SecretEnv = DEFAULT_SECRET_ENV,
) -> None:
    """Print a signed envelope (JSON) dated now, with a fresh nonce."""
    value = parse_json(content, "CONTENT")
    emit(json.dumps(shared_secret(secret_env).sign_envelope(from_project, to_project, value)))


@envelope_app.command("verify", epilog="Example:  session-buddy envelope verify - < envelope.json")
def envelope_verify(
    envelope: Annotated[str, typer.Argument(help="The envelope JSON, or '-' to read stdin.")],
    secret_env: SecretEnv = DEFAULT_SECRET_ENV,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="PROJECT",
            help="The recipient the envelope must name in to_project ('-' and '_' alike). "
            "Default: this server's name, SESSION_BUDDY_AUDIENCE (session-buddy).",
        ),
    ] = None,
) -> None:
    """Exit 0 for a correctly signed, fresh envelope addressed to us; 1 (and why) otherwise."""
    value = parse_object(envelope, "ENVELOPE")
    runtime = cli_runtime()
    recipient = to or runtime.settings.audience
    try:
        nonces = NonceRepository(runtime.database.open())
        auth = shared_secret(secret_env, nonces, runtime.auth, recipient)
        check = auth.check_envelope(value)
    except StorageError as exc:
        fail(str(exc), exc.fix)
    if check.accepted:
        success(
            f"Envelope valid: from {value['message']['from_project']} "
            f"to {value['message']['to_project']}."
        )
        return
    if check.problem == "bad_signature":
        fail(
            "Envelope invalid: bad signature",
            "sign it with the same shared secret and do not modify it",
        )
    if check.problem == "wrong_recipient":
        fail(
            f"Envelope rejected: addressed to "
            f"'{shorten(str(value['message']['to_project']), 80)}', not '{recipient}'",
            f"sign it for {recipient}, or pass --to with the project it names",
        )
    if check.problem == "replayed":
        fail(
            "Envelope rejected: already accepted once (a replay)",
            "sign a new envelope for every delivery",
        )
    fail(
        f"Envelope rejected: {check.explanation}",
        "sign a new envelope now (check both machines' clocks)",
    )
