"""Scenario 6: storage faults give a clear error naming the file, and lose nothing.

The harness runs as root in CI, where ``chmod`` stops nothing, so the faults are made
with means root cannot ignore:

* a data dir whose parent is a regular file, and a data dir that *is* a regular file;
* a data dir without write permission: ``chattr +i`` on the directory (empty, and
  holding a database), when the filesystem supports it (skipped with a note otherwise);
* a database truncated to half its size, and one whose header is garbage;
* a read-only database file (``chattr +i`` on the file).

For every fault that stops the server: ``serve`` (HTTP, twice — a crash loop would show
as a hang or a different second answer) and ``serve`` (stdio, stdin held open) must each
exit non-zero within :data:`PROMPT_SECONDS`, print a message naming the file, print no
traceback, and leave every byte under the data dir as it was. A read-only database may
instead be served: then reads must work, writes must fail with a message naming the
file, the server must stay up, and the file must be unchanged. The CLI's answer on each
fault (``token revoke``) is recorded too.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from session_buddy.auth.principal import Principal
from session_buddy.auth.revocation import RevocationStore
from session_buddy.sessions.service import SessionService
from session_buddy.store import SqliteDatabase
from stress.harness import TRACEBACK, Context, Outcome, launch_server, ready, run_cli
from stress.wire import call
from testkit.mcp import mcp_http, text_of
from testkit.server import StartFailed, free_port
from testkit.tokens import mint

TITLE = "Storage faults"
PROMPT_SECONDS = 10.0
PARALLEL = 3
DB_NAME = "session-buddy.db"
SESSIONS = 3
CHECKPOINTS = 15
READ_ONLY = "read-only database file"
QUICK_FAULTS = {"parent is a file", "truncated database (half)", READ_ONLY}


@dataclass
class Attempt:
    how: str
    returncode: int | None
    seconds: float
    output: str
    hung: bool

    @property
    def message(self) -> str:
        """The error line the process printed (the last line mentioning the database)."""
        lines = [line for line in self.output.splitlines() if line.startswith("❌")]
        return lines[-1] if lines else (self.output.strip().splitlines() or [""])[-1]


@dataclass
class Fault:
    name: str
    data_dir: Path
    names: list[Path]  # a message must name one of these
    watch: list[Path] = field(default_factory=list)  # bytes that must not change
    attempts: list[Attempt] = field(default_factory=list)
    before: dict[str, str] = field(default_factory=dict)
    cli_message: str = ""


def _fingerprint(paths: list[Path]) -> dict[str, str]:
    """SHA-256 of every file at or under ``paths`` (directories listed as such)."""
    seen: dict[str, str] = {}
    for path in paths:
        candidates = [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]
        for item in candidates:
            if item.is_file():
                seen[str(item)] = hashlib.sha256(item.read_bytes()).hexdigest()
            elif item.is_dir():
                seen[str(item)] = "<dir>"
            else:
                seen[str(item)] = "<absent>"
    return seen


def _populate(data_dir: Path, projects: Path) -> dict[str, int]:
    """A real database with sessions, checkpoints and a revocation, fully checkpointed."""
    database = SqliteDatabase(data_dir / DB_NAME).open()
    service = SessionService(database)
    owner = Principal(user_id="storage-owner", authenticated=True)
    for n in range(SESSIONS):
        project = projects / f"p{n}"
        project.mkdir(parents=True, exist_ok=True)
        service.start(owner, str(project))
        for i in range(CHECKPOINTS):
            service.checkpoint(owner, str(project), f"kept {n}-{i} " * 8)
    RevocationStore(database).revoke("jti:storage-fault", time.time() + 3600)
    database.connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    counts = _counts(database)
    database.close()
    for leftover in ("-wal", "-shm"):
        (data_dir / f"{DB_NAME}{leftover}").unlink(missing_ok=True)
    return counts


def _counts(database: SqliteDatabase) -> dict[str, int]:
    return {
        table: int(database.query(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 - fixed names
        for table in ("sessions", "checkpoints", "revoked_tokens")
    }


def _chattr_works(probe_dir: Path) -> bool:
    probe = probe_dir / "chattr-probe"
    probe.write_text("probe")
    try:
        if subprocess.run(
            ["chattr", "+i", str(probe)], capture_output=True, check=False
        ).returncode:
            return False
        try:
            with probe.open("a") as handle:
                handle.write("x")
        except PermissionError:
            return True
        return False
    except FileNotFoundError:
        return False
    finally:
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True, check=False)
        probe.unlink(missing_ok=True)


def _immutable(ctx: Context, path: Path) -> None:
    subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=True)
    ctx.immutable.append(path)


async def _attempt(ctx: Context, fault: Fault, transport: str) -> Attempt:
    args = [sys.executable, "-m", "session_buddy", "serve", "--log-level", "DEBUG"]
    if transport == "http":
        args += ["--transport", "http", "--port", str(free_port())]
    started = time.monotonic()
    process = await anyio.open_process(
        args,
        cwd=ctx.cwd,
        env=ctx.env(fault.data_dir),
        stdin=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = b""
    hung = False
    try:
        with anyio.move_on_after(PROMPT_SECONDS) as scope:
            assert process.stdout is not None
            async for chunk in process.stdout:
                output += chunk
            await process.wait()
        hung = scope.cancelled_caught
    finally:
        if process.returncode is None:
            process.kill()
            with anyio.CancelScope(shield=True):
                await process.wait()
        if process.stdin is not None:
            await process.stdin.aclose()
    (ctx.logs / f"{ctx.unique('fault-' + transport)}.log").write_bytes(output)
    return Attempt(
        how=transport,
        returncode=None if hung else process.returncode,
        seconds=time.monotonic() - started,
        output=output.decode("utf-8", "replace"),
        hung=hung,
    )


def _judge_refusal(fault: Fault, after: dict[str, str]) -> list[str]:
    problems = []
    for attempt in fault.attempts:
        where = f"{fault.name} ({attempt.how})"
        if attempt.hung:
            problems.append(f"{where}: still running after {PROMPT_SECONDS:.0f} s")
            continue
        if attempt.returncode == 0:
            problems.append(f"{where}: exit code 0")
        if TRACEBACK in attempt.output:
            problems.append(f"{where}: traceback printed")
        if not any(str(name) in attempt.message for name in fault.names):
            problems.append(f"{where}: message does not name the file: {attempt.message[:100]!r}")
    if len({a.message for a in fault.attempts}) > 1:
        problems.append(f"{fault.name}: a second start answered differently")
    if after != fault.before:
        changed = sorted(
            k for k in set(after) | set(fault.before) if after.get(k) != fault.before.get(k)
        )
        problems.append(f"{fault.name}: files changed: {', '.join(changed)[:160]}")
    return problems


async def _read_only_database(
    ctx: Context, fault: Fault, token: str, counts: dict[str, int], outcome: Outcome
) -> tuple[list[str], list[str]]:
    """Serve a database file that cannot be written: reads work, writes fail clearly.

    Returns the problems seen while serving, and any damage to the stored data.
    """
    problems: list[str] = []
    damage: list[str] = []
    database = fault.data_dir / DB_NAME
    server = launch_server(ctx, "read-only-db", fault.data_dir)
    result: dict[str, Any] = {}
    try:
        await ready(server)
        result["started"] = True
        async with mcp_http(server.url) as client:
            listed = await call(client, "list_sessions", {"token": token, "limit": 50})
            result["read"] = "error" if listed.is_error else "ok"
            if listed.is_error:
                problems.append(
                    f"read-only database: list_sessions failed: {text_of(listed)[:100]}"
                )
            project = ctx.project_dir("read-only")
            written = await call(
                client, "start_session", {"working_directory": str(project), "token": token}
            )
            result["write_error"] = text_of(written)[:160]
            if not written.is_error:
                problems.append("read-only database: a write succeeded")
            elif str(database) not in text_of(written):
                shown = text_of(written)[:100]
                problems.append(f"read-only database: write error names no file: {shown!r}")
        async with mcp_http(server.url) as client:
            again = await call(client, "whoami", {"token": token})
        result["still_serving"] = not again.is_error and server.process.poll() is None
        if not result["still_serving"]:
            problems.append("read-only database: server stopped serving")
    except StartFailed as exc:
        result["started"] = False
        message = str(exc)
        result["startup_error"] = message[-200:]
        if str(database) not in message or TRACEBACK in message:
            problems.append(f"read-only database: startup failure unclear: {message[-120:]!r}")
    finally:
        server.stop()
    if server.log().count(TRACEBACK):
        problems.append("read-only database: traceback in the server log")
    ctx.release_immutable()
    if _fingerprint([database]) != fault.before:
        damage.append("read-only database: files changed (the database file)")
    reopened = SqliteDatabase(database, create=False).open()
    try:
        if _counts(reopened) != counts:
            damage.append(f"read-only database: rows lost: {_counts(reopened)} != {counts}")
    finally:
        reopened.close()
    outcome.figure("read_only_database", result)
    return problems, damage


def _make_faults(ctx: Context, base: Path, populated: Path, chattr: bool) -> list[Fault]:
    def copy_of(name: str) -> Path:
        target = base / name
        shutil.copytree(populated, target)
        ctx.data_dirs.append(target)
        return target

    faults: list[Fault] = []
    blocker = base / "regular-file"
    blocker.write_text("I am a file, not a directory\n")
    faults.append(Fault("parent is a file", blocker / "data", [blocker], [blocker]))
    as_file = base / "data-is-a-file"
    as_file.write_text("not a directory either\n")
    faults.append(Fault("data dir is a file", as_file, [as_file], [as_file]))

    truncated = copy_of("truncated")
    db = truncated / DB_NAME
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    faults.append(Fault("truncated database (half)", truncated, [db], [truncated]))
    garbage = copy_of("garbage-header")
    db = garbage / DB_NAME
    data = bytearray(db.read_bytes())
    data[:100] = b"this is not the SQLite header you are looking for ".ljust(100, b"!")
    db.write_bytes(bytes(data))
    faults.append(Fault("garbage header", garbage, [db], [garbage]))

    if chattr:
        empty = base / "no-permission-empty"
        empty.mkdir()
        _immutable(ctx, empty)
        faults.append(
            Fault("no write permission (empty dir)", empty, [empty / DB_NAME, empty], [empty])
        )
        full = copy_of("no-permission-with-db")
        _immutable(ctx, full)
        faults.append(
            Fault("no write permission (dir with db)", full, [full / DB_NAME, full], [full])
        )
        read_only = copy_of("read-only-db")
        db = read_only / DB_NAME
        faults.append(Fault(READ_ONLY, read_only, [db], [db]))
    if ctx.quick:
        faults = [f for f in faults if f.name in QUICK_FAULTS]
    for fault in faults:
        fault.before = _fingerprint(fault.watch)
    if chattr and any(f.name == READ_ONLY for f in faults):
        _immutable(ctx, base / "read-only-db" / DB_NAME)
    return faults


async def run(ctx: Context) -> Outcome:
    outcome = Outcome(6, TITLE)
    base = ctx.root / "storage"
    base.mkdir()
    token = mint(ctx.secret, "storage-owner")
    ctx.tokens.add(token)
    populated = base / "populated"
    counts = await anyio.to_thread.run_sync(_populate, populated, base / "projects")
    outcome.figure("populated_rows", counts)
    chattr = _chattr_works(base)
    if not chattr:
        outcome.note("chattr +i unsupported here: no-permission and read-only cases skipped")
    faults = _make_faults(ctx, base, populated, chattr)
    refusing = [f for f in faults if f.name != READ_ONLY]
    transports = ("http", "stdio") if ctx.quick else ("http", "http", "stdio")
    limiter = anyio.Semaphore(PARALLEL)

    async def exercise(fault: Fault) -> None:
        async with limiter:
            for transport in transports:
                fault.attempts.append(await _attempt(ctx, fault, transport))
            cli = await run_cli(ctx, ["token", "revoke", token], data_dir=fault.data_dir)
            said = (cli.stderr.strip() or cli.stdout.strip()).splitlines()
            fault.cli_message = said[-1][:200] if said else f"rc {cli.returncode}"

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        for fault in refusing:
            tg.start_soon(exercise, fault)

    unclear: list[str] = []
    damaged: list[str] = []
    table = {}
    for fault in refusing:
        problems = _judge_refusal(fault, _fingerprint(fault.watch))
        damaged += [p for p in problems if "files changed" in p]
        unclear += [p for p in problems if "files changed" not in p]
        table[fault.name] = {
            "exit_codes": [a.returncode if not a.hung else "hung" for a in fault.attempts],
            "seconds": [round(a.seconds, 1) for a in fault.attempts],
            "message": fault.attempts[0].message[:160],
            "cli_revoke": fault.cli_message,
        }
        if not any(str(name) in fault.cli_message for name in fault.names):
            outcome.note(
                f"CLI 'token revoke' on '{fault.name}' names no file: {fault.cli_message[:120]!r}"
            )
    outcome.figure("refusals", table)
    for fault in faults:
        if fault.name == READ_ONLY:
            served, lost = await _read_only_database(ctx, fault, token, counts, outcome)
            unclear += served
            damaged += lost
    outcome.figure("seconds", round(time.monotonic() - started, 1))
    outcome.bar(
        "each fault: clear message naming the file, non-zero exit, no traceback, no crash loop",
        not unclear,
        "; ".join(unclear)[:400],
    )
    outcome.bar("nothing already stored is lost or overwritten", not damaged, "; ".join(damaged))
    starts = " + ".join(f"{transports.count(t)} {t}" for t in ("http", "stdio"))
    outcome.summary = (
        f"{len(refusing)} refusing faults × ({starts} starts) + "
        f"{len(faults) - len(refusing)} read-only db served: {len(unclear)} unclear, "
        f"{len(damaged)} damaged; {'chattr +i used' if chattr else 'no chattr: 3 cases skipped'}"
    )
    return outcome
