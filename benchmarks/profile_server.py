"""Where our server's CPU goes per tool call: cProfile on the real server under load.

``python -m benchmarks.profile_server [--calls N] [--mode legacy|auto] [--top K]`` starts
``session-buddy serve --transport http`` (auth on, SQLite) under ``python -m cProfile``,
has 8 concurrent official clients call ``whoami`` N times in all, stops it with SIGTERM
(it drains and returns, so cProfile writes its file), and prints

* the self time (``tottime``) per call, split by whose code it is: ours
  (``session_buddy``), the MCP SDK (``mcp``, ``mcp_types``), Starlette + uvicorn +
  anyio + h11/httptools, pydantic, the standard library (asyncio, json, logging …);
* the top K functions by self time.

cProfile sees the main thread only — the event loop, where uvicorn, Starlette, the SDK
and our middleware and (synchronous) tools run; its own overhead inflates the many small
calls, so read the split, not the absolute figures.
"""

from __future__ import annotations

import argparse
import pstats
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import anyio
from mcp.client import Client

from benchmarks.e2e import QUIET, USER
from testkit.environment import new_secret, server_environment
from testkit.mcp import http_transport
from testkit.processes import REPO_ROOT
from testkit.server import launch_http_server
from testkit.tokens import mint

CONCURRENT = 8
IDLE = {"<method 'poll' of 'select.epoll' objects>"}  # the loop waiting: no work
GROUPS = (  # (name, path fragments), first match wins
    ("ours (session_buddy)", ("/session_buddy/",)),
    ("MCP SDK", ("/mcp/", "/mcp_types/")),
    ("pydantic", ("/pydantic/", "/pydantic_core/")),
    (
        "starlette + uvicorn + anyio + h11",
        ("/starlette/", "/uvicorn/", "/anyio/", "/h11/", "/httptools/", "/sse_starlette/"),
    ),
    ("sqlite / sqlalchemy", ("/sqlalchemy/", "sqlite3")),
    ("PyJWT", ("/jwt/",)),
)


def group_of(filename: str) -> str:
    for name, fragments in GROUPS:
        if any(fragment in filename for fragment in fragments):
            return name
    if filename.startswith("~") or "/lib/python3" in filename:
        return "standard library + builtins"
    return "other"


async def load(url: str, token: str, mode: str, calls: int) -> None:
    per_caller = max(1, calls // CONCURRENT)

    async def caller() -> None:
        async with Client(http_transport(url, bearer=token), mode=mode) as client:
            for _ in range(per_caller):
                result = await client.call_tool("whoami", {})
                if result.is_error:
                    raise RuntimeError(f"whoami failed: {result.content}")

    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENT):
            group.start_soon(caller)


def report(stats_path: Path, calls: int, top: int) -> str:
    stats = pstats.Stats(str(stats_path))
    by_group: dict[str, float] = defaultdict(float)
    rows = []
    for (filename, line, function), (_, ncalls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if function in IDLE:
            continue
        by_group[group_of(filename)] += tottime
        rows.append((tottime, ncalls, f"{filename.split('site-packages/')[-1]}:{line}({function})"))
    total = sum(by_group.values())
    lines = [
        "self time per call (cProfile, main thread, waiting in epoll left out), "
        f"{calls} calls: {1000 * total / calls:.3f} ms"
    ]
    for name, seconds in sorted(by_group.items(), key=lambda item: -item[1]):
        share = 100 * seconds / total
        lines.append(f"  {name:<36} {1000 * seconds / calls:7.3f} ms  {share:5.1f} %")
    lines.append(f"top {top} functions by self time (ms per call, calls per call):")
    for tottime, ncalls, where in sorted(rows, reverse=True)[:top]:
        lines.append(f"  {1000 * tottime / calls:7.4f}  {ncalls / calls:6.1f}  {where}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_server")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--mode", choices=("legacy", "auto"), default="legacy")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--keep", type=Path, help="copy the cProfile stats file here")
    parser.add_argument(
        "--stateless", action="store_true", help="SESSION_BUDDY_STATELESS_HTTP=true (what ships)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-profile-") as tmp:
        root = Path(tmp)
        secret = new_secret()
        token = mint(secret, USER, lifetime=3600)
        stats_path = root / "server.prof"
        command = (
            sys.executable, "-m", "benchmarks.profiled", str(stats_path),
            "serve", "--transport", "http", *QUIET,
        )  # fmt: skip
        with launch_http_server(
            server_environment(
                root / "data", secret,
                SESSION_BUDDY_STATELESS_HTTP="true" if args.stateless else "false",
            ),
            REPO_ROOT, command=command,
            log_path=root / "server.log",
        ) as server:  # fmt: skip
            anyio.run(load, server.url, token, args.mode, CONCURRENT)  # warm: connections
            server.process.send_signal(signal.SIGUSR1)  # profile from here on
            time.sleep(0.5)
            anyio.run(load, server.url, token, args.mode, args.calls)
            server.stop(timeout=30)
        if not stats_path.exists():
            raise SystemExit(f"no profile written: {server.tail()}")
        calls = (args.calls // CONCURRENT) * CONCURRENT
        if args.keep is not None:
            args.keep.write_bytes(stats_path.read_bytes())
        print(report(stats_path, calls, args.top))


if __name__ == "__main__":
    main()
