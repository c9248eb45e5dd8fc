"""Part 3: does validation stay cheap as state grows?

* 100,000 revocations in the store vs none: ``validate_token`` on distinct tokens (every
  call a cache miss), each configuration with its own fresh manager on its own data dir,
  their batches alternating.
* A revocation written by another process (``revoke_token`` in a subprocess on the same
  data dir) is honoured by this process's cached token within 1 s.
* RSS growth over 1,000,000 distinct tokens (``benchmarks.rss`` in a subprocess, so the
  figure is not polluted by this process's pools).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.environment import AuthEnvironment, auth_environment
from benchmarks.harness import (
    Profile,
    Row,
    Runner,
    captured_auth_log,
    interleave,
    median,
    progress,
    ratios,
    spread,
)
from benchmarks.micro import Pool
from benchmarks.minting import FastMinter
from session_buddy.mcp import auth
from session_buddy.store import SqliteDatabase
from testkit.environment import clean_environment
from testkit.processes import REPO_ROOT, run_python

PART = "scale"
REVOCATION_DEADLINE_S = 1.0
RSS_GROWTH_LIMIT_MB = 50.0

_REVOKE_IN_ANOTHER_PROCESS = """
import json, sys, time
from session_buddy.mcp.auth import get_auth_error, revoke_token
ok = revoke_token(sys.stdin.read().strip())
print(json.dumps({"ok": ok, "committed": time.time(), "error": get_auth_error()}))
"""


def run(profile: Profile) -> list[Row]:
    with captured_auth_log(), auth_environment() as env:
        rows = [_revocations_at_scale(profile, env)]
        rows.append(_cross_process_revocation(env, attempts=2 if profile.name == "quick" else 3))
    rows.append(_rss_growth(profile))
    return rows


def fill_revocations(data_dir: Path, count: int) -> None:
    """``count`` revocations of unrelated tokens, unexpired, in one transaction."""
    db = SqliteDatabase(data_dir / "session-buddy.db").open()
    expires = time.time() + 3600
    now = time.time()
    keys = [f"jti:revoked-{secrets.token_hex(8)}-{n}" for n in range(count)]
    with db.transaction() as conn:
        conn.executemany(
            "INSERT INTO revoked_tokens(token_key, expires_at, revoked_at) VALUES (?, ?, ?)",
            [(key, expires, now) for key in keys],
        )
        conn.executemany("INSERT INTO revocation_log(token_key) VALUES (?)", [(k,) for k in keys])
    db.close()


def _revocations_at_scale(profile: Profile, env: AuthEnvironment) -> Row:
    progress(f"scale: writing {profile.revoked:,} revocations")
    fill_revocations(env.data_dir("revoked"), profile.revoked)
    minter = FastMinter(env.secret)
    ops = 1_000 if profile.name == "full" else 500
    rounds = profile.rounds
    batches = rounds + profile.warmup_rounds
    pools = {
        "none": Pool(minter.tokens(ops * batches, start=0)),
        "revoked": Pool(minter.tokens(ops * batches, start=10**7)),
    }
    warm = minter.token(-2)
    runtimes = {}
    for name in pools:  # a fresh runtime on each data dir; opening the store loads it all
        env.use_data_dir(name)
        if auth.validate_token(warm) is None:
            raise RuntimeError(f"valid token rejected: {auth.get_auth_error()}")
        runtimes[name] = auth.default_runtime()
    in_force = {name: r.revocations.count() for name, r in runtimes.items()}
    if in_force["revoked"] < profile.revoked or in_force["none"] != 0:
        raise RuntimeError(f"revocations in force not as set up: {in_force}")

    def use(name: str) -> None:
        # The facade keeps one runtime per process; swapping it is how both stay alive
        # (and both caches warm) while their batches alternate.
        auth.install_runtime(runtimes[name])

    def validate_pool(name: str) -> Runner:
        validate = auth.validate_token

        def run_batch(n: int) -> None:
            for token in pools[name].take(n):
                validate(token)

        return run_batch

    progress(f"scale: {rounds} rounds of {ops} distinct tokens, 0 vs {profile.revoked:,} revoked")
    per_op = interleave(
        {"none": validate_pool("none"), "revoked": validate_pool("revoked")},
        {"none": ops, "revoked": ops},
        rounds,
        profile.warmup_rounds,
        setups={"none": lambda: use("none"), "revoked": lambda: use("revoked")},
    )
    env.use_data_dir("data")
    throughput = ratios(per_op["none"], per_op["revoked"])  # speed with 100k / speed with none
    revoked_us, none_us = median(per_op["revoked"]) / 1000, median(per_op["none"]) / 1000
    return Row(
        PART,
        "revoked_100k_vs_none",
        f"validate_token throughput, {profile.revoked:,} revoked / none",
        median(throughput),
        op=">=",
        target=0.9,
        details={
            "absolute": f"{revoked_us:.2f} µs vs {none_us:.2f} µs",
            "ns_per_op_revoked": spread(per_op["revoked"]),
            "ns_per_op_none": spread(per_op["none"]),
            "ratio_per_round": [round(r, 4) for r in throughput],
            "revocations_in_force": in_force,
            "ops_per_round": ops,
        },
    )


def _cross_process_revocation(env: AuthEnvironment, attempts: int) -> Row:
    """Seconds from another process's committed revocation to our first rejection."""
    env.use_data_dir("cross")
    latencies: list[float] = []
    for attempt in range(attempts):
        progress(f"scale: cross-process revocation, attempt {attempt + 1}/{attempts}")
        token = auth.generate_test_token(f"cross-{attempt}")
        if auth.validate_token(token) is None:  # now cached: the hit path must notice too
            raise RuntimeError(f"valid token rejected: {auth.get_auth_error()}")
        child = subprocess.Popen(
            [sys.executable, "-c", _REVOKE_IN_ANOTHER_PROCESS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ),
            cwd=os.getcwd(),
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(token)
        child.stdin.close()
        detected: float | None = None
        deadline = time.monotonic() + 60
        while detected is None and time.monotonic() < deadline:
            if auth.validate_token(token) is None:
                if auth.get_auth_error() != "Token has been revoked":
                    raise RuntimeError(f"unexpected rejection: {auth.get_auth_error()}")
                detected = time.time()
            else:
                time.sleep(0.001)
        report = json.loads(child.stdout.read() or "{}")
        child.wait(30)
        if detected is None or not report.get("ok"):
            raise RuntimeError(f"revocation never honoured: {report}")
        latencies.append(max(0.0, detected - report["committed"]))
    env.use_data_dir("data")
    return Row(
        PART,
        "cross_process_revocation_s",
        "revocation by another process honoured after (worst of runs)",
        max(latencies),
        unit="s",
        op="<=",
        target=REVOCATION_DEADLINE_S,
        details={
            "absolute": ", ".join(f"{x * 1000:.0f} ms" for x in latencies),
            "latencies_s": [round(x, 4) for x in latencies],
        },
    )


def _rss_growth(profile: Profile) -> Row:
    progress(f"scale: RSS over {profile.rss_tokens:,} distinct tokens (subprocess)")
    result = run_python(
        "-m", "benchmarks.rss", "--tokens", str(profile.rss_tokens),
        cwd=REPO_ROOT, env=clean_environment(), timeout=1800,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"benchmarks.rss failed:\n{result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    return Row(
        PART,
        "rss_growth_mb",
        f"RSS growth after validating {report['tokens']:,} distinct tokens",
        report["growth_mb"],
        unit="MB",
        op="<=",
        target=RSS_GROWTH_LIMIT_MB,
        details={
            "absolute": (
                f"{report['rss_start_mb']:.1f} → {report['rss_end_mb']:.1f} MB, "
                f"cache {report['cache_entries']:,} entries"
            ),
            **report,
        },
    )
