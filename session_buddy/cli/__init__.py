"""The ``session-buddy`` command line (typer + rich)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from session_buddy.cli import audit, auth_status, db, message, secret, serve, sessions, token
from session_buddy.cli.output import emit

app = typer.Typer(
    name="session-buddy",
    help="session-buddy: an MCP server that tracks AI-assisted coding sessions, "
    "protected by JWT authentication interoperable with Mahavishnu.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        emit(f"session-buddy {version('session-buddy')}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """session-buddy: an MCP server that tracks AI-assisted coding sessions, protected by
    JWT authentication interoperable with Mahavishnu."""


app.command(name="serve")(serve.serve)
app.add_typer(secret.app, name="secret")
app.add_typer(token.app, name="token")
app.add_typer(auth_status.app, name="auth")
app.add_typer(message.message_app, name="message")
app.add_typer(message.envelope_app, name="envelope")
app.add_typer(sessions.app, name="sessions")
app.add_typer(audit.app, name="audit")
app.add_typer(db.app, name="db")


def main() -> None:
    app()
