"""``python -m stress.flood``: scenario 3's bad actor, in a process of its own.

Reads its orders as JSON on stdin (``url``, ``source`` address, ``seconds``,
``concurrency``, ``tokens``, ``project``), sends forged tokens as fast as it can —
alternately as ``Authorization: Bearer`` on ``list_sessions`` and as the ``token``
argument of ``start_session`` — and prints ``started``, then (when done) what it got
back as one line of JSON, on stdout.
"""

from __future__ import annotations

import collections
import json
import sys
import time
from typing import Any

import anyio
import httpx

from stress.wire import raw_call, raw_client


async def flood(orders: dict[str, Any]) -> dict[str, Any]:
    url: str = orders["url"]
    tokens: list[str] = orders["tokens"]
    project: str = orders["project"]
    deadline = time.monotonic() + float(orders["seconds"]) + 0.5  # + client setup
    statuses: collections.Counter[str] = collections.Counter()
    tally = {"requests": 0, "unauthorized_successes": 0, "server_errors": 0, "transport_errors": 0}
    first_429: float | None = None
    started = time.monotonic()
    samples: list[str] = []

    async def worker(offset: int, http: httpx.AsyncClient) -> None:
        nonlocal first_429
        i = offset
        while time.monotonic() < deadline:
            token = tokens[i % len(tokens)]
            kind = "header" if i % 2 else "argument"
            i += orders["concurrency"]
            try:
                if kind == "header":
                    reply = await raw_call(http, url, "list_sessions", {}, bearer=token)
                else:
                    reply = await raw_call(
                        http,
                        url,
                        "start_session",
                        {"working_directory": project, "token": token},
                    )
            except httpx.HTTPError:
                tally["transport_errors"] += 1
                continue
            tally["requests"] += 1
            statuses[f"{kind} {reply.status}"] += 1
            if reply.status == 429 and first_429 is None:
                first_429 = time.monotonic() - started
            if reply.status >= 500:
                tally["server_errors"] += 1
            if reply.tool_ok:
                tally["unauthorized_successes"] += 1
                if len(samples) < 3:
                    samples.append(reply.text[:120])

    async with (
        raw_client(orders.get("source"), timeout=10) as http,
        anyio.create_task_group() as tg,
    ):
        print("started", flush=True)  # the harness starts its phase B clock now
        for n in range(int(orders["concurrency"])):
            tg.start_soon(worker, n, http)
    return {
        **tally,
        "statuses": dict(sorted(statuses.items())),
        "first_429_after_s": None if first_429 is None else round(first_429, 2),
        "seconds": round(time.monotonic() - started, 2),
        "unauthorized_samples": samples,
    }


def main() -> None:
    orders = json.loads(sys.stdin.read())
    print(json.dumps(anyio.run(flood, orders)), flush=True)


if __name__ == "__main__":
    main()
