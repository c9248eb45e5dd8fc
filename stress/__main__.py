"""``python -m stress [--only N ...] [--json] [--keep] [--quick]``: run, judge, summarise.

Exit status 0 when every bar of every scenario run was met, 1 otherwise, 3 when the
whole run exceeded its time limit (everything it started is killed first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

import anyio

from session_buddy.mcp.auth import reload_auth_config
from stress import (
    s1_fuzz,
    s2_attacks,
    s3_load,
    s4_crash,
    s5_processes,
    s6_storage,
    s7_hygiene,
    s8_hosts,
    s9_pause,
    s10_audit_flood,
)
from stress.harness import Context, Outcome, quiet_library_logging
from testkit.environment import inherited_configuration

SCENARIOS: dict[int, ModuleType] = {
    1: s1_fuzz,
    2: s2_attacks,
    3: s3_load,
    4: s4_crash,
    5: s5_processes,
    6: s6_storage,
    7: s7_hygiene,
    8: s8_hosts,
    9: s9_pause,
    10: s10_audit_flood,
}
SCENARIO_LIMIT_SECONDS = 100.0  # unless the module sets LIMIT_SECONDS
FIGURES_WIDTH = 125  # characters of the summary table's figures column, then it wraps
RUN_LIMIT_SECONDS = 360.0  # the bound for the whole target on 2 cores


def _parse_only(values: list[str] | None) -> list[int]:
    if not values:
        return sorted(SCENARIOS)
    chosen: set[int] = set()
    for value in values:
        for part in value.split(","):
            number = int(part)
            if number not in SCENARIOS:
                known = ", ".join(map(str, SCENARIOS))
                raise argparse.ArgumentTypeError(f"no scenario {number} (there are {known})")
            chosen.add(number)
    return sorted(chosen)


def _prepare_process(ctx: Context) -> None:
    """This process plays Mahavishnu: same secret, its own data dir, no inherited config."""
    for name in inherited_configuration():
        del os.environ[name]
    os.environ.update(
        SESSION_BUDDY_SECRET=ctx.secret,
        SESSION_BUDDY_PREVIOUS_SECRETS=",".join(ctx.previous_secrets),
        SESSION_BUDDY_DATA_DIR=str(ctx.harness_data),
        SESSION_BUDDY_LOG_LEVEL="DEBUG",
    )
    os.chdir(ctx.cwd)  # no .env from the checkout
    quiet_library_logging(ctx)
    reload_auth_config()


def _run_one(ctx: Context, number: int, runner: Callable[[], Awaitable[Outcome]]) -> Outcome:
    module = SCENARIOS[number]
    ctx.say(f"\n=== {number}. {module.TITLE} ===")
    started = time.monotonic()

    limit = float(getattr(module, "LIMIT_SECONDS", SCENARIO_LIMIT_SECONDS))

    async def bounded() -> Outcome:
        with anyio.fail_after(limit):
            return await runner()

    try:
        outcome = anyio.run(bounded)
    except BaseException as exc:  # a harness failure fails the scenario, never the run
        if isinstance(exc, KeyboardInterrupt):
            raise
        outcome = Outcome(number, module.TITLE)
        outcome.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc(file=sys.stderr)
    finally:
        ctx.kill_children()
    outcome.seconds = time.monotonic() - started
    _print_outcome(ctx, outcome)
    return outcome


def _print_outcome(ctx: Context, outcome: Outcome) -> None:
    for name, value in outcome.figures.items():
        ctx.say(f"  {name}: {json.dumps(value, ensure_ascii=False, default=str)}")
    for bar in outcome.bars:
        mark = "ok  " if bar.ok else "FAIL"
        detail = f" — {bar.detail}" if bar.detail and not bar.ok else ""
        ctx.say(f"  [{mark}] {bar.name}{detail}")
    for note in outcome.notes:
        ctx.say(f"  note: {note}")
    if outcome.error:
        ctx.say(f"  ERROR: {outcome.error}")
    ctx.say(f"  → {outcome.verdict} in {outcome.seconds:.1f} s")


def _summary_table(outcomes: list[Outcome], total: float) -> str:
    """One row per scenario; a long figures cell wraps onto continuation lines."""
    rows = [("#", "scenario", "figures", "verdict")]
    for o in outcomes:
        headline = o.summary or (o.error or "")
        rows.append((str(o.number), o.title, headline, f"{o.verdict} ({o.seconds:.0f} s)"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    widths[2] = min(widths[2], FIGURES_WIDTH)
    lines = []
    for i, row in enumerate(rows):
        figures = textwrap.wrap(row[2], widths[2]) or [""]
        for n, part in enumerate(figures):
            cells = [row[0], row[1], part, row[3]] if n == 0 else ["", "", part, ""]
            lines.append(
                " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
            )
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    verdict = "PASS" if outcomes and all(o.passed for o in outcomes) else "FAIL"
    lines.append(f"\nTotal {total:.0f} s — {verdict}")
    return "\n".join(lines)


def _watchdog(ctx: Context) -> threading.Timer:
    def abort() -> None:
        print(f"\nstress: run exceeded {RUN_LIMIT_SECONDS:.0f} s; killing everything", flush=True)
        ctx.kill_children()
        os._exit(3)

    timer = threading.Timer(RUN_LIMIT_SECONDS, abort)
    timer.daemon = True
    timer.start()
    return timer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stress", description=__doc__)
    parser.add_argument(
        "--only", action="append", metavar="N", help="run only scenario N (repeatable, or 1,2)"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON only")
    parser.add_argument("--keep", action="store_true", help="keep the temporary root")
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (for the harness's own smoke test)"
    )
    args = parser.parse_args(argv)
    try:
        selected = _parse_only(args.only)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(str(exc))

    root = Path(tempfile.mkdtemp(prefix="session-buddy-stress-"))
    ctx = Context(root, verbose=not args.json, quick=args.quick)
    original_cwd = Path.cwd()
    timer = _watchdog(ctx)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    try:
        _prepare_process(ctx)
        ctx.say(f"stress: root {root}; scenarios {', '.join(map(str, selected))}")
        for number in selected:
            if number == 7:
                continue
            module = SCENARIOS[number]
            outcomes.append(_run_one(ctx, number, lambda m=module: m.run(ctx)))
        if 7 in selected:
            others = list(outcomes)
            outcomes.append(_run_one(ctx, 7, lambda: s7_hygiene.run(ctx, others)))
    finally:
        timer.cancel()
        ctx.kill_children()
        ctx.release_immutable()
        os.chdir(original_cwd)
        if args.keep:
            print(f"stress: kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    total = time.monotonic() - started
    if args.json:
        print(
            json.dumps(
                {"total_seconds": round(total, 1), "scenarios": [o.to_json() for o in outcomes]},
                indent=2,
                default=str,
            )
        )
    else:
        print("\n" + _summary_table(outcomes, total))
    return 0 if outcomes and all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
