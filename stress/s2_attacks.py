"""Scenario 2: the attack corpus over the wire, as a tool argument and as a bearer header.

Each hostile token (``alg: none`` in every casing, HS384/HS512, wrong secret, stripped
signature, expired, future ``nbf``/``iat``, missing or empty identity, ``type=refresh``,
``crit``, 9 KiB and 1 MiB) is sent to a running HTTP server twice:

* as the ``token`` argument of ``start_session``, through the official MCP client: the
  result must be an error whose text is exactly ``❌ Authentication failed: <message>``;
* as ``Authorization: Bearer`` on a raw ``tools/call``: ``401`` with
  ``WWW-Authenticate: Bearer error="invalid_token"`` and the same message. A 1 MiB header
  is beyond what the HTTP layer reads at all (uvicorn refuses header blocks over 16 KiB
  and closes the connection); that refusal is recorded as such.

Right after each attack the same server must serve a valid call. Every attack comes from
its own source address, so the failure throttle (20 a minute) never hides a verdict.
"""

from __future__ import annotations

import time

import httpx

from stress.harness import AUTH_FAILED, TRACEBACK, Context, Outcome, launch_server, ready
from stress.tokens import REQUIRED, attack_corpus
from stress.wire import HTTP_HEADER_LIMIT, call, raw_call, raw_client
from testkit.mcp import mcp_http, text_of
from testkit.tokens import mint

TITLE = "Attack corpus over the wire"


async def run(ctx: Context) -> Outcome:
    outcome = Outcome(2, TITLE)
    corpus = attack_corpus(ctx.secret)
    valid = mint(ctx.secret, "attack-victim")
    ctx.tokens.add_all([a.token for a in corpus] + [valid])
    project = ctx.project_dir("attacks")
    server = launch_server(ctx, "attacks", ctx.data_dir("attacks"))
    argument_failures: list[str] = []
    header_failures: list[str] = []
    recovery_failures: list[str] = []
    header_refused_by_http = []
    started = time.monotonic()
    try:
        await ready(server)
        for attack in corpus:
            source = ctx.addresses.take()
            async with mcp_http(server.url, source=source) as client:
                result = await call(
                    client,
                    "start_session",
                    {"working_directory": str(project), "token": attack.token},
                )
                expected = f"{AUTH_FAILED}: {attack.message}"
                if not result.is_error or text_of(result) != expected:
                    argument_failures.append(f"{attack.name}: {text_of(result)[:90]!r}")

            async with raw_client(source) as http:
                try:
                    reply = await raw_call(
                        http,
                        server.url,
                        "start_session",
                        {"working_directory": str(project)},
                        bearer=attack.token,
                    )
                except httpx.TransportError as exc:
                    if len(attack.token) > HTTP_HEADER_LIMIT:
                        header_refused_by_http.append(attack.name)
                    else:
                        header_failures.append(f"{attack.name}: {type(exc).__name__}")
                else:
                    challenge = reply.www_authenticate or ""
                    message_ok = f"{AUTH_FAILED}: {attack.message}" in reply.body
                    if (
                        reply.status != 401
                        or 'error="invalid_token"' not in challenge
                        or f'error_description="{attack.message}"' not in challenge
                        or not message_ok
                    ):
                        header_failures.append(f"{attack.name}: {reply.status} {challenge[:60]!r}")

            async with mcp_http(server.url, source=source) as client:
                after = await call(client, "list_sessions", {"token": valid})
            async with raw_client(source) as http:
                after_header = await raw_call(http, server.url, "whoami", {}, bearer=valid)
            if after.is_error or after_header.authenticated_as != "attack-victim":
                recovery_failures.append(attack.name)

        async with mcp_http(server.url) as client:
            missing = await call(client, "start_session", {"working_directory": str(project)})
        missing_ok = missing.is_error and text_of(missing) == f"{AUTH_FAILED}: {REQUIRED}"
    finally:
        server.stop()

    tracebacks = server.log().count(TRACEBACK)
    outcome.figure("attacks", len(corpus))
    outcome.figure("argument_rejected_with_public_message", len(corpus) - len(argument_failures))
    outcome.figure(
        "header_401_invalid_token",
        len(corpus) - len(header_failures) - len(header_refused_by_http),
    )
    outcome.figure("header_refused_by_http_layer", header_refused_by_http)
    outcome.figure("valid_call_after_each", len(corpus) - len(recovery_failures))
    outcome.figure("server_tracebacks", tracebacks)
    outcome.figure("seconds", round(time.monotonic() - started, 1))
    outcome.bar(
        "token argument: every attack rejected with its public message",
        not argument_failures,
        "; ".join(argument_failures[:4]),
    )
    outcome.bar(
        "bearer header: every attack answered 401 invalid_token (or refused by HTTP when > 16 KiB)",
        not header_failures,
        "; ".join(header_failures[:4]),
    )
    outcome.bar(
        "server serves a valid call right after each attack",
        not recovery_failures,
        ", ".join(recovery_failures[:4]),
    )
    outcome.bar("no token at all: 'Token required'", missing_ok, text_of(missing)[:80])
    outcome.bar("server log: 0 tracebacks", tracebacks == 0)
    header_401 = len(corpus) - len(header_failures) - len(header_refused_by_http)
    outcome.summary = (
        f"{len(corpus)} attacks: {len(corpus) - len(argument_failures)}/{len(corpus)} argument "
        f"→ public message, {header_401} header 401 + {len(header_refused_by_http)} refused by "
        f"HTTP (1 MiB), {len(corpus) - len(recovery_failures)}/{len(corpus)} valid calls after"
    )
    return outcome
