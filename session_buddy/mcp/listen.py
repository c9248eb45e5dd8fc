"""The HTTP server's listening socket, bound before anything says it serves.

``session-buddy serve --transport http`` binds its port here, before it opens the database
or imports the MCP SDK and uvicorn, and hands the socket to
:func:`~session_buddy.mcp.server.run_http`. A port in use, a port that needs privileges or
an address this machine does not have is then one :class:`ListenError` naming the port (or
address) and the fix — never a "serving" line followed by uvicorn's ``[Errno 98]``.
"""

from __future__ import annotations

import errno
import socket

LISTEN_BACKLOG = 2048  # uvicorn's default


class ListenError(Exception):
    """The HTTP server cannot listen where it was asked to. ``str()`` names the address;
    ``kind`` (``"in_use"``, ``"not_permitted"``, ``"no_such_address"``, ``"failed"``) says
    why and ``fix`` what to do."""

    def __init__(self, message: str, *, kind: str, fix: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.fix = fix

    @classmethod
    def of(cls, exc: OSError, host: str, port: int) -> ListenError:
        """The error for what ``bind``/``listen`` raised."""
        if exc.errno == errno.EADDRINUSE:
            return cls(
                f"Port {port} on {host} is already in use (another session-buddy, or another "
                "program)",
                kind="in_use",
                fix=f"stop it (ss -ltnp 'sport = :{port}' shows which), or start this server "
                "with --port and a free port",
            )
        if exc.errno == errno.EACCES:
            return cls(
                f"Port {port} on {host} needs privileges to listen on",
                kind="not_permitted",
                fix="choose a port above 1023 with --port",
            )
        if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
            return cls(
                f"{host} is not an address of this machine",
                kind="no_such_address",
                fix="pass --host 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)",
            )
        return cls(
            f"Cannot listen on {host} port {port}: {exc.strerror or exc}",
            kind="failed",
            fix="check --host and --port",
        )


def listen_http(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening (as uvicorn would bind it: IPv6 for an
    address with a colon, ``SO_REUSEADDR``), or :class:`ListenError`. Connections queue
    from this moment and are answered once the server runs.

    The socket names its protocol (``IPPROTO_TCP``): asyncio switches Nagle's algorithm
    off only on connections that do, and with it on, every answer on a kept-alive
    connection waits about 40 ms for the client's delayed acknowledgement."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        raise ListenError.of(exc, host, port) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ListenError.of(exc, host, port) from None
    return sock
