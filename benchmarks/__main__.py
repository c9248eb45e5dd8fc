"""``python -m benchmarks``: run the parts, print the table (or JSON), write last.json.

Exit status 1 when a full run misses a target. A ``--quick`` run is a smoke test (few
rounds, short batches): it prints the verdicts but exits 0 unless ``--strict``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import FULL, QUICK, Row, machine, progress, table

PARTS = (
    "micro",
    "scale",
    "e2e",
    "propagation",
    "growth",
    "provider",
    "stateless",
    "balancer",
    "overhead",
)
LAST_JSON = Path(__file__).resolve().parent / "last.json"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Authentication cost of session-buddy, measured side by side.",
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON on stdout (the table on stderr)"
    )
    parser.add_argument("--quick", action="store_true", help="fast smoke run (indicative figures)")
    parser.add_argument("--only", choices=PARTS, help="run one part only")
    parser.add_argument(
        "--strict", action="store_true", help="with --quick: exit 1 on a missed target too"
    )
    parser.add_argument(
        "--write-results",
        action="store_true",
        help="rewrite benchmarks/RESULTS.md from this run (full runs of every part only)",
    )
    return parser.parse_args(argv)


def _run_part(name: str, profile: Any) -> list[Row]:
    if name == "micro":
        from benchmarks import micro

        return micro.run(profile)
    if name == "scale":
        from benchmarks import scale

        return scale.run(profile)
    if name == "propagation":
        from benchmarks import propagation

        return propagation.run(profile)
    if name == "growth":
        from benchmarks import growth

        return growth.run(profile)
    if name == "provider":
        from benchmarks import provider

        return provider.run(profile)
    if name == "stateless":
        from benchmarks import stateless

        return stateless.run(profile)
    if name == "overhead":
        from benchmarks import overhead

        return overhead.run(profile)
    if name == "balancer":
        from benchmarks import balancer

        return balancer.run(profile)
    from benchmarks import e2e

    return e2e.run(profile)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    profile = QUICK if args.quick else FULL
    parts = [args.only] if args.only else list(PARTS)
    started = time.time()
    info = machine()
    rows: list[Row] = []
    errors: dict[str, str] = {}
    for part in parts:
        progress(f"{part}: starting ({profile.name})")
        part_start = time.monotonic()
        try:
            rows += _run_part(part, profile)
        except Exception as exc:  # report the other parts anyway
            errors[part] = f"{type(exc).__name__}: {exc}"
            progress(f"{part}: FAILED to run: {errors[part]}")
        progress(f"{part}: done in {time.monotonic() - part_start:.1f} s")

    missed = [row.name for row in rows if row.passed is False]
    result = {
        "profile": profile.name,
        "parts": parts,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": info,
        "rows": [row.to_json() for row in rows],
        "missed": missed,
        "errors": errors,
        "passed": not missed and not errors,
    }
    LAST_JSON.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if args.write_results:
        if profile is FULL and parts == list(PARTS) and not errors:
            from benchmarks import report

            progress(f"results written to {report.write(result)}")
        else:
            progress("RESULTS.md not written: it needs a full run of every part, without errors")

    text = table(rows)
    summary = (
        f"{len(rows)} rows, {len(missed)} missed"
        + (f" ({', '.join(missed)})" if missed else "")
        + (f"; errors in {', '.join(errors)}" if errors else "")
        + f"; {result['duration_s']} s ({profile.name}); JSON in {LAST_JSON}"
    )
    if args.json:
        print(text, summary, sep="\n", file=sys.stderr)
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(
            f"{info['cpu']} ×{info['nproc']}, Python {info['python']}, PyJWT {info['PyJWT']}, "
            f"joserfc {info['joserfc']}, mcp {info['mcp']}"
        )
        print(text)
        print(summary)
    if errors:
        return 1
    if missed and (profile is FULL or args.strict):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
