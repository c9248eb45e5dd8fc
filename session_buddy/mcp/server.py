"""Build the session-buddy MCP server and run it over stdio or streamable HTTP.

:func:`build_server` opens the runtime's database and registers the tools;
:func:`build_http_app` wraps the SDK's streamable HTTP app (``/mcp``, plus ``GET
/healthz`` and ``GET /health``) in the bearer middleware, stateless or with MCP sessions;
:func:`run_stdio` and :func:`run_http` serve (the latter on the socket
:func:`~session_buddy.mcp.listen.listen_http` bound, draining on SIGTERM:
:mod:`session_buddy.mcp.shutdown`).
``session-buddy serve`` (in :mod:`session_buddy.cli.serve`) builds one
:class:`~session_buddy.runtime.Runtime` from its settings, checks that its configuration
and database can work, and strings these together: the tools, the middleware and the
throttle all get their parts from that runtime, so sessions and revocations share one
database.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import anyio.from_thread
import anyio.to_thread
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from session_buddy.auth.manager import JWTManager
from session_buddy.config import is_loopback
from session_buddy.mcp.challenge import BearerChallenge
from session_buddy.mcp.exposure import transport_security
from session_buddy.mcp.http_auth import bearer_authentication
from session_buddy.mcp.listen import LISTEN_BACKLOG
from session_buddy.mcp.metrics import METRICS_PATH, ServerMetrics
from session_buddy.mcp.protocol import ProtocolServer, protocol_http_app
from session_buddy.mcp.resource_metadata import (
    ProtectedResourceMetadataApp,
    metadata_url,
    resource_url,
)
from session_buddy.mcp.shutdown import (
    GRACEFUL_SHUTDOWN_SECONDS,
    Drain,
    Draining,
    GracefulServer,
)
from session_buddy.mcp.tools import SESSION_SCOPES_IMPLIED_BY, SessionTools
from session_buddy.runtime import Runtime
from session_buddy.store import Database, StorageError

logger = logging.getLogger(__name__)

SERVER_NAME = "session-buddy"
MCP_PATH = "/mcp"
HEALTH_PATHS = ("/healthz", "/health")  # /health: where Mahavishnu checks
# Every answer to a POST is one JSON body rather than an SSE stream, with MCP sessions and
# without (cheaper: make bench, parts stateless and overhead; no tool of ours sends anything
# but its answer). Changed only by benchmarks.answer_format, to measure the other format.
JSON_RESPONSE = True
# uvicorn's event loop and HTTP parser. "auto" takes uvloop (a dependency of ours where it
# builds: CPython off Windows) and falls back to asyncio without it. The parser is h11,
# never httptools even when installed: httptools hands the app a header block of any size
# (a 10 MB header, measured) and keeps trailing blanks in values that RFC 9110 leaves out;
# h11 bounds the block (uvicorn's 16 KB incomplete-event limit) and strips them. Changed
# only by benchmarks.http_stack, to measure the pure-asyncio loop.
UVICORN_LOOP = "auto"
UVICORN_HTTP = "h11"
# /healthz waits this long for a database connection, and this long for any answer at all
# (a database that accepted the query and went silent): under 1 s, as load balancers expect.
HEALTH_CONNECT_SECONDS = 0.5
HEALTH_DEADLINE_SECONDS = 0.8
HEALTH_RETRY_AFTER_SECONDS = 5

_ABOUT = """\
session-buddy keeps track of coding sessions per project directory.
Call start_session with the absolute path of the project when you begin work,
checkpoint as you reach milestones, and end_session (with a summary) to get a Markdown
hand-off for whoever continues. session_status and list_sessions report; whoami says
who the server thinks you are.\
"""
INSTRUCTIONS = f"""{_ABOUT} When authentication is enabled, pass your JWT as the
`token` argument of every call (or, over HTTP, send `Authorization: Bearer <jwt>`).\
"""
BEARER_ONLY_INSTRUCTIONS = f"""{_ABOUT} Your client sends the JWT in the
`Authorization: Bearer` header; never pass a `token` argument.\
"""


def _package_version() -> str:
    try:
        return version("session-buddy")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


VERSION = _package_version()


def build_server(
    runtime: Runtime, *, bearer_only: bool = False, metrics: ServerMetrics | None = None
) -> MCPServer:
    """The MCP server with every tool, on the runtime's database (opened here).

    ``bearer_only`` (an HTTP server with ``SESSION_BUDDY_BEARER_ONLY``): the tools refuse
    a ``token`` argument and do not publish it. ``metrics``: count and time every tool
    call and decision, and serve them at ``/metrics``. Raises :class:`StorageError`
    (naming the file) when the database cannot be used.
    """
    runtime.open()
    instructions = BEARER_ONLY_INSTRUCTIONS if bearer_only else INSTRUCTIONS
    server = ProtocolServer(SERVER_NAME, version=VERSION, instructions=instructions)
    envelopes = runtime.envelopes if runtime.auth.problem() is None else None
    SessionTools(
        runtime.sessions, runtime.manager, envelopes, bearer_only=bearer_only, metrics=metrics
    ).register(server)
    if metrics is not None:
        _attach_metrics(metrics, runtime)
        server.custom_route(METRICS_PATH, methods=["GET"], include_in_schema=False)(
            metrics.endpoint
        )
    return server


def _attach_metrics(metrics: ServerMetrics, runtime: Runtime) -> None:
    """Feed ``metrics`` from the runtime: decisions, gauges, revocation propagation."""
    runtime.decisions.add(metrics)
    revocations = runtime.revocations
    revocations.add_learned_listener(metrics.observe_propagation)
    metrics.watch(
        throttled_clients=runtime.throttle.blocked_count,
        revoked_tokens=lambda: revocations.known,
        audit_dropped=lambda: runtime.audit.dropped,
    )


def metrics_enabled(setting: bool | None, host: str) -> bool:
    """``SESSION_BUDDY_METRICS``, or by default: on when bound to a loopback address."""
    if setting is not None:
        return setting
    return is_loopback(host)


def stateless_http_enabled(setting: bool | None, database: Database) -> bool:
    """``SESSION_BUDDY_STATELESS_HTTP``, or by default: on when the database is PostgreSQL
    (several instances, likely behind a load balancer), off for the SQLite file."""
    if setting is not None:
        return setting
    return database.dialect.name == "postgresql"


def build_http_app(
    server: MCPServer,
    runtime: Runtime,
    *,
    host: str,
    port: int | None = None,
    drain: Drain | None = None,
) -> ASGIApp:
    """The streamable HTTP app at ``/mcp`` (and the health check) behind the bearer
    middleware.

    With an OAuth issuer configured, the Protected Resource Metadata of
    :func:`~session_buddy.mcp.resource_metadata.resource_url` (for ``host``:``port``) is
    served in front of it, and every 401 and 403 points to it. Bearer-only servers
    (``SESSION_BUDDY_BEARER_ONLY``; by default with an issuer) answer a request without
    credentials 401, ``/healthz`` and ``/metrics`` excepted; a ``tools/call`` whose bearer
    token lacks the tool's scope gets 403 ``insufficient_scope`` (the spec's step-up).

    ``host`` is what the server binds: on every loopback host the SDK's DNS rebinding
    protection is on (only loopback ``Host`` and ``Origin`` headers accepted);
    ``SESSION_BUDDY_ALLOWED_HOSTS`` / ``_ORIGINS`` add names and keep it on for any host
    (:func:`~session_buddy.mcp.exposure.transport_security`). Between the two, the
    protocol answers the SDK gets wrong (:func:`~session_buddy.mcp.protocol.protocol_http_app`).

    Stateless (:func:`stateless_http_enabled`): no MCP sessions, every request answered on
    its own, so any instance behind a balancer answers any request; the server then sends
    the client nothing outside the answer to its request. With MCP sessions, each belongs
    to the verified caller that opened it (:class:`~session_buddy.mcp.request.BearerUser`).
    Either way a POST's answer is one JSON body (:data:`JSON_RESPONSE`). ``drain``: the
    health check answers 503 once it is stopping, and it hears of every request to
    ``/mcp`` (:mod:`session_buddy.mcp.shutdown`).
    """
    drain = drain if drain is not None else Drain()
    stateless = stateless_http_enabled(runtime.settings.stateless_http, runtime.database)
    health = _health_endpoint(runtime.database, runtime.manager, drain)
    for path in HEALTH_PATHS:
        server.custom_route(path, methods=["GET"], include_in_schema=False)(health)
    sdk_app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        host=host,
        transport_security=transport_security(host, runtime.settings),
        max_request_body_size=DEFAULT_MAX_REQUEST_BODY_SIZE,
        stateless_http=stateless,
        json_response=JSON_RESPONSE,
    )
    app = protocol_http_app(
        sdk_app,
        max_body_bytes=DEFAULT_MAX_REQUEST_BODY_SIZE,
        stateless_path=MCP_PATH if stateless else None,
    )
    settings = runtime.settings
    resource = resource_url(settings, host, port) if port is not None else settings.resource_url
    published = resource is not None and bool(settings.oauth_issuers)
    tool_scopes = SessionTools.scopes()
    challenge = BearerChallenge(
        resource_metadata=metadata_url(resource) if published and resource else None,
        scope=" ".join(sorted({scope for scope in tool_scopes.values() if scope})),
    )
    app = bearer_authentication(
        app,
        verification=runtime.verification,
        failure_log=runtime.failure_log,
        throttle=runtime.throttle,
        recorders=runtime.decisions,
        tools=SessionTools.names(),
        challenge=challenge,
        tool_scopes=tool_scopes,
        implied_by=SESSION_SCOPES_IMPLIED_BY,
        require_scopes=runtime.auth.require_scopes,
        credentials_required=settings.http_bearer_only and runtime.auth.auth_required,
        public_paths=(*HEALTH_PATHS, METRICS_PATH),
    )
    if published and resource:
        app = ProtectedResourceMetadataApp(app, resource=resource, issuers=settings.oauth_issuers)
    return Draining(app, drain=drain, path=MCP_PATH)


def run_stdio(server: MCPServer) -> None:
    """Serve one client over stdin/stdout until it disconnects."""
    logger.info("%s %s serving MCP over stdio", SERVER_NAME, VERSION)
    server.run("stdio")


def run_http(
    app: ASGIApp,
    sock: socket.socket,
    *,
    log_level: str,
    trusted_proxies: Sequence[str] = (),
    drain: Drain | None = None,
) -> None:
    """Serve ``app`` on ``sock`` (bound by :func:`~session_buddy.mcp.listen.listen_http`)
    with uvicorn until interrupted; logs go through the root handler. The socket is closed
    when serving ends. "serving" is logged only now, with the socket listening.

    Uvicorn's access log is off: one line per request would let a flood of bad requests
    fill the disk. Refused credentials are logged by the rate-limited auth failure log.

    The client is the TCP peer. Only when ``trusted_proxies`` (``SESSION_BUDDY_TRUSTED_
    PROXIES``: addresses or CIDR networks) is set does uvicorn's proxy-header middleware
    run, and it believes ``X-Forwarded-For``/``-Proto`` from those peers alone, taking the
    nearest untrusted address in the chain as the client. (Uvicorn's own default trusts
    them from loopback, and its ``FORWARDED_ALLOW_IPS`` is never consulted.) The throttle,
    the failure log and the audit trail all read the client from there.

    SIGTERM drains (``drain``, the one :func:`build_http_app` got) and returns normally, so
    the caller's clean-up runs; see :mod:`session_buddy.mcp.shutdown`.
    """
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    logger.info("%s %s serving MCP at http://%s:%d%s", SERVER_NAME, VERSION, shown, port, MCP_PATH)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        backlog=LISTEN_BACKLOG,
        loop=UVICORN_LOOP,
        http=UVICORN_HTTP,
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies),
    )
    with sock:
        GracefulServer(config, drain=drain if drain is not None else Drain()).run(sockets=[sock])


def _health_endpoint(
    database: Database, manager: JWTManager, drain: Drain
) -> Callable[[Request], Awaitable[Response]]:
    probe = _HealthProbe(database)

    async def healthz(request: Request) -> Response:
        """200 when the server answers and its database is readable, else 503 with
        ``Retry-After`` — within ``HEALTH_DEADLINE_SECONDS`` either way; 503 at once when
        it is stopping, so a load balancer sends requests elsewhere."""
        if drain.stopping:
            return JSONResponse({"status": "stopping"}, status_code=503)
        problem = await probe.problem()
        if problem is not None:
            return JSONResponse(
                {"status": "error", "detail": problem},
                status_code=503,
                headers={"Retry-After": str(HEALTH_RETRY_AFTER_SECONDS)},
            )
        return JSONResponse(
            {
                "status": "ok",
                "server": SERVER_NAME,
                "version": VERSION,
                "auth_enabled": manager.enabled,
            }
        )

    return healthz


@dataclass
class _Ping:
    """One ping of the database, shared by every health check that arrives while it runs."""

    done: anyio.Event = field(default_factory=anyio.Event)
    problem: str | None = "the health check failed"


class _HealthProbe:
    """Pings the database for ``/healthz``, one ping at a time: checks arriving while it
    runs share its answer, each gives up at ``HEALTH_DEADLINE_SECONDS``, and a ping that
    hangs (a database gone silent) holds one thread, not one per check."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._ping: _Ping | None = None  # the ping under way (touched on the event loop only)

    async def problem(self) -> str | None:
        """None when the database answered, else what is wrong with it."""
        with anyio.move_on_after(HEALTH_DEADLINE_SECONDS):
            ping = self._ping
            if ping is None:
                ping = self._ping = _Ping()
                await anyio.to_thread.run_sync(self._run, ping, abandon_on_cancel=True)
            await ping.done.wait()
            return ping.problem
        return f"database {self._database.display}: no answer within {HEALTH_DEADLINE_SECONDS:g} s"

    def _run(self, ping: _Ping) -> None:
        """In a worker thread: the ping, then its answer handed to the event loop."""
        try:
            self._database.ping(HEALTH_CONNECT_SECONDS)
            ping.problem = None
        except StorageError as exc:
            ping.problem = str(exc)
        finally:
            with suppress(RuntimeError):  # the server stopped meanwhile
                anyio.from_thread.run_sync(self._finish, ping)

    def _finish(self, ping: _Ping) -> None:
        if self._ping is ping:
            self._ping = None
        ping.done.set()
