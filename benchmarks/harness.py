"""What every part needs: interleaved timing, rows with targets, the table and the JSON.

Timing: each candidate is a callable ``run(n)`` doing ``n`` operations. A round times
every candidate once (``time.perf_counter_ns``), in an order rotated from round to round,
after warm-up rounds that are discarded. A row's figure is the median over rounds of the
per-round ratio candidate / baseline, so both sides of a ratio were measured seconds apart.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from testkit.environment import inherited_configuration

Runner = Callable[[int], None]


@dataclass
class Row:
    """One line of the results table.

    ``value`` is what the target is about (usually a ratio); ``target`` is ``None`` for
    rows that are reported for context only (baselines, absolute figures).
    """

    part: str
    name: str
    what: str
    value: float
    unit: str = "×"
    op: str | None = None  # "<=" or ">="
    target: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.op is None:
            return None
        return self.value <= self.target if self.op == "<=" else self.value >= self.target

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "info"}[self.passed]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        return data


@dataclass
class Profile:
    """How hard to measure: ``quick`` is a smoke run, ``full`` the reported one."""

    name: str
    rounds: int
    warmup_rounds: int
    batch_seconds: float  # target duration of one candidate's batch in a micro round
    e2e_rounds: int
    e2e_calls: int  # tool calls per configuration per round
    rss_tokens: int
    revoked: int
    propagation_rounds: int  # each: a few PostgreSQL revocations and one SQLite revocation
    growth_fraction: float  # of the large database (1.0: 10⁵ sessions, 10⁶ …)
    growth_rounds: int  # rounds of tool calls (and of CLI runs) on the empty and large one
    growth_calls: int  # calls per tool per server per round
    growth_starts: int  # server starts (and CLI runs) on each database, after a warm-up


QUICK = Profile("quick", 7, 1, 0.005, 5, 20, 100_000, 100_000, 3, 0.01, 2, 3, 1)
FULL = Profile("full", 31, 2, 0.02, 40, 60, 1_000_000, 100_000, 50, 1.0, 10, 8, 5)


def interleave(
    runners: dict[str, Runner],
    ops: dict[str, int],
    rounds: int,
    warmup_rounds: int,
    *,
    setups: dict[str, Callable[[], None]] | None = None,
) -> dict[str, list[float]]:
    """Nanoseconds per operation of each runner, one value per measured round.

    ``setups[name]``, when given, runs (untimed) right before each batch of ``name``.
    """
    names = list(runners)
    per_op: dict[str, list[float]] = {name: [] for name in names}
    for number in range(warmup_rounds + rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            n = ops[name]
            if setups and name in setups:
                setups[name]()
            start = time.perf_counter_ns()
            runners[name](n)
            elapsed = time.perf_counter_ns() - start
            if number >= warmup_rounds:
                per_op[name].append(elapsed / n)
    return per_op


def calibrate(run: Runner, batch_seconds: float, *, probe: int = 50, cap: int = 200_000) -> int:
    """How many operations of ``run`` take about ``batch_seconds`` (uses ``probe`` ops)."""
    start = time.perf_counter_ns()
    run(probe)
    per_op = max((time.perf_counter_ns() - start) / probe, 1.0)
    return max(probe, min(cap, int(batch_seconds * 1e9 / per_op)))


def ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max, rounded for the JSON."""
    if not values:
        return {}
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


class CountingHandler(logging.Handler):
    """Swallows records but counts them: the real logging path runs, nothing is printed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextlib.contextmanager
def captured_auth_log() -> Iterator[CountingHandler]:
    """Route ``session_buddy`` logging into a :class:`CountingHandler` for the block."""
    logger = logging.getLogger("session_buddy")
    handler = CountingHandler()
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


def clean_session_buddy_environment() -> None:
    """Forget inherited ``SESSION_BUDDY_*`` settings so every run uses the defaults."""
    for name in inherited_configuration():
        del os.environ[name]


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "PyJWT": _version("PyJWT"),
        "joserfc": _version("joserfc"),
        "mcp": _version("mcp"),
        "session-buddy": _version("session-buddy"),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def format_value(row: Row) -> str:
    if row.unit == "×":
        return f"{row.value:.3f}×"
    return f"{row.value:.3g} {row.unit}".strip()


def format_target(row: Row) -> str:
    if row.target is None or row.op is None:
        return "—"
    op = "≤" if row.op == "<=" else "≥"
    unit = "×" if row.unit == "×" else f" {row.unit}"
    return f"{op} {row.target:g}{unit}"


def table(rows: list[Row], *, markdown: bool = False) -> str:
    """The results as an aligned text table, or as a Markdown table."""
    header = ["part", "measurement", "measured", "target", "result", "absolute"]
    lines = [
        [
            row.part,
            row.what,
            format_value(row),
            format_target(row),
            row.verdict,
            str(row.details.get("absolute", "")),
        ]
        for row in rows
    ]
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max([len(h), *(len(cells[i]) for cells in lines)]) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*cells) for cells in lines]
    return "\n".join(out)
