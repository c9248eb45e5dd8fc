"""Stopping an HTTP server without failing a call: SIGTERM drains, then stops, exit 0.

On the first SIGTERM (what systemd, ``docker stop`` and Kubernetes send):

1. ``GET /healthz`` (and ``/health``) answer ``503`` with ``"status": "stopping"`` at once,
   so a load balancer's health check takes the instance out of rotation;
2. the server keeps answering while requests keep arriving at ``/mcp``, each answer with
   ``Connection: close`` (so no idle kept-alive connection is left for a balancer to send
   the next request on just as it closes); it stops taking connections once none has
   arrived for :data:`QUIET_SECONDS` (the balancer sends them elsewhere now; an idle
   server stops at once), and after :data:`DRAIN_SECONDS` at most;
3. uvicorn lets the requests still running finish (:data:`GRACEFUL_SHUTDOWN_SECONDS` at
   most) and returns, so the caller writes the pending audit batch and closes the
   database, and the process exits 0: :data:`STOP_WITHIN_SECONDS` after the signal at most.

A second SIGTERM skips what is left of the drain. SIGINT (Ctrl+C) stops without draining,
as uvicorn does. Uvicorn alone re-raises SIGTERM once its shutdown is done, which killed
the process before the audit batch was written (exit -15); :class:`GracefulServer` handles
SIGTERM itself, so nothing is re-raised.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

QUIET_SECONDS = 0.5
DRAIN_SECONDS = 3.0
GRACEFUL_SHUTDOWN_SECONDS = 3  # for the requests still running once draining ends
# Writing the audit batch and closing the database take milliseconds; the interpreter's
# own exit (freeing every object) about 1.5 s on a busy two-core machine.
CLEANUP_SECONDS = 3.0
STOP_WITHIN_SECONDS = DRAIN_SECONDS + GRACEFUL_SHUTDOWN_SECONDS + CLEANUP_SECONDS
"""How long after SIGTERM the process has exited (with a reachable database): 9 s, within
the systemd unit's ``TimeoutStopSec=15``."""


class Drain:
    """Whether the server is stopping, and when ``/mcp`` last saw a request.

    ``clock`` is ``time.monotonic`` unless a test passes another.
    """

    def __init__(
        self,
        *,
        quiet_seconds: float = QUIET_SECONDS,
        limit_seconds: float = DRAIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet_seconds = quiet_seconds
        self.limit_seconds = limit_seconds
        self.clock = clock
        self.stopping_since: float | None = None
        self.last_request = -math.inf

    @property
    def stopping(self) -> bool:
        """True from the first SIGTERM on: health checks answer 503."""
        return self.stopping_since is not None

    def begin(self) -> None:
        if self.stopping_since is None:
            self.stopping_since = self.clock()
            logger.info("SIGTERM: health checks answer 503; serving while requests arrive")

    def saw_request(self) -> None:
        self.last_request = self.clock()

    def finished(self) -> bool:
        """Whether to stop taking connections now: stopping, and quiet or out of time."""
        if self.stopping_since is None:
            return False
        now = self.clock()
        return (
            now - self.last_request >= self.quiet_seconds
            or now - self.stopping_since >= self.limit_seconds
        )


class Draining:
    """ASGI middleware: tells ``drain`` of every HTTP request to ``path``, and once it is
    stopping, answers every request with ``Connection: close``."""

    def __init__(self, app: ASGIApp, *, drain: Drain, path: str) -> None:
        self.app = app
        self.drain = drain
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.path:
            self.drain.saw_request()

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.drain.stopping:
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, receive, closing)


class GracefulServer(uvicorn.Server):
    """Uvicorn's server, with SIGTERM draining as the module docstring says."""

    def __init__(self, config: uvicorn.Config, *, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
        elif self.drain.stopping:
            self.should_exit = True  # a second SIGTERM: stop draining now
        else:
            self.drain.begin()

    async def on_tick(self, counter: int) -> bool:
        if not self.should_exit and self.drain.finished():
            assert self.drain.stopping_since is not None
            logger.info(
                "SIGTERM: drained in %.1f s; stopping (running requests get %d s)",
                self.drain.clock() - self.drain.stopping_since,
                GRACEFUL_SHUTDOWN_SECONDS,
            )
            self.should_exit = True
        return await super().on_tick(counter)
