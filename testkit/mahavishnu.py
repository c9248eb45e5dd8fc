"""The one way the released Mahavishnu (0.14) can call session-buddy with credentials, as a
scenario shared by ``make test`` and ``make interop``.

Mahavishnu's ``BodaiComponentMCPClient(base_url, token=…)`` opens the official MCP client
over streamable HTTP, sends the token as ``Authorization: Bearer <token>`` on every
request (an ``httpx.AsyncClient`` with that default header), does the ``initialize``
handshake and calls tools by name. :func:`bodai_component_client` opens our SDK's client
the same way. Each step of :data:`SCENARIO` drives a real server at ``url`` with tokens
and messages from an :class:`Ecosystem`: the released code itself (``tests/interop``,
from the downloaded wheels) or ``testkit.released``'s statement of it (``tests/``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from testkit.mcp import (
    CALL_TIMEOUT,
    INITIALIZE,
    http_transport,
    ok,
    post_json_rpc,
)

AUDIENCE = "session-buddy"
SCOPE_REFUSAL = "❌ Authorization failed: missing scope 'write'"


@dataclass(frozen=True)
class Ecosystem:
    """How the released packages mint and sign, bound to the secret the server shares.

    ``mint(audience, scopes)``: an mcp-common service token with issuer ``mahavishnu``;
    ``sign(from_project, to_project, content)``: Mahavishnu's authenticated message.
    """

    mint: Callable[[str, Sequence[str]], str]
    sign: Callable[[str, str, Any], dict[str, Any]]


@contextlib.asynccontextmanager
async def bodai_component_client(url: str, token: str) -> AsyncIterator[Client]:
    """The official client as ``BodaiComponentMCPClient`` opens it: streamable HTTP, the
    bearer header on every request, the ``initialize`` handshake."""
    async with Client(http_transport(url, bearer=token), mode="legacy") as client:
        yield client


def _same(what: str, actual: object, expected: object) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: got {actual!r}, expected {expected!r}")


async def every_tool_answers_a_read_write_service_token(
    ecosystem: Ecosystem, url: str, project: Path
) -> None:
    """start, checkpoint, status, list, whoami, verify_envelope of a Mahavishnu-signed
    message (and its replay refused), end: each answers as the caller ``mahavishnu``."""
    where = {"working_directory": str(project)}
    async with bodai_component_client(url, ecosystem.mint(AUDIENCE, ["read", "write"])) as client:
        started = ok(await client.call_tool("start_session", where))
        _same("start_session user", (started["user_id"], started["active"]), ("mahavishnu", True))
        _same("start_session project", started["project_path"], str(project))

        point = ok(await client.call_tool("checkpoint", {**where, "note": "tests pass"}))
        _same("checkpoint", (point["session_id"], point["number"]), (started["id"], 1))

        status = ok(await client.call_tool("session_status", where))
        _same("session_status", (status["active"], status["session"]["id"]), (True, started["id"]))

        listed = ok(await client.call_tool("list_sessions", {}))
        _same("list_sessions", [s["id"] for s in listed["sessions"]], [started["id"]])

        identity = ok(await client.call_tool("whoami", {}))
        seen = (identity["user_id"], identity["issuer"], identity["scopes"])
        _same("whoami", seen, ("mahavishnu", "mahavishnu", ["read", "write"]))

        content = {"action": "checkpoint", "project": str(project)}
        envelope = ecosystem.sign("mahavishnu", AUDIENCE, content)
        verdict = ok(await client.call_tool("verify_envelope", {"envelope": envelope}))
        accepted = (verdict["valid"], verdict["from_project"], verdict["content"])
        _same("verify_envelope", accepted, (True, "mahavishnu", content))
        again = ok(await client.call_tool("verify_envelope", {"envelope": envelope}))
        _same("verify_envelope replayed", (again["valid"], again["problem"]), (False, "replayed"))

        ended = ok(await client.call_tool("end_session", {**where, "summary": "ready"}))
        session = ended["session"]
        _same("end_session", (session["id"], session["active"]), (started["id"], False))


async def a_read_only_token_is_refused_start_session_with_the_scope_message(
    ecosystem: Ecosystem, url: str, project: Path
) -> None:
    """A valid read-only token: reading works; starting a session is the HTTP 403 step-up
    (``insufficient_scope``), which the client raises as a JSON-RPC error with our message."""
    where = {"working_directory": str(project)}
    async with bodai_component_client(url, ecosystem.mint(AUDIENCE, ["read"])) as client:
        ok(await client.call_tool("list_sessions", {}))
        try:
            await client.call_tool("start_session", where)
        except MCPError as exc:
            refusal = exc
        else:
            raise AssertionError("start_session answered a read-only token")
        ok(await client.call_tool("list_sessions", {}))
    _same("start_session refusal", refusal.error.message, SCOPE_REFUSAL)
    data = refusal.error.data if isinstance(refusal.error.data, dict) else {}
    seen = (data.get("error"), data.get("scope"), data.get("reason"))
    _same("refusal", seen, ("insufficient_scope", "write", "missing_scope"))


async def a_token_for_another_service_gets_http_401(
    ecosystem: Ecosystem, url: str, project: Path
) -> None:
    """A token minted for ``akosha`` is refused before MCP: ``initialize`` answers 401."""
    token = ecosystem.mint("akosha", ["admin"])
    response = post_json_rpc(url, INITIALIZE, authorization=f"Bearer {token}")
    _same("status", response.status_code, 401)
    challenge = response.headers.get("WWW-Authenticate", "")
    _same("challenge", challenge.startswith('Bearer realm="session-buddy"'), True)
    _same("error", response.json()["error"], "invalid_token")
    try:
        async with bodai_component_client(url, token):
            pass
    except Exception:  # the SDK reports the 401 inside an exception group
        return
    raise AssertionError("the official client connected with a token for another service")


async def its_plain_tools_call_post_is_not_served(
    ecosystem: Ecosystem, url: str, project: Path
) -> None:
    """What Mahavishnu's session-buddy integrations send — ``POST {url}/tools/call`` with
    ``{"name", "arguments"}`` and no credentials — is answered 404 and starts nothing."""
    where = {"working_directory": str(project)}
    body = {"name": "start_session", "arguments": where}
    response = httpx.post(f"{url}/tools/call", json=body, timeout=CALL_TIMEOUT)
    _same("status", response.status_code, 404)
    async with bodai_component_client(url, ecosystem.mint(AUDIENCE, ["read"])) as client:
        status = ok(await client.call_tool("session_status", where))
    _same("a session started through it", status["active"], False)


Step = Callable[[Ecosystem, str, Path], Awaitable[None]]
SCENARIO: tuple[Step, ...] = (
    every_tool_answers_a_read_write_service_token,
    a_read_only_token_is_refused_start_session_with_the_scope_message,
    a_token_for_another_service_gets_http_401,
    its_plain_tools_call_post_is_not_served,
)
"""Every step, for ``pytest.mark.parametrize`` (ids: the steps' names)."""
