"""asyncotp demonstration: a small shop that crashes on purpose and recovers.

    python examples/demo.py

The tree (``build_shop()`` returns its children, ``start_shop()`` starts it;
``examples/test_demo_app.py`` tests it with ``asyncotp.testing``):

    shop (one_for_one)
    |-- prices       an Agent holding the price list
    |-- payments     a supervisor, rest_for_one
    |   |-- gateway  talks to the "card network": crashes on every 3rd payment
    |   `-- ledger   records payments; depends on the gateway, so it restarts after it
    `-- (the front end is the main actor: it turns requests into calls)

What happens: a few orders go through; the gateway crashes and the payments
supervisor restarts it and the ledger (rest_for_one); then a burst of crashes
exceeds the payments supervisor's restart intensity, it gives up, and the
root restarts the whole payments subtree. Finally the program ends and every
actor is stopped in reverse start order. Every supervisor decision is printed
from the structured fields of its log record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from asyncotp import (
    GAVE_UP,
    Agent,
    Caller,
    ChildSpec,
    GenServer,
    NoProcess,
    Pid,
    ServerExited,
    Strategy,
    Supervisor,
    call,
    run,
    whereis,
    which_children,
)

START = time.monotonic()


def say(who: str, text: str) -> None:
    print(f"[{time.monotonic() - START:5.2f}s] {who:<10} {text}", flush=True)


class SupervisorNarrator(logging.Handler):
    """Prints supervisor reports as sentences, from their structured fields."""

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        sup = getattr(record, "supervisor_name", None) or getattr(record, "supervisor", "?")
        child = getattr(record, "child_id", None)
        reason = getattr(record, "reason", None)
        if event == "child_terminated" and reason == GAVE_UP:
            say(f"sup:{sup}", f"child {child!r} gave up; restarting that whole subtree")
        elif event == "child_terminated" and record.levelno >= logging.ERROR:
            say(
                f"sup:{sup}",
                f"child {child!r} crashed ({reason!r}); "
                f"{getattr(record, 'restarts_in_window', '?')} restart(s) in the window",
            )
        elif event == "child_restarted":
            say(f"sup:{sup}", f"restarted {child!r} -> {getattr(record, 'child_pid', '?')!r}")
        elif event == "supervisor_gave_up":
            say(f"sup:{sup}", "too many restarts: GIVING UP, stopping all my children")
        elif event == "child_killed":
            say(f"sup:{sup}", f"{child!r} would not stop in time: killed")


class Gateway(GenServer):
    """Talks to the card network; every third payment crashes it."""

    async def init(self) -> None:
        self.handled = 0
        say("gateway", "connected to the card network")

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        kind, amount = request
        if kind == "charge":
            self.handled += 1
            if self.handled % 3 == 0:
                say("gateway", f"charging {amount}... the card network timed out: CRASH")
                raise ConnectionError("card network timed out")
            return f"charged {amount}"
        raise ValueError(f"unknown request {request!r}")

    async def terminate(self, reason: Any) -> None:
        say("gateway", f"stopping ({reason})")


class Ledger(GenServer):
    """Records successful payments."""

    async def init(self) -> None:
        self.entries: list[int] = []
        say("ledger", f"opened; using gateway {whereis('gateway')!r}")

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        kind, amount = request
        if kind == "record":
            self.entries.append(amount)
            return len(self.entries)
        raise ValueError(f"unknown request {request!r}")

    async def terminate(self, reason: Any) -> None:
        say("ledger", f"stopping ({reason})")


async def pay(amount: int) -> str:
    """The front end: a payment is a charge then a ledger entry. Callers see a
    clean error while the payments side restarts, and retry briefly."""
    for attempt in range(20):
        try:
            receipt = await call("gateway", ("charge", amount))
            await call("ledger", ("record", amount))
        except ServerExited as exc:
            say("front", f"pay {amount}: 503, the gateway died mid-request ({exc.reason!r})")
            return "failed"
        except NoProcess:
            await asyncio.sleep(0.01 * (attempt + 1))  # restarting: retry with backoff
            continue
        say("front", f"pay {amount}: 200 {receipt}")
        return "ok"
    return "unavailable"


def initial_prices() -> dict[str, int]:
    return {"apple": 3, "pear": 4}


def build_shop() -> list[ChildSpec]:
    """The shop's children, in start order: the price list, then the payments
    subtree (a rest_for_one supervisor of the gateway and the ledger)."""
    payments = Supervisor.child_spec(
        [
            Gateway.child_spec(id="gateway", name="gateway"),
            Ledger.child_spec(id="ledger", name="ledger"),
        ],
        id="payments",
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=2,
        max_seconds=5.0,
        name="payments",
    )
    prices = Agent.child_spec(initial_prices, id="prices", name="prices")
    return [prices, payments]


async def start_shop(children: list[ChildSpec] | None = None) -> Pid:
    """Start the shop's root supervisor (``children``: ``build_shop()`` by default)."""
    return await Supervisor.start(
        build_shop() if children is None else children, name="shop", max_restarts=3, max_seconds=5
    )


async def main() -> None:
    say("demo", "starting the shop: prices, payments(gateway, ledger)")
    root = await start_shop()

    say("demo", "--- normal traffic, then one crash ---")
    apple = await Agent.get("prices", lambda p: p["apple"])
    for amount in (apple, apple * 2, apple * 3, apple * 4):
        await pay(amount)

    say("demo", "--- a burst of crashes: more than 2 restarts in 5 s ---")
    for amount in range(10, 19):
        await pay(amount)

    children = await which_children(root)
    say("demo", "shop's children now: " + ", ".join(f"{c.id}={c.pid!r}" for c in children))
    say("demo", "--- the program ends: everything stops in reverse start order ---")


if __name__ == "__main__":
    handler = SupervisorNarrator()
    log = logging.getLogger("asyncotp")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the narrator replaces the tracebacks for this demo
    run(main)
    say("demo", "done: the node has stopped and nothing is left running")
