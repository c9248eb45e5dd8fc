"""get_auth_error() belongs to one task or thread: concurrent callers never mix errors."""

from __future__ import annotations

import asyncio
import random
import threading

from session_buddy.mcp import auth
from testkit.concurrency import run_in_threads
from testkit.tokens import mint

EXPECTED = {"good": None, "expired": "Token has expired", "garbage": "Invalid token"}


def _tokens(secret: str) -> dict[str, str]:
    return {"good": mint(secret), "expired": mint(secret, exp=1000), "garbage": "not-a-token"}


def test_two_hundred_tasks_each_see_only_their_own_error(auth_enabled: str) -> None:
    tokens = _tokens(auth_enabled)

    async def one(kind: str) -> tuple[str, str | None, str | None]:
        auth.validate_token(tokens[kind])
        await asyncio.sleep(random.random() / 1000)  # let other tasks run in between
        first = auth.get_auth_error()
        await asyncio.sleep(0)
        return kind, first, auth.get_auth_error()

    async def main() -> list[tuple[str, str | None, str | None]]:
        kinds = [random.choice(list(EXPECTED)) for _ in range(200)]
        return await asyncio.gather(*(one(k) for k in kinds))

    for kind, first, second in asyncio.run(main()):
        assert first == second == EXPECTED[kind]


def test_sixteen_threads_each_see_only_their_own_error(auth_enabled: str) -> None:
    tokens = _tokens(auth_enabled)
    failures: list[str] = []
    barrier = threading.Barrier(16)

    def worker(index: int) -> None:
        kinds = list(EXPECTED)
        barrier.wait()
        for round_ in range(200):
            kind = kinds[(index + round_) % 3]
            auth.validate_token(tokens[kind])
            if auth.get_auth_error() != EXPECTED[kind]:
                failures.append(f"thread {index} round {round_} kind {kind}")

    run_in_threads(worker, range(16))
    assert failures == []


def test_error_is_none_after_a_success_in_the_same_task(auth_enabled: str) -> None:
    tokens = _tokens(auth_enabled)

    async def main() -> tuple[str | None, str | None]:
        auth.validate_token(tokens["expired"])
        before = auth.get_auth_error()
        auth.validate_token(tokens["good"])
        return before, auth.get_auth_error()

    assert asyncio.run(main()) == ("Token has expired", None)
