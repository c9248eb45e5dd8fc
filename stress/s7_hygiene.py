"""Scenario 7: no secret and no token in anything the other scenarios left behind.

Every server and CLI ran with DEBUG logging, their stdout and stderr captured under
``logs/``; every data dir is under the run's root. Scenario 7 adds what an operator reads:
a server logging JSON lines, its ``/metrics`` page, and ``audit export`` / ``audit list
--json`` of every data dir's audit trail (scenario 8 exports the PostgreSQL one).
Afterwards every file under the root (with PostgreSQL's own log, copied there by
scenario 8), and the other scenarios' results
as ``--json`` prints them, are searched for the current and previous secrets, for the
password of every database URL the run used, and for every token the run sent (valid,
forged and mutated) — verbatim, JSON-escaped and repr-escaped — and for the signature
segment of each. Bar: zero occurrences. The harness's own third-party log
(``harness-deps.log``, written by this process's HTTP client, not by session-buddy) is
not searched. Run alone (``--only 7``), it first exercises a server and the CLI itself.
"""

from __future__ import annotations

import collections
import json
import re
from urllib.parse import quote

from stress.harness import Context, Outcome, launch_server, ready, run_cli
from stress.tokens import forged_tokens
from stress.wire import call, raw_call, raw_client
from testkit.mcp import mcp_http
from testkit.tokens import mint

TITLE = "Secret hygiene"
KEY = 16
_RUN = re.compile(rb"[A-Za-z0-9_\-]{16,}")
NOT_SEARCHED = {"harness-deps.log"}


class NeedleIndex:
    """Finds many long needles in big files quickly: index by a 16-byte base64url key."""

    def __init__(self) -> None:
        self._by_key: dict[bytes, list[tuple[bytes, str]]] = collections.defaultdict(list)
        self._unkeyed: list[tuple[bytes, str]] = []
        self.count = 0

    def add(self, needle: bytes, label: str) -> None:
        if len(needle) < KEY:
            return
        self.count += 1
        runs = _RUN.findall(needle)
        if runs:
            self._by_key[max(runs, key=len)[:KEY]].append((needle, label))
        else:
            self._unkeyed.append((needle, label))

    def find(self, data: bytes) -> list[str]:
        found: list[str] = []
        checked: set[bytes] = set()
        for match in _RUN.finditer(data):
            run = match.group()
            for i in range(len(run) - KEY + 1):
                for needle, label in self._by_key.get(run[i : i + KEY], ()):
                    if needle not in checked:
                        checked.add(needle)
                        if needle in data:
                            found.append(label)
        found += [label for needle, label in self._unkeyed if needle in data]
        return found


def _forms(token: str) -> set[bytes]:
    forms = {token, json.dumps(token)[1:-1], repr(token)[1:-1]}
    return {f.encode("utf-8", "backslashreplace") for f in forms}


def _index(ctx: Context) -> NeedleIndex:
    index = NeedleIndex()
    for token in ctx.tokens:
        for form in _forms(token):
            index.add(form, "token")
        parts = token.split(".")
        if len(parts) == 3 and len(parts[2]) >= 40:
            index.add(parts[2].encode("utf-8", "backslashreplace"), "token signature")
    return index


def _scanner_finds_a_planted_token() -> bool:
    """Self-check: the index finds a token planted verbatim, JSON- and repr-escaped."""
    token = mint("x" * 32, "canary", note='q"uote\\')
    index = NeedleIndex()
    for form in _forms(token):
        index.add(form, "token")
    planted = [
        f"INFO x: got {token} ok".encode(),
        json.dumps({"args": {"token": token}}).encode(),
        repr({"token": token}).encode(),
    ]
    return all(index.find(b"noise " * 1000 + text + b" tail") for text in planted)


async def _exercise(ctx: Context) -> None:
    """Alone, scenario 7 makes its own traffic: good and bad calls, header and argument."""
    data_dir = ctx.data_dir("hygiene")
    good = mint(ctx.secret, "hygiene")
    old = mint(ctx.previous_secrets[0], "hygiene-old")
    bad = forged_tokens(ctx.secret, 6)
    ctx.tokens.add_all([good, old, *bad])
    project = ctx.project_dir("hygiene")
    server = launch_server(ctx, "hygiene", data_dir)
    try:
        await ready(server)
        async with mcp_http(server.url) as client:
            await call(client, "start_session", {"working_directory": str(project), "token": good})
            await call(client, "checkpoint", {"working_directory": str(project), "token": old})
            for token in bad:
                await call(client, "whoami", {"token": token})
        async with raw_client(ctx.addresses.take()) as http:
            await raw_call(http, server.url, "whoami", {}, bearer=good)
            for token in bad:
                await raw_call(http, server.url, "whoami", {}, bearer=token)
        await run_cli(ctx, ["token", "revoke", good], data_dir=data_dir)
        async with mcp_http(server.url) as client:
            await call(client, "whoami", {"token": good})
    finally:
        server.stop()


async def _observe(ctx: Context, outcome: Outcome) -> None:
    """A JSON-logging server's traffic, its /metrics, and every data dir's audit trail,
    all written under logs/ to be searched like everything else."""
    data_dir = ctx.data_dir("hygiene-json")
    good = mint(ctx.secret, "observer", jti="observer-1")
    bad = forged_tokens(ctx.secret, 4)
    ctx.tokens.add_all([good, *bad])
    server = launch_server(
        ctx, "hygiene-json", data_dir, settings={"SESSION_BUDDY_LOG_FORMAT": "json"}
    )
    try:
        await ready(server)
        async with mcp_http(server.url) as client:
            await call(client, "whoami", {"token": good})
            for token in bad:
                await call(client, "whoami", {"token": token})
        async with raw_client(ctx.addresses.take()) as http:
            await raw_call(http, server.url, "list_sessions", {}, bearer=good)
            for token in bad:
                await raw_call(http, server.url, "list_sessions", {}, bearer=token)
            metrics = await http.get(server.url.replace("/mcp", "/metrics"))
        (ctx.logs / "metrics-hygiene-json.txt").write_text(metrics.text)
    finally:
        server.stop()  # a clean stop writes the audit batch still pending
    log = server.log_path.read_text(errors="replace").splitlines()
    parsed = sum(1 for line in log if _json_line(line))
    outcome.figure("json_log_lines", {"lines": len(log), "parsed": parsed})
    outcome.bar("every JSON log line is one JSON object", bool(log) and parsed == len(log))
    exported = 0
    for directory in ctx.data_dirs:
        if (directory / "session-buddy.db").exists():
            for args in (["audit", "export", "--since", "1w"], ["audit", "list", "--json"]):
                result = await run_cli(ctx, args, data_dir=directory)
                exported += len(result.stdout.splitlines()) if args[1] == "export" else 0
    outcome.figure("audit_rows_exported", exported)
    outcome.bar("the audit trails had rows to search", exported > 0)


def _json_line(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


async def run(ctx: Context, others: list[Outcome]) -> Outcome:
    outcome = Outcome(7, TITLE)
    if not others:
        await _exercise(ctx)
        outcome.note("run alone: exercised a server and the CLI first")
    await _observe(ctx, outcome)
    secrets_ = [
        (s.encode(), label)
        for s, label in zip(
            ctx.server_secrets, ["secret", "previous secret", "previous secret"], strict=True
        )
    ]
    secrets_ += [
        (form.encode(), "database password")
        for password in ctx.database_passwords
        for form in {password, quote(password, safe="")}
    ]
    index = _index(ctx)
    files = [p for p in sorted(ctx.root.rglob("*")) if p.is_file() and p.name not in NOT_SEARCHED]
    results = json.dumps([o.to_json() for o in others], default=str).encode()
    hits: collections.Counter[str] = collections.Counter()
    where: list[str] = []
    size = 0
    for name, read in [
        *((str(p.relative_to(ctx.root)), p.read_bytes) for p in files),
        ("the other scenarios' --json results", lambda: results),
    ]:
        try:
            data = read()
        except OSError as exc:
            outcome.note(f"cannot read {name}: {exc.strerror}")
            continue
        size += len(data)
        found = [label for secret, label in secrets_ if secret in data] + index.find(data)
        for label in found:
            hits[label] += 1
        if found:
            where.append(f"{name}: {', '.join(sorted(set(found)))}")
    logs = [p for p in files if p.is_relative_to(ctx.logs)]
    data_files = [p for p in files if any(p.is_relative_to(d) for d in ctx.data_dirs)]
    outcome.figure(
        "files_searched",
        {"total": len(files), "logs": len(logs), "data_dir_files": len(data_files)},
    )
    outcome.figure("megabytes_searched", round(size / 1e6, 2))
    outcome.figure("log_lines", sum(p.read_bytes().count(b"\n") for p in logs))
    outcome.figure("secrets_searched", len(ctx.server_secrets))
    outcome.figure("database_passwords_searched", len(ctx.database_passwords))
    outcome.figure("tokens_searched", len(ctx.tokens))
    outcome.figure("needles", index.count)
    outcome.figure("occurrences", dict(hits))
    secret_hits = sum(v for k, v in hits.items() if "secret" in k and "signature" not in k)
    password_hits = hits["database password"]
    token_hits = sum(v for k, v in hits.items() if k.startswith("token"))
    outcome.bar(
        "0 occurrences of the secret or previous secrets", secret_hits == 0, "; ".join(where[:4])
    )
    if ctx.database_passwords:
        outcome.bar(
            "0 occurrences of a database URL's password",
            password_hits == 0,
            "; ".join(where[:4]),
        )
    else:
        outcome.note("no database URL was used in this run (scenario 8 not run): no password")
    outcome.bar("0 occurrences of any token used", token_hits == 0, "; ".join(where[:4]))
    outcome.bar("there was something to search", bool(logs) and len(ctx.tokens) > 0)
    outcome.bar("scanner self-check: a planted token is found", _scanner_finds_a_planted_token())
    outcome.summary = (
        f"{len(files)} files ({size / 1e6:.1f} MB), 3 secrets + "
        f"{len(ctx.database_passwords)} DB passwords + {len(ctx.tokens)} tokens: "
        f"{secret_hits} secret / {password_hits} password / {token_hits} token occurrences"
    )
    return outcome
