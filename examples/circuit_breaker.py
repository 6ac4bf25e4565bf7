"""A circuit breaker guarding a payment gateway that goes down and comes back.

    python examples/circuit_breaker.py

The tree:

    shop (one_for_one)
    `-- payments_breaker   a CircuitBreaker named "payments": opens after 3
                           failures within 10 s, cools down for 0.5 s, then
                           lets 1 trial call through

What happens: payments go through while the gateway is up. The gateway goes
down: the first three payments fail with its own error and the breaker
opens; the next payments are refused at once, without touching the gateway,
and answered by a fallback ("queued for later"). The health report shows the
breaker open. The gateway comes back; after the cool-down the breaker turns
half-open, a trial payment succeeds, and it closes. Every state change is
printed from the breaker's log records; the program also waits for them as
``BreakerStateChanged`` messages.
"""

from __future__ import annotations

import asyncio
import logging
import time

from asyncotp import Supervisor, receive, run
from asyncotp.health import health_report
from asyncotp.resilience import BreakerState, BreakerStateChanged, CircuitBreaker, CircuitOpen

START = time.monotonic()


def say(who: str, text: str) -> None:
    print(f"[{time.monotonic() - START:5.2f}s] {who:<9} {text}", flush=True)


class BreakerNarrator(logging.Handler):
    """Prints the breaker's state changes from their structured fields."""

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", "")
        if event.startswith("breaker_"):
            say(
                "breaker",
                f"{event}: {getattr(record, 'previous_state', '?')} -> "
                f"{getattr(record, 'state', '?')} ({getattr(record, 'reason', '')})",
            )


class Gateway:
    """The card network, as seen from here."""

    def __init__(self) -> None:
        self.up = True
        self.requests = 0

    async def charge(self, order: int, amount: int) -> str:
        self.requests += 1
        await asyncio.sleep(0.01)  # the network
        if not self.up:
            raise ConnectionError("card network unreachable")
        return f"receipt #{order} ({amount} EUR)"


def queued(error: CircuitOpen) -> str:
    return f"queued for later (breaker {error.state.value if error.state else '?'})"


async def pay(gateway: Gateway, order: int) -> None:
    try:
        result = await CircuitBreaker.call(
            "payments", gateway.charge, order, 20, fallback_fn=queued
        )
    except ConnectionError as error:
        say("shop", f"order {order}: FAILED ({error})")
    else:
        say("shop", f"order {order}: {result}")


async def wait_for(state: BreakerState) -> None:
    change = await receive(lambda m: isinstance(m, BreakerStateChanged) and m.state is state)
    say("shop", f"(told: the breaker is now {change.state.value})")


async def main() -> None:
    log = logging.getLogger("asyncotp")
    log.addHandler(BreakerNarrator())
    log.setLevel(logging.INFO)
    log.propagate = False
    gateway = Gateway()
    root = await Supervisor.start(
        [
            CircuitBreaker.child_spec(
                id="payments_breaker",
                name="payments",
                failure_threshold=3,
                window=10.0,
                cool_down=0.5,
                trial_calls=1,
                call_timeout=2.0,
            )
        ],
        name="shop",
    )
    await CircuitBreaker.subscribe("payments")  # this actor gets BreakerStateChanged

    say("gateway", "up")
    for order in (1, 2):
        await pay(gateway, order)

    gateway.up = False
    say("gateway", "DOWN")
    for order in range(3, 9):
        await pay(gateway, order)
    await wait_for(BreakerState.OPEN)
    say("shop", f"the gateway saw {gateway.requests} requests for 8 orders")
    report = await health_report(root)
    check = next(c for c in report.checks if c.name == "payments")
    say("health", f"ready={report.ready} (degraded, not down); payments: {check.detail}")

    gateway.up = True
    say("gateway", "back up")
    await wait_for(BreakerState.HALF_OPEN)
    await pay(gateway, 9)  # the trial call
    await wait_for(BreakerState.CLOSED)
    await pay(gateway, 10)
    stats = await CircuitBreaker.statistics("payments")
    say(
        "shop",
        f"breaker stats: {stats.calls} calls let through, {stats.rejected} refused, "
        f"{stats.failed} failed, opened {stats.times_opened} time(s)",
    )
    say("shop", "done")


if __name__ == "__main__":
    run(main)
