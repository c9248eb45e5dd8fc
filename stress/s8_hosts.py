"""Scenario 8: three HTTP instances on three "hosts" share one PostgreSQL, under faults.

The world is :mod:`stress.hosts`: PostgreSQL started by the kit, three ``serve --transport
http`` instances each in its own network namespace (or, where namespaces are unavailable,
on 127.0.8.1-3 — said in the figures), clients in the root namespace. Writers keep
checkpointing through every phase, spreading their calls over the three instances
(stateless streamable HTTP POSTs, token as argument or bearer header). Phases:

1. **Revocations.** A token is accepted by every instance (so it is in their caches), the
   CLI (``session-buddy token revoke``, root namespace, same database) revokes it, and each
   instance is polled from the moment the CLI exited until it refuses the token. Reported:
   latency per instance (worst, p50, p99), and any acceptance after a refusal.
2. **Envelopes.** Each envelope is accepted once by one instance (``verify_envelope``) and
   replayed to the two others (and to itself): every replay must be ``problem="replayed"``;
   the same envelope sent to all three at once must have exactly one winner.
3. **Throttle.** Forged tokens from one client address, spread over the instances (bearer
   header and ``token`` argument), until every instance answers 429. Reported: refusals
   before the last instance blocked — the limit plus a slack, what the flood got refused
   while the instances heard of each other (bar: all blocked within 0.5 s of the limit's
   refusal) — and the instances' write transactions to the shared counters per refusal,
   counted exactly by statement triggers the scenario adds (as superuser, in a schema of
   its own) that record each writing transaction's id; the audit trail's write
   transactions meanwhile are counted the same way and reported beside them. Then a
   trickle, one bad token every 10 ms from another address: blocked everywhere well
   before the 3 × 20 the instances would allow each on its own.
4. **Faults.** ``kill -9`` of one instance (a revocation is made while it is down; it is
   restarted on the same port), then a PostgreSQL restart (fast shutdown, two seconds
   down, start on the same data and port). Revoked and forged tokens are sent all along.
   Reported: restart time, the outage, each instance's time to answer a valid call once
   PostgreSQL is back (bar 5 s, no instance restarted for it), and how fast a revocation
   made right after the restart reaches every instance.

At the end every checkpoint a writer got a success for must be in the database, and no
revoked or forged token may ever have succeeded.
"""

from __future__ import annotations

import collections
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx

from session_buddy.auth.crossproject import CrossProjectAuth
from session_buddy.auth.revocation import MAX_STALE_SECONDS
from session_buddy.auth.throttle import FAILURE_LIMIT
from stress.harness import AUTH_FAILED, TRACEBACK, Context, Outcome, ready, run_cli
from stress.hosts import Cluster, Instance, cluster
from stress.tokens import REVOKED, forged_tokens
from stress.wire import RawReply, raw_call, raw_client
from testkit.figures import percentile
from testkit.tokens import mint

TITLE = "Several hosts, one PostgreSQL"
LIMIT_SECONDS = 150.0

CALL_TIMEOUT = 5.0
WRITE_PAUSE = 0.03  # between one writer's calls: traffic, not a CPU benchmark
POLL_GAP = 0.01  # between polls of an instance that has not refused a revoked token yet
HONOUR_WITHIN = 1.0  # bar: a CLI revocation refused by every instance within this
GIVE_UP_AFTER = 5.0  # polling stops here (and the revocation counts as not honoured)
CONFIRMATIONS = 3  # refusals in a row that end an instance's polling
RECOVER_WITHIN = 5.0  # bar: after PostgreSQL is back, every instance answers within this
BLOCKED_WITHIN = 0.5  # bar: every instance answers 429 this soon after the limit's refusal
# bars: a flood's rejected requests (refusals and 429s) cost at most this many write
# transactions each, and its refusals strictly fewer writes than refusals. The writes per
# refusal alone depend on the machine's speed (a slower flood leaves fewer refusals to each
# 20 ms round): 0.47 on an idle machine, 0.54 on a loaded CI runner.
WRITES_PER_REJECTED = 0.1
FLOOD_WORKERS_PER_INSTANCE = 2
FLOOD_AFTER_BLOCKED = 1.0  # seconds the flood goes on once every instance answers 429
FLOOD_LIMIT = 15.0
TRICKLE_GAP = 0.01  # between one client's bad tokens in the trickle
TRICKLE_SLACK = 15  # bar: the trickle is blocked everywhere after at most limit + this


@dataclass(frozen=True)
class Sizes:
    victims: int
    envelopes: int
    races: int
    writers: int
    settle: float  # seconds of writes before each fault
    database_down: float  # seconds PostgreSQL stays stopped in its restart
    after_restart: float  # seconds of writes after every instance recovered


FULL = Sizes(
    victims=10, envelopes=15, races=5, writers=3, settle=1.0, database_down=2.0, after_restart=1.5
)
QUICK = Sizes(
    victims=2, envelopes=3, races=1, writers=3, settle=0.3, database_down=1.0, after_restart=0.3
)


@dataclass
class Ledger:
    """What every phase saw that the final bars judge."""

    acked: dict[str, str] = field(default_factory=dict)  # checkpoint note -> instance
    failures: list[str] = field(default_factory=list)  # valid calls failing outside faults
    during_faults: collections.Counter[str] = field(default_factory=collections.Counter)
    fault_samples: dict[str, str] = field(default_factory=dict)  # kind -> first failure
    unauthorized: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)  # tokens the CLI revoked
    summary: list[str] = field(default_factory=list)  # one part per phase
    in_fault = False

    def failed(self, instance: Instance, tool: str, reply: RawReply) -> None:
        what = f"{instance.name} {tool}: {reply.status} {(reply.text or reply.body)[:100]}"
        if self.in_fault:
            kind = _kind(reply)
            self.during_faults[kind] += 1
            self.fault_samples.setdefault(kind, what)
        else:
            self.failures.append(what)

    def unauthorized_success(self, instance: Instance, what: str, reply: RawReply) -> None:
        self.unauthorized.append(f"{instance.name} {what}: {reply.text[:80]}")


def _kind(reply: RawReply) -> str:
    if reply.status == 0:
        return "connection failed"
    if "Storage unavailable" in reply.text:
        return "storage unavailable"
    if reply.status != 200:
        return f"HTTP {reply.status}"
    return reply.text.splitlines()[0][:90] if reply.text else "error"


async def _call(
    http: httpx.AsyncClient,
    instance: Instance,
    tool: str,
    arguments: dict[str, Any],
    token: str,
    *,
    header: bool = False,
) -> RawReply:
    """One stateless tool call, ``token`` as the bearer header or as the ``token`` argument;
    a transport failure or timeout is a reply with status 0."""
    if not header:
        arguments = {**arguments, "token": token}
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            return await raw_call(
                http, instance.url, tool, arguments, bearer=token if header else None
            )
    except (httpx.HTTPError, TimeoutError) as exc:
        return RawReply(status=0, body=type(exc).__name__)


def _refused_as_revoked(reply: RawReply) -> bool:
    if reply.status == 401:
        return REVOKED in reply.body
    return reply.status == 200 and reply.text == f"{AUTH_FAILED}: {REVOKED}"


def _refused(reply: RawReply) -> bool:
    """Refused for its credential: 401, 429, or an authentication error result."""
    if reply.status in (401, 429):
        return True
    return reply.status == 200 and reply.text.startswith(AUTH_FAILED)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "worst_ms": round(1000 * max(values, default=0.0), 1),
        "p50_ms": round(1000 * percentile(values, 0.5), 1),
        "p99_ms": round(1000 * percentile(values, 0.99), 1),
        "n": len(values),
    }


# -- writers: the traffic every phase runs under ----------------------------------------


async def _start_sessions(world: Cluster, owners: list[tuple[str, Path]], ledger: Ledger) -> None:
    """One session per (token, project), started on the instances in turn."""
    async with raw_client(timeout=CALL_TIMEOUT) as http:
        for n, (token, project) in enumerate(owners):
            instance = world.instances[n % len(world.instances)]
            arguments = {"working_directory": str(project)}
            reply = await _call(http, instance, "start_session", arguments, token)
            if not reply.tool_ok:
                ledger.problems.append(f"start_session on {instance.name}: {reply.text[:80]}")


async def _writer(
    world: Cluster, n: int, token: str, project: Path, ledger: Ledger, stop: anyio.Event
) -> None:
    instances = world.instances
    header = n % 2 == 1
    async with raw_client(timeout=CALL_TIMEOUT) as http:
        step = 0
        while not stop.is_set():
            instance = instances[(n + step) % len(instances)]
            note = f"w{n}-{step}"
            step += 1
            arguments = {"working_directory": str(project), "note": note}
            reply = await _call(http, instance, "checkpoint", arguments, token, header=header)
            if reply.tool_ok:
                ledger.acked[note] = instance.name
            else:
                ledger.failed(instance, "checkpoint", reply)
            await anyio.sleep(WRITE_PAUSE)


# -- 1. revocations ------------------------------------------------------------------------


@dataclass
class Propagation:
    """How one revocation reached each instance (seconds from the CLI's exit)."""

    latency: dict[str, float | None]
    cli_seconds: float
    problems: list[str]


async def _accepted_everywhere(
    http: httpx.AsyncClient, instances: list[Instance], token: str, user: str
) -> list[str]:
    problems = []
    for instance in instances:
        reply = await _call(http, instance, "whoami", {}, token, header=True)
        if reply.authenticated_as != user:
            problems.append(f"{instance.name} did not accept {user} first: {reply.status}")
    return problems


async def _revoke_and_watch(
    ctx: Context,
    world: Cluster,
    token: str,
    user: str,
    ledger: Ledger,
    *,
    header: bool,
    instances: list[Instance] | None = None,
) -> Propagation:
    """Revoke ``token`` with the CLI, then poll every instance until it refuses it."""
    instances = instances or world.instances
    first: dict[str, float] = {}
    problems: list[str] = []
    async with raw_client(world.source(), timeout=CALL_TIMEOUT) as http:
        cli = await run_cli(
            ctx,
            ["token", "revoke", token],
            data_dir=world.instances[0].data_dir,
            settings=world.cli_settings,
        )
        exited = cli.exited_at
        if cli.returncode != 0:
            problems.append(f"CLI revoke exit {cli.returncode}: {cli.stderr.strip()[:120]}")
            return Propagation({i.name: None for i in instances}, cli.seconds, problems)

        async def poll(instance: Instance) -> None:
            refusals = 0
            while refusals < CONFIRMATIONS:
                reply = await _call(http, instance, "whoami", {}, token, header=header)
                now = time.monotonic()
                if _refused_as_revoked(reply):
                    first.setdefault(instance.name, now)
                    refusals += 1
                    continue
                if reply.authenticated_as == user and instance.name in first:
                    ledger.unauthorized_success(instance, f"{user} after its refusal", reply)
                elif reply.authenticated_as != user:
                    problems.append(f"{instance.name}: {reply.status} {reply.body[:80]}")
                    refusals = 0 if instance.name not in first else refusals
                if now - exited > GIVE_UP_AFTER:
                    return
                await anyio.sleep(POLL_GAP)

        async with anyio.create_task_group() as tg:
            for instance in instances:
                tg.start_soon(poll, instance)
    latency = {
        i.name: (max(0.0, first[i.name] - exited) if i.name in first else None) for i in instances
    }
    return Propagation(latency, cli.seconds, problems)


async def _revocations(
    ctx: Context, world: Cluster, sizes: Sizes, ledger: Ledger, outcome: Outcome
) -> None:
    latencies: dict[str, list[float]] = {i.name: [] for i in world.instances}
    slowest: list[float | None] = []  # per revocation, its slowest instance
    not_honoured: list[str] = []
    cli_seconds: list[float] = []
    async with raw_client(timeout=CALL_TIMEOUT) as http:
        for v in range(sizes.victims):
            user = f"hosts-victim-{v}"
            token = mint(ctx.secret, user, unique=True)
            ctx.tokens.add(token)
            ledger.problems += await _accepted_everywhere(http, world.instances, token, user)
            seen = await _revoke_and_watch(ctx, world, token, user, ledger, header=v % 2 == 0)
            ledger.revoked.append(token)
            cli_seconds.append(seen.cli_seconds)
            ledger.problems += seen.problems
            known = [s for s in seen.latency.values() if s is not None]
            slowest.append(max(known) if len(known) == len(seen.latency) else None)
            for name, seconds in seen.latency.items():
                if seconds is None:
                    not_honoured.append(f"{user} on {name}")
                else:
                    latencies[name].append(seconds)
    every = [s for values in latencies.values() for s in values]
    outcome.figure(
        "revocation_latency_from_cli_exit",
        {name: _summary(values) for name, values in latencies.items()} | {"all": _summary(every)},
    )
    outcome.figure(
        "revocation_slowest_instance_ms",
        [None if s is None else round(1000 * s) for s in slowest],
    )
    outcome.figure("revocation_cli_p50_s", round(percentile(cli_seconds, 0.5), 2))
    outcome.bar(
        f"{sizes.victims} CLI revocations refused by all {len(world.instances)} instances "
        f"within {HONOUR_WITHIN:g} s of the CLI's exit",
        not not_honoured
        and max(every, default=0.0) <= HONOUR_WITHIN
        and len(every) == sizes.victims * len(world.instances),
        f"not honoured: {not_honoured[:3]}; worst {max(every, default=0.0):.3f} s",
    )
    ledger.summary.append(
        f"revoke→refused worst {1000 * max(every, default=0):.0f} ms "
        f"(p50 {1000 * percentile(every, 0.5):.0f}, p99 {1000 * percentile(every, 0.99):.0f})"
    )


# -- 2. envelopes --------------------------------------------------------------------------


def _verdict(reply: RawReply) -> dict[str, Any]:
    if not reply.tool_ok or reply.result is None:
        return {"valid": None, "problem": f"call failed: {reply.status} {reply.text[:60]}"}
    structured = reply.result.get("structuredContent") or {}
    return {"valid": structured.get("valid"), "problem": structured.get("problem")}


async def _envelopes(
    ctx: Context, world: Cluster, sizes: Sizes, token: str, ledger: Ledger, outcome: Outcome
) -> None:
    signer = CrossProjectAuth(ctx.secret)
    instances = world.instances
    accepted = replays = refused_as_replayed = 0
    wrong: list[str] = []
    winners: list[int] = []
    async with raw_client(timeout=CALL_TIMEOUT) as http:

        async def verify(instance: Instance, envelope: dict[str, Any]) -> dict[str, Any]:
            reply = await _call(
                http, instance, "verify_envelope", {"envelope": envelope}, token, header=True
            )
            return _verdict(reply)

        for k in range(sizes.envelopes):
            envelope = signer.sign_envelope("mahavishnu", "session-buddy", {"task": k})
            first = instances[k % len(instances)]
            verdict = await verify(first, envelope)
            if verdict["valid"] is True:
                accepted += 1
            else:
                wrong.append(f"first on {first.name}: {verdict}")
            for other in instances[k % len(instances) + 1 :] + instances[: k % len(instances) + 1]:
                replays += 1
                verdict = await verify(other, envelope)
                if verdict == {"valid": False, "problem": "replayed"}:
                    refused_as_replayed += 1
                else:
                    wrong.append(f"replay to {other.name}: {verdict}")
        for r in range(sizes.races):
            envelope = signer.sign_envelope("mahavishnu", "session-buddy", {"race": r})
            verdicts: list[dict[str, Any]] = []

            async def one(
                instance: Instance, envelope: dict[str, Any], into: list[dict[str, Any]]
            ) -> None:
                into.append(await verify(instance, envelope))

            async with anyio.create_task_group() as tg:
                for instance in instances:
                    tg.start_soon(one, instance, envelope, verdicts)
            winners.append(sum(v["valid"] is True for v in verdicts))
            losers = [v for v in verdicts if v["valid"] is not True]
            wrong += [f"race {r}: {v}" for v in losers if v["problem"] != "replayed"]
    outcome.figure(
        "envelopes",
        {
            "accepted_first_time": f"{accepted}/{sizes.envelopes}",
            "replays_refused_as_replayed": f"{refused_as_replayed}/{replays}",
            "simultaneous_to_all_three_winners": winners,
        },
    )
    outcome.bar(
        "envelopes: accepted once, every replay to another instance refused as 'replayed', "
        "one winner when sent to all at once",
        accepted == sizes.envelopes
        and refused_as_replayed == replays
        and all(w == 1 for w in winners)
        and not wrong,
        "; ".join(wrong[:3]),
    )
    ledger.summary.append(f"{refused_as_replayed}/{replays} envelope replays refused")


# -- 3. throttle ---------------------------------------------------------------------------

_COUNTED_TABLES = {"auth_failures": "throttle", "auth_blocks": "throttle", "audit_events": "audit"}
_COUNTER_SQL = [
    "CREATE SCHEMA IF NOT EXISTS stress",
    """CREATE TABLE IF NOT EXISTS stress.writes
       (xid xid8, kind text, PRIMARY KEY (xid, kind))""",
    """CREATE OR REPLACE FUNCTION stress.note_write() RETURNS trigger
       LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
       BEGIN
           INSERT INTO stress.writes VALUES (pg_current_xact_id(), TG_ARGV[0])
               ON CONFLICT DO NOTHING;
           RETURN NULL;
       END $$""",
    *(
        f"""CREATE TRIGGER stress_writes AFTER INSERT OR UPDATE ON public.{table}
            FOR EACH STATEMENT EXECUTE FUNCTION stress.note_write('{kind}')"""
        for table, kind in _COUNTED_TABLES.items()
    ),
]


def install_write_counter(world: Cluster) -> None:
    """Record the id of every transaction that writes the shared throttle's tables (kind
    ``throttle``) or the audit trail's (``audit``)."""
    for statement in _COUNTER_SQL:
        world.query(statement)


def writes(world: Cluster) -> collections.Counter[str]:
    """Write transactions so far, per kind."""
    rows = world.query("SELECT kind, count(*) FROM stress.writes GROUP BY kind")
    return collections.Counter({str(kind): int(n) for kind, n in rows})


async def _throttle(ctx: Context, world: Cluster, ledger: Ledger, outcome: Outcome) -> None:
    instances = world.instances
    source = world.source()
    forged = forged_tokens(ctx.secret, 60)
    ctx.tokens.add_all(forged)
    project = str(ctx.project_dir("hosts-flood"))
    writes_before = writes(world)
    refusals: list[tuple[float, str]] = []  # (when, instance) of every non-429 refusal
    first_429: dict[str, float] = {}
    statuses: collections.Counter[str] = collections.Counter()
    started = time.monotonic()
    done = anyio.Event()

    async def worker(k: int, http: httpx.AsyncClient) -> None:
        instance = instances[k % len(instances)]
        i = k
        while not done.is_set():
            token = forged[i % len(forged)]
            header = i % 2 == 0
            i += 1
            if header:
                reply = await _call(http, instance, "list_sessions", {}, token, header=True)
            else:
                arguments = {"working_directory": project}
                reply = await _call(http, instance, "session_status", arguments, token)
            now = time.monotonic()
            statuses[f"{'header' if header else 'argument'} {reply.status}"] += 1
            if reply.tool_ok:
                ledger.unauthorized_success(instance, "forged token in the flood", reply)
            elif reply.status == 429:
                first_429.setdefault(instance.name, now)
            elif _refused(reply):
                refusals.append((now, instance.name))
            else:
                ledger.problems.append(
                    f"flood on {instance.name}: {reply.status} {reply.body[:60]}"
                )

    async def stopper() -> None:
        while time.monotonic() - started < FLOOD_LIMIT:
            if len(first_429) == len(instances):
                await anyio.sleep(FLOOD_AFTER_BLOCKED)
                break
            await anyio.sleep(0.01)
        done.set()

    async with raw_client(source, timeout=CALL_TIMEOUT) as http, anyio.create_task_group() as tg:
        tg.start_soon(stopper)
        for k in range(FLOOD_WORKERS_PER_INSTANCE * len(instances)):
            tg.start_soon(worker, k, http)
    await anyio.sleep(0.5)  # the instances' last batches (every 0.1 s)
    written = writes(world)
    written.subtract(writes_before)
    throttle_writes = written["throttle"]
    all_blocked = max(first_429.values()) if len(first_429) == len(instances) else None
    before = [r for r in refusals if all_blocked is None or r[0] <= all_blocked]
    slack = len(before) - FAILURE_LIMIT
    # when the limit was reached across the instances, and how long the last one took
    at_limit = sorted(t for t, _ in refusals)[FAILURE_LIMIT - 1] if slack >= 0 else None
    lag = None if all_blocked is None or at_limit is None else all_blocked - at_limit
    per_instance = collections.Counter(name for _, name in before)
    rejected = len(refusals) + sum(v for k, v in statuses.items() if k.endswith(" 429"))
    outcome.figure(
        "throttle",
        {
            "client": source or "127.0.0.1",
            "refusals_before_all_blocked": len(before),
            "per_instance": dict(sorted(per_instance.items())),
            "slack_over_limit": slack,
            "last_instance_blocked_ms_after_limit": None if lag is None else round(1000 * lag),
            "refusals_per_s_until_blocked": (
                None if all_blocked is None else round(len(before) / (all_blocked - started))
            ),
            "refusals_after_all_blocked": len(refusals) - len(before),
            "blocked_after_s": {
                name: round(at - started, 3) for name, at in sorted(first_429.items())
            },
            "statuses": dict(sorted(statuses.items())),
            "write_transactions": throttle_writes,
            "writes_per_refusal": round(throttle_writes / max(1, len(refusals)), 3),
            "writes_per_rejected_request": round(throttle_writes / max(1, rejected), 4),
            # the audit trail's batches meanwhile (the writers' decisions too, folded)
            "audit_write_transactions": written["audit"],
        },
    )
    outcome.bar(
        f"flood over {len(instances)} instances from one address: {FAILURE_LIMIT} refusals, "
        f"then every instance answers 429 within {BLOCKED_WITHIN:g} s (the slack: what the "
        "flood got refused meanwhile)",
        lag is not None and lag <= BLOCKED_WITHIN and not refusals[len(before) :],
        f"{len(before)} refusals; blocked: {sorted(first_429)}; lag {lag}",
    )
    outcome.bar(
        f"the flood's rejected requests cost at most {WRITES_PER_REJECTED} write transactions "
        "each, and its refusals fewer writes than refusals",
        0 < throttle_writes <= WRITES_PER_REJECTED * rejected and throttle_writes < len(refusals),
        f"{throttle_writes} writes for {len(refusals)} refusals, {rejected} rejected requests",
    )
    ledger.summary.append(
        f"429 everywhere after {len(before)} refusals ({FAILURE_LIMIT} + slack {slack}); "
        f"{throttle_writes / max(1, len(refusals)):.2f} writes/refusal, "
        f"{throttle_writes / max(1, rejected):.3f} per rejected request"
    )


async def _trickle(ctx: Context, world: Cluster, ledger: Ledger, outcome: Outcome) -> None:
    """One bad token at a time, every ``TRICKLE_GAP``, round the instances: the case the
    shared counts are for (each instance alone would allow 20)."""
    instances = world.instances
    forged = forged_tokens(ctx.secret, 30)
    ctx.tokens.add_all(forged)
    refusals = sent = 0
    blocked: set[str] = set()
    started = time.monotonic()
    async with raw_client(world.source(), timeout=CALL_TIMEOUT) as http:
        while len(blocked) < len(instances) and time.monotonic() - started < FLOOD_LIMIT:
            instance = instances[sent % len(instances)]
            reply = await _call(
                http, instance, "whoami", {}, forged[sent % len(forged)], header=True
            )
            sent += 1
            if reply.status == 429:
                blocked.add(instance.name)
            elif _refused(reply):
                refusals += 1
            elif reply.tool_ok and (reply.result or {}).get("structuredContent", {}).get(
                "authenticated"
            ):
                ledger.unauthorized_success(instance, "forged token in the trickle", reply)
            await anyio.sleep(TRICKLE_GAP)
    seconds = time.monotonic() - started
    outcome.figure(
        "throttle_trickle",
        {
            "gap_ms": round(1000 * TRICKLE_GAP),
            "refusals_before_all_blocked": refusals,
            "slack_over_limit": refusals - FAILURE_LIMIT,
            "refusals_per_s": round(refusals / seconds),
            "all_blocked": len(blocked) == len(instances),
        },
    )
    outcome.bar(
        f"a trickle over {len(instances)} instances from one address (one bad token every "
        f"{1000 * TRICKLE_GAP:g} ms): 429 everywhere after at most {FAILURE_LIMIT} + "
        f"{TRICKLE_SLACK} refusals (each instance alone: {FAILURE_LIMIT} each)",
        len(blocked) == len(instances) and refusals <= FAILURE_LIMIT + TRICKLE_SLACK,
        f"{refusals} refusals; blocked: {sorted(blocked)}",
    )
    ledger.summary.append(f"trickle blocked after {refusals}")


# -- 4. faults -----------------------------------------------------------------------------


async def _probe(
    ctx: Context, world: Cluster, revoked: list[str], ledger: Ledger, stop: anyio.Event
) -> int:
    """Revoked and forged tokens all along, from fresh addresses (so they are verified)."""
    forged = forged_tokens(ctx.secret, 12)
    ctx.tokens.add_all(forged)
    bad = [*revoked, *forged]
    sent = 0
    while not stop.is_set():
        async with raw_client(world.source(), timeout=CALL_TIMEOUT) as http:
            for _ in range(FAILURE_LIMIT // 2):
                if stop.is_set():
                    break
                instance = world.instances[sent % len(world.instances)]
                token = bad[sent % len(bad)]
                reply = await _call(http, instance, "whoami", {}, token, header=sent % 2 == 0)
                sent += 1
                if reply.tool_ok and (reply.result or {}).get("structuredContent", {}).get(
                    "authenticated"
                ):
                    ledger.unauthorized_success(instance, "revoked or forged token", reply)
                await anyio.sleep(0.05)
    return sent


async def _recovery(
    http: httpx.AsyncClient,
    instance: Instance,
    token: str,
    project: Path,
    since: float,
    ledger: Ledger,
) -> float | None:
    """Seconds from ``since`` until ``instance`` acknowledges a checkpoint."""
    n = 0
    while time.monotonic() - since < 3 * RECOVER_WITHIN:
        note = f"recover-{instance.name}-{instance.starts}-{n}"
        n += 1
        arguments = {"working_directory": str(project), "note": note}
        reply = await _call(http, instance, "checkpoint", arguments, token)
        if reply.tool_ok:
            ledger.acked[note] = instance.name
            return time.monotonic() - since
        await anyio.sleep(0.05)
    return None


async def _faults(
    ctx: Context,
    world: Cluster,
    sizes: Sizes,
    ledger: Ledger,
    outcome: Outcome,
    recovery: list[tuple[str, Path]],
) -> None:
    instances = world.instances
    victim = instances[1]
    figures: dict[str, Any] = {"killed": victim.name}
    await anyio.sleep(sizes.settle)  # writes in flight on every instance

    # kill -9 one instance; a revocation happens while it is down; restart it
    while_down_user = "hosts-revoked-while-down"
    while_down = mint(ctx.secret, while_down_user, unique=True)
    ctx.tokens.add(while_down)
    async with raw_client(timeout=CALL_TIMEOUT) as http:
        ledger.problems += await _accepted_everywhere(http, instances, while_down, while_down_user)
    ledger.in_fault = True
    assert victim.server is not None
    victim.server.kill()
    killed_at = time.monotonic()
    cli = await run_cli(
        ctx,
        ["token", "revoke", while_down],
        data_dir=victim.data_dir,
        settings=world.cli_settings,
    )
    if cli.returncode != 0:
        ledger.problems.append(f"revoke while down: {cli.stderr.strip()[:120]}")
    restarted = world.start(victim)
    await ready(restarted)
    figures["kill_to_healthy_again_s"] = round(time.monotonic() - killed_at, 2)
    async with raw_client(world.source(), timeout=CALL_TIMEOUT) as http:
        reply = await _call(http, victim, "whoami", {}, while_down, header=True)
        honoured = _refused_as_revoked(reply)
        figures["revocation_made_while_down_refused_after_restart"] = honoured
        recovered = await _recovery(
            http, victim, *recovery[1], since=time.monotonic(), ledger=ledger
        )
        figures["restarted_instance_first_checkpoint_s"] = (
            None if recovered is None else round(recovered, 2)
        )
    ledger.in_fault = False
    outcome.bar(
        f"kill -9 of {victim.name}: restarted, honours the revocation made while it was down, "
        "writes again",
        honoured and recovered is not None,
        f"revoked refused: {honoured}; checkpoint: {recovered}",
    )
    await anyio.sleep(sizes.settle)

    # PostgreSQL restart: nobody restarts the instances
    after_user = "hosts-revoked-after-pg-restart"
    after = mint(ctx.secret, after_user, unique=True)
    ctx.tokens.add(after)
    async with raw_client(timeout=CALL_TIMEOUT) as http:
        ledger.problems += await _accepted_everywhere(http, instances, after, after_user)
    pids = [i.pid for i in instances]
    ledger.in_fault = True
    stopped_at = time.monotonic()

    def restart() -> None:
        world.pg.stop()
        time.sleep(sizes.database_down)
        world.pg.start()

    outage = anyio.Event()
    answers: collections.Counter[str] = collections.Counter()

    async def whoami_meanwhile() -> None:
        """A valid token on every instance while PostgreSQL is down: never refused (< 5 s)."""
        async with raw_client(timeout=CALL_TIMEOUT) as http:
            while not outage.is_set():
                for n, instance in enumerate(instances):
                    reply = await _call(http, instance, "whoami", {}, recovery[n][0], header=True)
                    answers["accepted" if reply.authenticated_as else _kind(reply)] += 1
                await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(whoami_meanwhile)
        await world.postgres(restart)
        outage.set()
    back_at = time.monotonic()
    figures["postgresql_outage_s"] = round(back_at - stopped_at, 2)
    figures["valid_whoami_during_outage"] = dict(answers)
    recovered_s: dict[str, float | None] = {}
    propagation: Propagation | None = None

    async def recover(n: int, http: httpx.AsyncClient) -> None:
        token, project = recovery[n]
        recovered_s[instances[n].name] = await _recovery(
            http, instances[n], token, project, since=back_at, ledger=ledger
        )

    async def revoke_after() -> None:
        nonlocal propagation
        propagation = await _revoke_and_watch(ctx, world, after, after_user, ledger, header=True)

    async with raw_client(timeout=CALL_TIMEOUT) as http, anyio.create_task_group() as tg:
        for n in range(len(instances)):
            tg.start_soon(recover, n, http)
        tg.start_soon(revoke_after)
    ledger.in_fault = False
    await anyio.sleep(sizes.after_restart)
    same = [i.pid for i in instances] == pids
    figures["recovery_after_postgresql_back_s"] = {
        k: (None if v is None else round(v, 2)) for k, v in sorted(recovered_s.items())
    }
    assert propagation is not None
    figures["revocation_right_after_restart_ms"] = {
        k: (None if v is None else round(1000 * v, 1)) for k, v in propagation.latency.items()
    }
    ledger.problems += propagation.problems
    figures["valid_calls_refused_during_faults"] = dict(ledger.during_faults)
    figures["first_of_each_kind"] = ledger.fault_samples
    outcome.figure("faults", figures)
    worst = max((v for v in recovered_s.values() if v is not None), default=None)
    outcome.bar(
        f"PostgreSQL restart: every instance answers valid calls within {RECOVER_WITHIN:g} s "
        "of its return, none restarted",
        same
        and len(recovered_s) == len(instances)
        and all(v is not None and v <= RECOVER_WITHIN for v in recovered_s.values()),
        f"recovery {recovered_s}; same processes: {same}",
    )
    refused = {k: n for k, n in answers.items() if k != "accepted"}
    refused |= {k: n for k, n in ledger.during_faults.items() if "Authentication" in k}
    outcome.bar(
        f"valid tokens accepted all through a {sizes.database_down:g} s outage (fail closed "
        f"only after {MAX_STALE_SECONDS:g} s unconfirmed)",
        answers["accepted"] > 0 and not refused,
        f"{refused}",
    )
    late = [k for k, v in propagation.latency.items() if v is None or v > RECOVER_WITHIN]
    outcome.bar(
        f"a revocation right after the restart reaches every instance within {RECOVER_WITHIN:g} s",
        not late,
        f"late or never: {late}",
    )
    ledger.summary.append(
        f"kill -9 + PG restart ({figures['postgresql_outage_s']} s): recovered in "
        f"≤{worst if worst is None else round(worst, 1)} s"
    )


# -- the scenario --------------------------------------------------------------------------


async def run(ctx: Context) -> Outcome:
    outcome = Outcome(8, TITLE)
    sizes = QUICK if ctx.quick else FULL
    ledger = Ledger()
    started = time.monotonic()
    async with cluster(ctx, outcome.note) as world:
        outcome.figure("hosts", world.isolation)
        if not world.namespaces:
            outcome.note(f"network namespaces unavailable, loopback fallback: {world.isolation}")
        outcome.figure("startup_s", round(time.monotonic() - started, 1))
        install_write_counter(world)
        orchestrator = mint(ctx.secret, "hosts-orchestrator")
        writer_tokens = [mint(ctx.secret, f"hosts-writer-{n}") for n in range(sizes.writers)]
        recovery_tokens = [mint(ctx.secret, f"hosts-recovery-{n}") for n in range(3)]
        ctx.tokens.add_all([orchestrator, *writer_tokens, *recovery_tokens])
        writer_projects = [ctx.project_dir(f"hosts-w{n}") for n in range(sizes.writers)]
        recovery = [(t, ctx.project_dir(f"hosts-r{n}")) for n, t in enumerate(recovery_tokens)]
        await _start_sessions(
            world, [*zip(writer_tokens, writer_projects, strict=True), *recovery], ledger
        )

        stop = anyio.Event()
        probes_stop = anyio.Event()
        probes_sent = 0
        async with anyio.create_task_group() as tg:
            for n in range(sizes.writers):
                tg.start_soon(_writer, world, n, writer_tokens[n], writer_projects[n], ledger, stop)
            try:
                phase = time.monotonic()
                await _revocations(ctx, world, sizes, ledger, outcome)
                await _envelopes(ctx, world, sizes, orchestrator, ledger, outcome)
                await _throttle(ctx, world, ledger, outcome)
                await _trickle(ctx, world, ledger, outcome)
                phases = {"revocations_envelopes_throttle_s": round(time.monotonic() - phase, 1)}

                async def probes() -> None:
                    nonlocal probes_sent
                    probes_sent = await _probe(ctx, world, ledger.revoked, ledger, probes_stop)

                tg.start_soon(probes)
                phase = time.monotonic()
                await _faults(ctx, world, sizes, ledger, outcome, recovery)
                phases["faults_s"] = round(time.monotonic() - phase, 1)
                outcome.figure("phases", phases)
            finally:
                stop.set()
                probes_stop.set()

        stored = {
            str(row[0])
            for row in world.query("SELECT note FROM checkpoints WHERE note IS NOT NULL")
        }
        lost = [note for note in ledger.acked if note not in stored]
        listing = await run_cli(
            ctx,
            ["sessions", "list", "--all", "--json"],
            data_dir=world.instances[0].data_dir,
            settings=world.cli_settings,
        )
        status = await run_cli(
            ctx,
            ["auth", "status"],
            data_dir=world.instances[0].data_dir,
            settings=world.cli_settings,
        )
        # The shared audit trail, exported while PostgreSQL still runs: scenario 7
        # searches this output (kept under logs/) for secrets, passwords and tokens.
        audit = await run_cli(
            ctx,
            ["audit", "export", "--since", "1h"],
            data_dir=world.instances[0].data_dir,
            settings=world.cli_settings,
        )
        outcome.figure("audit_rows_exported", len(audit.stdout.splitlines()))
        tracebacks = sum(i.log().count(TRACEBACK) for i in world.instances)

    per_instance = collections.Counter(ledger.acked.values())
    outcome.figure(
        "checkpoints",
        {
            "acknowledged": len(ledger.acked),
            "per_instance": dict(sorted(per_instance.items())),
            "lost": len(lost),
            "in_database": len(stored),
        },
    )
    outcome.figure("unauthorized_probes_during_faults", probes_sent)
    outcome.figure("unauthorized_successes", len(ledger.unauthorized))
    outcome.figure("valid_calls_failed_outside_faults", len(ledger.failures))
    outcome.figure("instance_log_tracebacks", tracebacks)
    outcome.bar(
        "0 acknowledged checkpoints lost", not lost and len(ledger.acked) > 0, f"lost: {lost[:5]}"
    )
    outcome.bar(
        "0 unauthorized successes (revoked and forged tokens)",
        not ledger.unauthorized,
        "; ".join(ledger.unauthorized[:3]),
    )
    outcome.bar(
        "no valid call failed outside the fault windows",
        not ledger.failures,
        "; ".join(ledger.failures[:3]),
    )
    outcome.bar("nothing unexpected", not ledger.problems, "; ".join(ledger.problems[:3]))
    outcome.bar(
        "the CLI lists the shared sessions as JSON",
        listing.returncode == 0 and _json_total(listing.stdout) >= sizes.writers + 3,
        listing.stderr.strip()[:120],
    )
    outcome.bar(
        "`auth status` names the shared PostgreSQL database",
        status.returncode == 0 and "PostgreSQL" in status.stdout,
        status.stdout.strip()[-160:],
    )
    outcome.bar("no traceback in any instance log", tracebacks == 0, f"{tracebacks} tracebacks")
    outcome.summary = "; ".join(
        [
            "3 netns" if world.namespaces else "LOOPBACK FALLBACK",
            *ledger.summary,
            f"{len(ledger.acked)} acked, {len(lost)} lost, {len(ledger.unauthorized)} unauthorized",
        ]
    )
    return outcome


def _json_total(text: str) -> int:
    try:
        return int(json.loads(text).get("total", 0))
    except (ValueError, AttributeError):
        return -1
