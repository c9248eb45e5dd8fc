"""Many MCP sessions on one HTTP server that go quiet, then call at once.

What an idle Claude Code (or an orchestrator) does when it fires parallel tool calls:
:class:`Fleet` opens one official client per token — the first ``bearer`` of them send
their token in the ``Authorization`` header, the others as the ``token`` argument — and
:meth:`Fleet.burst` sends one call from each at the same moment. Every answer is kept as
a :class:`Reply`, refusals and transport errors alike, so a caller judges them all.
:func:`revoke_elsewhere` records revocations as another process would (a CLI, another
instance), straight into the server's database.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import jwt
from mcp import Client

from session_buddy.auth.verifier import revocation_key
from session_buddy.store.base import Database
from session_buddy.store.revocations import CHANNEL, RevocationRepository
from testkit.mcp import mcp_http, text_of

CALL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Reply:
    """One call's outcome: ``ok`` when the tool ran and succeeded; ``text`` is the result's
    text, or the exception the client raised (an HTTP refusal of the header)."""

    ok: bool
    text: str
    seconds: float


class Fleet:
    """One official MCP client per token, connected to ``url`` (use as ``async with``)."""

    def __init__(self, url: str, tokens: Sequence[str], *, bearer: int) -> None:
        self.url = url
        self.tokens = list(tokens)
        self.bearer = bearer
        self._stack = AsyncExitStack()
        self.clients: list[Client] = []

    async def __aenter__(self) -> Fleet:
        try:
            for n, token in enumerate(self.tokens):
                header = token if n < self.bearer else None
                client = mcp_http(self.url, bearer=header, timeout=CALL_TIMEOUT)
                self.clients.append(await self._stack.enter_async_context(client))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    def arguments(self, n: int, arguments: dict[str, Any]) -> dict[str, Any]:
        """``arguments`` as session ``n`` sends them (with its token unless it is a bearer)."""
        return arguments if n < self.bearer else {**arguments, "token": self.tokens[n]}

    async def burst(
        self, tool: str, arguments: dict[str, Any], *, extra: Sequence[str] = ()
    ) -> tuple[list[Reply], list[Reply]]:
        """One ``tool`` call from every session at once, plus one per ``extra`` token (as the
        ``token`` argument, on the last session); the replies of both, in order."""
        calls = [(client, self.arguments(n, arguments)) for n, client in enumerate(self.clients)]
        calls += [(self.clients[-1], {**arguments, "token": token}) for token in extra]
        replies: list[Reply | None] = [None] * len(calls)

        async def one(index: int, client: Client, call_arguments: dict[str, Any]) -> None:
            started = time.monotonic()
            try:
                with anyio.fail_after(CALL_TIMEOUT):
                    result = await client.call_tool(tool, call_arguments)
            except Exception as exc:  # a refused header surfaces as the client's error
                reply = Reply(False, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
            else:
                reply = Reply(not result.is_error, text_of(result), time.monotonic() - started)
            replies[index] = reply

        async with anyio.create_task_group() as group:
            for index, (client, call_arguments) in enumerate(calls):
                group.start_soon(one, index, client, call_arguments)
        done = [reply for reply in replies if reply is not None]
        return done[: len(self.clients)], done[len(self.clients) :]


def revoke_elsewhere(database: Database, tokens: Sequence[str] = (), *, junk: int = 0) -> None:
    """Revoke ``tokens`` in ``database`` (opened by the caller) as another process does
    (``session-buddy token revoke``: one transaction each), then — in one more transaction
    — ``junk`` tokens nobody holds: a mass revocation that makes the next read of the log
    take a while. Every transaction notifies PostgreSQL's listeners."""
    repository = RevocationRepository(database)
    now = time.time()
    for token in tokens:
        claims = jwt.decode(token, options={"verify_signature": False})
        repository.record(revocation_key(claims, token), float(claims["exp"]), now)
    if junk:
        batch = secrets.token_hex(4)
        keys = [f"jti:nobody-{batch}-{n}" for n in range(junk)]
        with database.transaction() as conn:
            conn.executemany(
                "INSERT INTO revoked_tokens(token_key, expires_at, revoked_at) VALUES (?, ?, ?)",
                [(key, now + 3600, now) for key in keys],
            )
            conn.executemany(
                "INSERT INTO revocation_log(token_key) VALUES (?)", [(key,) for key in keys]
            )
            database.notify(conn, CHANNEL)
