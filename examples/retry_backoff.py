"""Retries with exponential backoff, jitter, a cap and a deadline.

    python examples/retry_backoff.py

The tree:

    shop (one_for_one)
    |-- inventory   answers stock queries; crashes on a bad record, and its
    |               supervisor restarts it after a 0.3 s backoff
    `-- pricing     always too slow for its callers (0.5 s per answer)

What happens:

1. The inventory crashes while a query is queued behind the crash. The
   caller's ``retry`` sees ``ServerExited``, then ``NoProcess`` while the
   supervisor waits out its backoff, and succeeds once the server is back:
   each attempt and wait is printed.
2. An unknown item (``ValueError``) is not a failure that a retry can fix:
   it is raised at once, without a second attempt.
3. Queries to the slow pricing server time out (``CallTimeout``) attempt
   after attempt; the retry gives up at its 1 s deadline with
   ``RetryDeadlineExceeded`` (a ``TimeoutError``), without waiting past it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from asyncotp import Backoff, Caller, GenServer, Supervisor, call, cast, run
from asyncotp.resilience import RetryAttempt, RetryDeadlineExceeded, RetryPolicy, retry

START = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - START:5.2f}s] {text}", flush=True)


class Inventory(GenServer):
    async def init(self) -> None:
        self.stock = {"apple": 12, "pear": 3}

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return self.stock.get(request)  # None: no such item

    async def handle_cast(self, request: Any) -> None:
        raise RuntimeError(f"corrupt record {request!r}")


class Pricing(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        await asyncio.sleep(0.5)  # a slow dependency
        return 1.25


def report(attempt: RetryAttempt) -> None:
    say(
        f"  attempt {attempt.attempt} failed with {type(attempt.error).__name__}; "
        f"retrying in {attempt.delay:.2f} s"
    )


async def query_stock(item: str) -> int:
    result: int | None = await call("inventory", item, timeout=0.5)
    if result is None:
        raise ValueError(f"no such item: {item!r}")
    return result


async def query_price(item: str) -> float:
    result: float = await call("pricing", item, timeout=0.2)
    return result


async def main() -> None:
    logging.getLogger("asyncotp").setLevel(logging.CRITICAL)  # the crashes are on purpose
    await Supervisor.start(
        [
            Inventory.child_spec(
                id="inventory", name="inventory", backoff=Backoff(initial=0.3, max=1.0, jitter=0)
            ),
            Pricing.child_spec(id="pricing", name="pricing"),
        ],
        name="shop",
    )
    policy = RetryPolicy(max_attempts=6, initial=0.1, multiplier=2.0, max_delay=1.0, jitter=0.5)
    rng = random.Random(2024)  # reproducible jitter

    say("1. the inventory crashes; a stock query rides out the restart")
    cast("inventory", "apple#42")
    stock = await retry(query_stock, "apple", policy=policy, rng=rng, on_retry=report)
    say(f"  -> {stock} apples in stock")

    say("2. a bad request is not retried")
    try:
        await retry(query_stock, "kiwi", policy=policy, rng=rng, on_retry=report)
    except ValueError as error:
        say(f"  -> raised at once, after one attempt: {error!r}")

    say("3. a dependency that is always too slow: give up at the deadline")
    slow = RetryPolicy(max_attempts=None, initial=0.1, multiplier=2.0, jitter=0, deadline=1.0)
    try:
        await retry(query_price, "apple", policy=slow, on_retry=report)
    except RetryDeadlineExceeded as error:
        say(f"  -> gave up after {error.attempts} attempts: {type(error).__name__}")
        say(f"     (a TimeoutError too: {isinstance(error, TimeoutError)})")
    say("done")


if __name__ == "__main__":
    run(main)
