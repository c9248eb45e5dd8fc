"""Scenario 1: hypothesis mutates valid tokens; nothing that differs from one may pass.

Every mutant goes through ``validate_token`` in this process; a sample also goes over the
wire to a running HTTP server, as ``Authorization: Bearer`` and as the ``token`` argument
of ``whoami`` (which reports who it authenticated). Bars: zero accepted mutants that
differ from a valid token (after the stripping any server may do: surrounding whitespace
and one ``Bearer`` prefix), zero exceptions escaping ``validate_token``, zero server
errors (5xx, JSON-RPC internal errors, tracebacks in the server log).
"""

from __future__ import annotations

import collections
import json
import re
import time
from typing import Any

import anyio
import httpx
from hypothesis import HealthCheck, Phase, Verbosity, given, settings

from session_buddy.mcp.auth import generate_test_token, validate_token
from stress.harness import AUTH_FAILED, TRACEBACK, Context, Outcome, launch_server, ready
from stress.tokens import FuzzSeed, Mutant, mutants
from stress.wire import HTTP_HEADER_LIMIT, RawReply, raw_call, raw_client
from testkit.server import ServerProcess
from testkit.tokens import mint

TITLE = "Token fuzzing"
IN_PROCESS_EXAMPLES = 4000
WIRE_SAMPLE = 500  # per path
BATCH = 15  # bad requests per source address: below the 20-per-minute throttle
PARALLEL_BATCHES = 4
# The SDK's answer when a tool raised something unexpected (its text stays in the log).
CRASH = re.compile(r"Error executing tool \w+")


def _sendable_header(value: str) -> bytes | None:
    data = value.encode("utf-8")
    if any((b < 0x20 and b != 0x09) or b == 0x7F for b in data):
        return None  # no HTTP client can send control characters in a header
    return data


def _json_safe(value: object) -> object:
    if isinstance(value, bytes):
        return None
    if isinstance(value, tuple):
        return list(value)
    return value


class WireTally:
    def __init__(self) -> None:
        self.sent = 0
        self.unsendable = 0
        self.statuses: collections.Counter[str] = collections.Counter()
        self.bypasses: list[str] = []
        self.server_errors: list[str] = []
        self.throttled = 0
        self.wrong_message: list[str] = []

    def figures(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "unsendable": self.unsendable,
            "statuses": dict(sorted(self.statuses.items())),
            "accepted_mutants": len(self.bypasses),
            "server_errors": len(self.server_errors),
            "throttled_429": self.throttled,
        }


def _is_server_error(reply: RawReply) -> bool:
    if reply.status >= 500:
        return True
    if reply.rpc_error is not None and reply.rpc_error.get("code") == -32603:
        return True
    return CRASH.fullmatch(reply.text.strip()) is not None


async def _send_batches(
    ctx: Context, server: ServerProcess, batch_list: list[list[Mutant]], path: str, tally: WireTally
) -> None:
    limiter = anyio.Semaphore(PARALLEL_BATCHES)

    async def one_batch(batch: list[Mutant]) -> None:
        async with limiter, raw_client(ctx.addresses.take(), timeout=30) as http:
            for mutant in batch:
                await _send_one(http, server, mutant, path, tally)

    async with anyio.create_task_group() as tg:
        for batch in batch_list:
            tg.start_soon(one_batch, batch)


async def _send_one(
    http: httpx.AsyncClient, server: ServerProcess, mutant: Mutant, path: str, tally: WireTally
) -> None:
    value = mutant.value
    if path == "bearer":
        if not isinstance(value, str) or (header := _sendable_header(value)) is None:
            tally.unsendable += 1
            return
        try:
            reply = await raw_call(http, server.url, "whoami", {}, bearer=header)
        except httpx.LocalProtocolError:  # refused by our own HTTP client (h11)
            tally.unsendable += 1
            return
        except httpx.TransportError as exc:
            if len(header) > HTTP_HEADER_LIMIT:
                tally.statuses["closed (header > 16 KiB)"] += 1
                tally.sent += 1
                return
            tally.server_errors.append(f"bearer {mutant.kind}: {type(exc).__name__}")
            return
    else:
        try:
            reply = await raw_call(http, server.url, "whoami", {"token": _json_safe(value)})
        except httpx.TransportError as exc:
            tally.server_errors.append(f"argument {mutant.kind}: {type(exc).__name__}")
            return
    tally.sent += 1
    tally.statuses[str(reply.status)] += 1
    if reply.status == 429:
        tally.throttled += 1
    if _is_server_error(reply):
        tally.server_errors.append(f"{path} {mutant.kind}: {reply.status} {reply.body[:120]}")
    accepted = reply.authenticated_as is not None
    if accepted and mutant.must_reject:
        tally.bypasses.append(f"{path} {mutant.kind}: {str(value)[:80]!r}")
    refused = path == "argument" and isinstance(value, str) and mutant.must_reject and not accepted
    if refused and not reply.text.startswith(AUTH_FAILED):
        tally.wrong_message.append(f"{mutant.kind}: {reply.status} {reply.text[:80]!r}")


def _fuzz_in_process(ctx: Context, bases: list[str], outcome: Outcome) -> list[Mutant]:
    secret = ctx.secret
    kinds: collections.Counter[str] = collections.Counter()
    escaped: list[str] = []
    bypasses: list[str] = []
    accepted_same = 0
    wire_pool: dict[str, Mutant] = {}
    seen: list[str] = []
    foreign: list[Mutant] = []

    @settings(
        max_examples=IN_PROCESS_EXAMPLES // (10 if ctx.quick else 1),
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(mutants(FuzzSeed(bases, secret)))
    def check(mutant: Mutant) -> None:
        nonlocal accepted_same
        kinds[mutant.kind] += 1
        try:
            payload = validate_token(mutant.value)
        except Exception as exc:
            escaped.append(f"{mutant.kind}: {type(exc).__name__}: {str(exc)[:80]}")
            return
        if payload is not None and mutant.must_reject:
            bypasses.append(f"{mutant.kind}: {str(mutant.value)[:80]!r}")
        elif payload is not None:
            accepted_same += 1
        if isinstance(mutant.value, str):
            wire_pool.setdefault(mutant.value, mutant)
            seen.append(mutant.value)
        elif len(foreign) < 20:
            foreign.append(mutant)

    started = time.monotonic()
    check()
    outcome.figure("in_process_examples", sum(kinds.values()))
    outcome.figure("in_process_seconds", round(time.monotonic() - started, 1))
    outcome.figure("mutation_kinds", dict(sorted(kinds.items())))
    outcome.figure("in_process_accepted_mutants", len(bypasses))
    outcome.figure("in_process_accepted_equivalents", accepted_same)
    outcome.figure("in_process_exceptions", len(escaped))
    outcome.bar("validate_token: 0 accepted mutants", not bypasses, "; ".join(bypasses[:3]))
    outcome.bar("validate_token: 0 exceptions escaping", not escaped, "; ".join(escaped[:3]))
    ctx.tokens.add_all(seen)  # the in-process library log is searched for these too
    pool = list(wire_pool.values())
    wire = WIRE_SAMPLE // (10 if ctx.quick else 1)
    step = max(1, len(pool) // wire)
    return pool[::step][:wire] + foreign


async def run(ctx: Context) -> Outcome:
    outcome = Outcome(1, TITLE)
    bases = [generate_test_token(f"fuzz-{i}") for i in range(3)]
    bases.append(mint(ctx.secret, "fuzz-orchestrator", role="orchestrator"))
    bases.append(mint(ctx.previous_secrets[0], "fuzz-previous-secret"))
    ctx.tokens.add_all(bases)
    outcome.bar(
        "every unmutated base token verifies",
        all(validate_token(b) is not None for b in bases),
    )

    sample = await anyio.to_thread.run_sync(_fuzz_in_process, ctx, bases, outcome)
    ctx.tokens.add_all(m.value for m in sample)
    if not ctx.addresses.usable:
        outcome.note("cannot bind 127.0.x.y source addresses: the throttle may answer 429")

    server = launch_server(ctx, "fuzz", ctx.data_dir("fuzz"))
    try:
        await ready(server)
        for path in ("bearer", "argument"):
            tally = WireTally()
            usable = [m for m in sample if path == "argument" or isinstance(m.value, str)]
            batches = [usable[i : i + BATCH] for i in range(0, len(usable), BATCH)]
            started = time.monotonic()
            await _send_batches(ctx, server, batches, path, tally)
            figures = tally.figures()
            figures["seconds"] = round(time.monotonic() - started, 1)
            outcome.figure(path, figures)
            outcome.bar(
                f"{path}: 0 accepted mutants", not tally.bypasses, "; ".join(tally.bypasses[:3])
            )
            outcome.bar(
                f"{path}: 0 server errors",
                not tally.server_errors,
                "; ".join(tally.server_errors[:3]),
            )
            outcome.bar(f"{path}: no 429 (each verdict seen)", tally.throttled == 0)
            if path == "argument":
                outcome.bar(
                    "argument: every refusal is the public message",
                    not tally.wrong_message,
                    "; ".join(tally.wrong_message[:3]),
                )
        async with raw_client() as http:
            good = await raw_call(http, server.url, "whoami", {"token": bases[0]})
        outcome.bar("server answers a valid call afterwards", good.authenticated_as == "fuzz-0")
    finally:
        server.stop()
    tracebacks = server.log().count(TRACEBACK)
    outcome.figure("server_tracebacks", tracebacks)
    outcome.bar("server log: 0 tracebacks", tracebacks == 0)
    outcome.figure("wire_sample", len(sample))
    figures = outcome.figures
    bearer, argument = figures["bearer"], figures["argument"]
    accepted = (
        figures["in_process_accepted_mutants"]
        + bearer["accepted_mutants"]
        + argument["accepted_mutants"]
    )
    outcome.summary = (
        f"{figures['in_process_examples']} mutants in-process, "
        f"{bearer['sent']} bearer + {argument['sent']} argument over HTTP: {accepted} accepted, "
        f"{figures['in_process_exceptions']} exceptions, "
        f"{bearer['server_errors'] + argument['server_errors'] + tracebacks} server errors"
    )
    json.dumps(outcome.figures)  # figures must stay serialisable for --json
    return outcome
