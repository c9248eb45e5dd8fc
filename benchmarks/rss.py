"""RSS growth while validating many distinct tokens; run by ``benchmarks.scale`` as a child.

``python -m benchmarks.rss --tokens 1000000`` prints one JSON object. Tokens are minted
one at a time and dropped (holding a million would dwarf what is measured); the start
figure is taken after the first validation, so the growth includes filling the verifier
cache up to its limit.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import sys
import time
from pathlib import Path

from benchmarks.environment import auth_environment
from benchmarks.harness import captured_auth_log
from benchmarks.minting import FastMinter


def rss_mb() -> float:
    """Current resident set size (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, as a fallback


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rss")
    parser.add_argument("--tokens", type=int, default=1_000_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from session_buddy.mcp import auth

    with captured_auth_log(), auth_environment() as env:
        minter = FastMinter(env.secret)
        minter.check(env.secret)
        if auth.validate_token(minter.token(-2)) is None:
            raise RuntimeError(f"valid token rejected: {auth.get_auth_error()}")
        gc.collect()
        start = rss_mb()
        samples: list[tuple[int, float]] = [(0, round(start, 1))]
        checkpoints = {args.tokens * k // 10 for k in range(1, 11)}
        rejected = 0
        began = time.perf_counter()
        validate = auth.validate_token
        for number, token in enumerate(minter.stream(), start=1):
            if validate(token) is None:
                rejected += 1
            if number in checkpoints:
                samples.append((number, round(rss_mb(), 1)))
                if number == args.tokens:
                    break
        seconds = time.perf_counter() - began
        gc.collect()
        end = rss_mb()
        cache_entries = auth.get_manager().verification.cache_len
    if rejected:
        raise RuntimeError(f"{rejected} valid tokens were rejected")
    json.dump(
        {
            "tokens": args.tokens,
            "rss_start_mb": round(start, 1),
            "rss_end_mb": round(end, 1),
            "growth_mb": round(end - start, 1),
            "peak_sample_mb": max(rss for _, rss in samples),
            "samples": samples,
            "cache_entries": cache_entries,
            "seconds": round(seconds, 1),
            "us_per_token_incl_minting": round(seconds / args.tokens * 1e6, 2),
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
