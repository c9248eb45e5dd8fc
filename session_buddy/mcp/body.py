"""A request's body, read at most once — only when something must look at it — and then
replayed unchanged to the app behind.

The HTTP authentication layer looks into a body for two reasons, never on the way of a
request it lets through untouched: the failure throttle, for the ``token`` arguments of a
blocked client's ``tools/call``; the refusal report, for the tool or method a refused
request asked for (the audit's action). Both share one :class:`RequestBody`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Receive

MAX_INSPECTED_BODY_BYTES = 4 * 1024 * 1024  # the SDK's own request body limit


class RequestBody:
    """The body behind ``receive``, read on first demand, at most ``limit`` bytes."""

    def __init__(self, receive: Receive, limit: int = MAX_INSPECTED_BODY_BYTES) -> None:
        self._receive = receive
        self._limit = limit
        self._read = False
        self._content: bytes | None = None
        self._parsed: Any = None

    async def read(self) -> bytes | None:
        """The whole body, or None when it exceeds the limit or the client left."""
        if not self._read:
            self._read = True
            self._content = await self._read_all()
            self._parsed = _json_of(self._content)
        return self._content

    async def json(self) -> Any:
        """The body parsed as JSON; None when there is none or it is not JSON."""
        await self.read()
        return self._parsed

    def replay(self) -> Receive:
        """A ``receive`` for the app behind: the body already read, once, then the
        request's own ``receive`` (disconnects and the like)."""
        content, sent = self._content, not self._read

        async def replay() -> Message:
            nonlocal sent
            if sent or content is None:
                return await self._receive()
            sent = True
            return {"type": "http.request", "body": content, "more_body": False}

        return replay

    async def _read_all(self) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await self._receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _json_of(body: bytes | None) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None
