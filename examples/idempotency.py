"""Idempotency keys: a payment is charged once, however often it is retried.

    python examples/idempotency.py

The tree (one_for_one):

    payments.idem   an IdempotencyStore: key -> receipt, remembered for a while
    gateway         the "card network": takes 200 ms per charge, counts charges
    front           the HTTP front end: each request gets a handler actor that
                    pays through IdempotencyStore.run_once; the front never waits

What happens:

1. A client pays order-1 and gives up after 100 ms (the charge takes 200).
   It retries with the same key: the retry joins the charge under way
   instead of charging again. A third try gets the remembered receipt.
2. A double click sends order-2 twice at the same moment: one charge.
3. The card network fails order-3's first charge: the failure is not
   remembered, so the client's retry with the same key charges it.
4. A client reuses order-1's key for another amount: refused (422).
5. After the store's time-to-live the keys are forgotten.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asyncotp import (
    NOREPLY,
    Caller,
    CallTimeout,
    GenServer,
    Supervisor,
    call,
    run,
    spawn,
)
from asyncotp.resilience import IdempotencyKeyReused, IdempotencyStore

TTL = 1.5  # seconds a receipt is remembered (short, for the demonstration)


def say(who: str, text: str) -> None:
    print(f"{who:<8} {text}", flush=True)


class Gateway(GenServer):
    """The card network: slow, counts the charges it makes."""

    async def init(self) -> None:
        self.charges: list[str] = []
        self.down_for: set[str] = {"order-3"}  # fails that order's first charge

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("charge", order, amount):
                await asyncio.sleep(0.2)
                if order in self.down_for:
                    self.down_for.discard(order)
                    say("gateway", f"{order}: the card network is down, nothing charged")
                    return ("error", "card network down")
                self.charges.append(order)
                receipt = f"R{len(self.charges)}-{order}"
                say("gateway", f"charged {amount} EUR for {order} -> receipt {receipt}")
                return ("ok", receipt)
            case "charges":
                return list(self.charges)
        raise ValueError(f"unknown request {request!r}")


async def charge(order: str, amount: int) -> str:
    """The work an idempotency key protects: one charge at the card network."""
    status, value = await call("gateway", ("charge", order, amount), timeout=2.0)
    if status != "ok":
        raise ConnectionError(value)
    receipt: str = value
    return receipt


class Front(GenServer):
    """The HTTP front end: POST /pay with an Idempotency-Key header."""

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        spawn(handle_payment, request, caller)
        return NOREPLY


async def handle_payment(request: tuple[str, str, int], caller: Caller) -> None:
    key, order, amount = request
    try:
        receipt = await IdempotencyStore.run_once(
            "payments.idem", key, charge, order, amount, fingerprint=(order, amount)
        )
        answer = f"200 OK receipt {receipt}"
    except IdempotencyKeyReused:
        answer = "422 Unprocessable Entity: this key was used for another payment"
    except ConnectionError as exc:
        answer = f"502 Bad Gateway: {exc}"
    caller.reply(answer)


async def pay(key: str, order: str, amount: int, timeout: float = 1.0) -> str:
    """A client: POST /pay; the answer, or a note that none came in time."""
    try:
        answer: str = await call("front", (key, order, amount), timeout=timeout)
    except CallTimeout:
        return f"no answer within {timeout * 1000:.0f} ms"
    return answer


async def main() -> None:
    await Supervisor.start(
        [
            IdempotencyStore.child_spec(ttl=TTL, name="payments.idem"),
            Gateway.child_spec(name="gateway"),
            Front.child_spec(name="front"),
        ],
        name="payments",
    )

    say("client", "1. pay order-1 (key k-1001), giving up after 100 ms")
    say("client", f"   -> {await pay('k-1001', 'order-1', 30, timeout=0.1)}")
    say("client", "   retry with the same key")
    say("client", f"   -> {await pay('k-1001', 'order-1', 30)}  (joined the charge under way)")
    say("client", f"   retry once more -> {await pay('k-1001', 'order-1', 30)}  (remembered)")

    say("client", "2. double click: order-2 twice at the same moment (key k-1002)")
    both = await asyncio.gather(pay("k-1002", "order-2", 12), pay("k-1002", "order-2", 12))
    for answer in both:
        say("client", f"   -> {answer}")

    say("client", "3. pay order-3 (key k-1003)")
    say("client", f"   -> {await pay('k-1003', 'order-3', 99)}")
    say("client", "   the failure was not remembered: retry with the same key")
    say("client", f"   -> {await pay('k-1003', 'order-3', 99)}")

    say("client", "4. reuse key k-1001 for another amount")
    say("client", f"   -> {await pay('k-1001', 'order-1', 300)}")

    charges = await call("gateway", "charges")
    stats = await IdempotencyStore.statistics("payments.idem")
    say("summary", f"the card was charged {len(charges)} times for 3 distinct keys: {charges}")
    say("summary", f"store: {stats!r}")
    assert len(charges) == 3, charges

    await asyncio.sleep(TTL)
    stats = await IdempotencyStore.statistics("payments.idem")
    say(
        "summary",
        f"after the {TTL} s time-to-live: {stats.remembered} receipts remembered, "
        f"{stats.expired} expired",
    )
    print("done")


if __name__ == "__main__":
    run(main)
