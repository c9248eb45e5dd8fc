"""``session-buddy serve``: run the MCP server over stdio (default) or streamable HTTP."""

from __future__ import annotations

import enum
import logging
import socket
from pathlib import Path
from typing import Annotated

import typer

from session_buddy.cli.config import cli_settings, source_warnings, superuser_warning
from session_buddy.cli.output import fail
from session_buddy.config import (
    DEFAULT_HTTP_HOST,
    DEFAULT_HTTP_PORT,
    ResourceUrlError,
    SettingFileError,
    Settings,
)
from session_buddy.mcp.listen import ListenError, listen_http
from session_buddy.mcp.logs import configure_logging, parse_level
from session_buddy.runtime import Runtime
from session_buddy.store import StorageError
from session_buddy.store.urls import password_of

logger = logging.getLogger("session_buddy.serve")

DEFAULT_HOST = DEFAULT_HTTP_HOST
DEFAULT_PORT = DEFAULT_HTTP_PORT


class Transport(enum.StrEnum):
    stdio = "stdio"
    http = "http"


def _log_level(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_level(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value.upper()


def _known_secrets(settings: Settings) -> list[str]:
    """The secrets the log filter must never let through: signing secrets and the
    database URL's password (none of them if unreadable)."""
    try:
        current = settings.resolved_secret()
    except ValueError:
        current = None
    try:
        url = settings.resolved_database_url()
    except ValueError:
        url = None
    password = password_of(url) if url else None
    return [s for s in (current, *settings.previous_secret_values(), password) if s]


def serve(
    transport: Annotated[
        Transport,
        typer.Option(help="stdio: what Claude Code starts. http: streamable HTTP at /mcp."),
    ] = Transport.stdio,
    host: Annotated[str, typer.Option(help="Address to bind (http only).")] = DEFAULT_HOST,
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port to listen on (http only).")
    ] = DEFAULT_PORT,
    log_level: Annotated[
        str | None,
        typer.Option(
            callback=_log_level,
            help="DEBUG, INFO, WARNING, ERROR or CRITICAL (default: SESSION_BUDDY_LOG_LEVEL, "
            "else INFO). Logs go to stderr; tokens and secrets are redacted.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the database lives (default: SESSION_BUDDY_DATA_DIR, else the "
            "platform's user data dir). Sessions and revocations both live there.",
        ),
    ] = None,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            "--allow-unauthenticated",
            help="Serve over HTTP beyond loopback even with authentication disabled "
            "(also SESSION_BUDDY_ALLOW_UNAUTHENTICATED=true). Without it, such a server "
            "refuses to start.",
        ),
    ] = False,
) -> None:
    """Run the session-buddy MCP server.

    Examples: `session-buddy serve` (stdio, what Claude Code starts);
    `session-buddy serve --transport http --port 8678` (streamable HTTP at
    http://127.0.0.1:8678/mcp, health check at /healthz or /health; stateless with
    PostgreSQL, SESSION_BUDDY_STATELESS_HTTP; SIGTERM drains and exits 0);
    `SESSION_BUDDY_BEARER_ONLY=true SESSION_BUDDY_ALLOWED_HOSTS=sb.example.com:*
    session-buddy serve --transport http --host 0.0.0.0` (beyond loopback: tokens only in
    the Authorization header, Host checked). Beyond loopback an HTTP server without a
    secret refuses to start unless --allow-unauthenticated.
    """
    overrides: dict[str, object] = {}
    if log_level:
        overrides["log_level"] = log_level
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    settings = cli_settings(**overrides)
    try:
        parse_level(settings.log_level)
    except ValueError as exc:
        fail(f"Invalid configuration: SESSION_BUDDY_LOG_LEVEL: {exc}")
    configure_logging(
        settings.log_level, secrets=_known_secrets(settings), log_format=settings.log_format
    )
    for line in source_warnings(settings):
        logger.warning("⚠️ %s", line)
    http = transport is Transport.http
    try:
        resource_url = settings.effective_resource_url(host, port) if http else None
        runtime = Runtime.build(settings, resource_url=resource_url)
        runtime.auth.introspection_client  # noqa: B018 - a secret file that cannot be read
    except (StorageError, ResourceUrlError, SettingFileError) as exc:
        fail(str(exc), exc.fix)
    # A configuration or database that cannot work stops here, before the MCP SDK and
    # uvicorn are imported (they take a second, which a failing start should not pay).
    problem = runtime.auth.problem() if runtime.auth.secret_configured else None
    if problem is not None:
        fail(str(problem), problem.fix)
    if http:
        from session_buddy.mcp.exposure import UNAUTHENTICATED_FIX, review_http_exposure

        review = review_http_exposure(
            host,
            settings,
            auth_enabled=runtime.manager.enabled,
            allow_unauthenticated=allow_unauthenticated,
        )
        if review.refusal is not None:
            fail(review.refusal, UNAUTHENTICATED_FIX)
        for warning in review.warnings:
            logger.warning(warning)
        _check_resource_metadata(settings, resource_url)
    listening = _listen(host, port) if http else None
    try:
        _serve(runtime, settings, host, listening)
    finally:
        if listening is not None:
            listening.close()


def _check_resource_metadata(settings: Settings, resource: str | None) -> None:
    """Exit 1 with one line when the protected-resource metadata cannot name the resource
    URI (computed, or refused, by ``Settings.effective_resource_url`` already) and the
    issuers."""
    from session_buddy.mcp.resource_metadata import protected_resource_metadata

    if resource is None or not settings.oauth_issuers:
        return
    try:
        protected_resource_metadata(resource, settings.oauth_issuers)
    except ValueError as exc:
        fail(
            "Invalid configuration: SESSION_BUDDY_RESOURCE_URL or SESSION_BUDDY_OAUTH_ISSUER "
            f"is not an http(s) URL ({type(exc).__name__})",
            "give absolute URLs, e.g. https://sessions.example.com/mcp",
        )


def _listen(host: str, port: int) -> socket.socket:
    """The HTTP server's socket, bound before anything says it serves; or exit 1 with one
    line naming the port and the fix."""
    try:
        return listen_http(host, port)
    except ListenError as exc:
        fail(str(exc), exc.fix)


def _serve(
    runtime: Runtime, settings: Settings, host: str, listening: socket.socket | None
) -> None:
    """Open the database, build the server and serve (HTTP when ``listening``)."""
    http = listening is not None
    try:
        runtime.open()
    except StorageError as exc:
        fail(str(exc), exc.fix)
    superuser = superuser_warning(runtime.database)
    if superuser is not None:
        logger.warning("⚠️ %s", superuser)
    from session_buddy import collector
    from session_buddy.mcp import server as mcp_server
    from session_buddy.mcp.metrics import ServerMetrics
    from session_buddy.mcp.shutdown import Drain

    if runtime.auth_warning is not None:
        logging.getLogger("session_buddy.auth").warning(runtime.auth_warning)
    metrics = (
        ServerMetrics() if http and mcp_server.metrics_enabled(settings.metrics, host) else None
    )
    try:
        server = mcp_server.build_server(
            runtime, bearer_only=http and settings.http_bearer_only, metrics=metrics
        )
    except StorageError as exc:
        fail(str(exc), exc.fix)
    runtime.start_serving(http=http)
    try:
        if listening is None:
            collector.settle()
            mcp_server.run_stdio(server)
        else:
            drain = Drain()
            port = listening.getsockname()[1]
            app = mcp_server.build_http_app(server, runtime, host=host, port=port, drain=drain)
            collector.settle()  # start-up's objects out of the collector's sight
            mcp_server.run_http(
                app,
                listening,
                log_level=settings.log_level,
                trusted_proxies=settings.trusted_proxies,
                drain=drain,
            )
    finally:
        runtime.stop_serving()
        runtime.close()
