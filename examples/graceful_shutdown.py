"""Graceful shutdown: on SIGTERM, stop taking orders, finish or hand back the
ones in flight, and lose nothing.

    python examples/graceful_shutdown.py

The application "orders" (one_for_one, started in this order):

    ledger    records every order that was carried out
    front     the order desk: each order runs in its own worker actor; on
              shutdown it closes the door, refuses new orders ("503, closing,
              retry elsewhere"), waits up to 0.5 s for the orders in flight,
              and hands back (kills and reports) those that cannot finish
    traffic   simulated customers (on the network, in real life): they place
              orders one after another, and one of them is slow

What happens: orders flow for a while; then the program sends SIGTERM to
itself (as a container orchestrator would). The application stops its
children in reverse start order: the traffic (the customers carry on, as
real ones would), then the front, which drains, and last the ledger.
Every order a customer sent ends up exactly one of: done (and in the
ledger), handed back (not done: the customer can safely retry it elsewhere),
or refused (never accepted). The program checks that and exits 0.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from asyncotp import (
    KILL,
    NOREPLY,
    Application,
    Caller,
    CallTimeout,
    Down,
    GenServer,
    NoProcess,
    Pid,
    ServerExited,
    call,
    monitor,
    receive,
    self_pid,
    send,
    send_exit,
    spawn,
)

START = time.monotonic()
SIGTERM_AFTER = 12  # orders answered before the program sends itself SIGTERM


def say(who: str, text: str) -> None:
    print(f"[{time.monotonic() - START:5.2f}s] {who:<8} {text}", flush=True)


def clock() -> float:
    return asyncio.get_running_loop().time()


@attrs.define
class Tally:
    """What the customers saw and what the ledger holds, for the final check."""

    sent: list[str] = attrs.field(factory=list)
    answers: dict[str, str] = attrs.field(factory=dict)
    ledger: set[str] = attrs.field(factory=set)


TALLY = Tally()


# -- the ledger ------------------------------------------------------------------------


class Ledger(GenServer):
    """Records the orders that were carried out."""

    async def init(self) -> None:
        self.orders: set[str] = set()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("record", order):
                self.orders.add(order)
                return len(self.orders)
            case ("has", order):
                return order in self.orders
            case "all":
                return set(self.orders)
        raise ValueError(f"unknown request {request!r}")

    async def terminate(self, reason: Any) -> None:
        TALLY.ledger = set(self.orders)
        say("ledger", f"stopping ({reason}) with {len(self.orders)} orders recorded")


# -- the front ---------------------------------------------------------------------------

Work = Callable[[str, float], Awaitable[None]]


async def simulated_work(order: str, seconds: float) -> None:
    await asyncio.sleep(seconds)  # packing the parcel


async def carry_out(work: Work, order: str, seconds: float) -> None:
    """A worker: do the work, then record it. An order is done once recorded."""
    await work(order, seconds)
    await call("ledger", ("record", order))


def is_down_of(pid: Pid, message: object) -> bool:
    return isinstance(message, Down) and message.pid is pid


@attrs.define(eq=False)
class InFlight:
    caller: Caller
    order: str


class Front(GenServer):
    """The order desk: answers every order it accepted, "done" or "handed back".

    Each order runs in a worker actor that the desk monitors; when the
    worker ends, the desk asks the ledger and answers "done" if the order
    is recorded, "handed back" (not done, safe to retry) if not.

    Shutdown (``terminate``, within the child's ``shutdown`` time): from
    then on the server takes no more requests from its mailbox, so the door
    is closed. The desk waits up to ``drain_timeout`` seconds for the
    workers in flight, answering orders that arrive meanwhile with
    "refused". It kills the workers still running and hands their orders
    back (asking the ledger first: an order recorded just before its worker
    was killed is done). Last, it refuses whatever else arrived. Give the
    child spec a ``shutdown`` longer than ``drain_timeout``.
    """

    async def init(self, drain_timeout: float = 0.5, work: Work = simulated_work) -> None:
        self.drain_timeout = drain_timeout
        self.work = work
        self.inflight: dict[Pid, InFlight] = {}

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("order", order, seconds):
                worker = spawn(carry_out, self.work, order, seconds)
                monitor(worker)
                self.inflight[worker] = InFlight(caller, order)
                return NOREPLY
            case "inflight":
                return sorted(f.order for f in self.inflight.values())
        raise ValueError(f"unknown request {request!r}")

    async def handle_info(self, message: Any) -> None:
        if isinstance(message, Down) and message.pid in self.inflight:
            await self._worker_ended(message)
        else:
            await super().handle_info(message)

    async def _worker_ended(self, down: Down) -> None:
        flight = self.inflight.pop(down.pid)
        if await call("ledger", ("has", flight.order)):
            flight.caller.reply(("done", flight.order))
        else:
            flight.caller.reply(("handed back", f"{flight.order}: {down.reason!r}"))

    async def terminate(self, reason: Any) -> None:
        say("front", f"told to stop ({reason}): closing the door, {len(self.inflight)} in flight")
        deadline = clock() + self.drain_timeout
        refused = 0
        while self.inflight:
            left = deadline - clock()
            if left <= 0:
                break
            try:
                message = await receive(lambda m: isinstance(m, (Caller, Down)), timeout=left)
            except TimeoutError:
                break
            if isinstance(message, Caller):
                message.reply(("refused", "503: closing, retry elsewhere"))
                refused += 1
            elif message.pid in self.inflight:
                say("front", f"{self.inflight[message.pid].order} finished while draining")
                await self._worker_ended(message)
        for worker, flight in list(self.inflight.items()):
            say("front", f"{flight.order} cannot finish in time: handing it back")
            send_exit(worker, KILL)
            down = await receive(functools.partial(is_down_of, worker))
            await self._worker_ended(down)  # done after all if it reached the ledger
        while True:  # what arrived meanwhile: refuse it, so nobody waits in vain
            try:
                message = await receive(lambda m: isinstance(m, Caller), timeout=0)
            except TimeoutError:
                break
            message.reply(("refused", "503: closing, retry elsewhere"))
            refused += 1
        say("front", f"drained: every accepted order answered; {refused} refused while closing")


# -- the simulated customers -------------------------------------------------------------


async def customer(number: int, first_order_seconds: float) -> None:
    seconds = first_order_seconds
    for i in range(1000):
        order = f"c{number}-{i}"
        try:
            reply = call("front", ("order", order, seconds), timeout=5.0)
        except NoProcess:
            return  # the desk is gone: nothing was sent
        TALLY.sent.append(order)
        try:
            status, detail = await reply
        except ServerExited:
            TALLY.answers[order] = "refused"  # closed before it was accepted
            return
        except CallTimeout:
            TALLY.answers[order] = "no answer"
            return
        TALLY.answers[order] = status
        if status != "done":
            say(f"cust{number}", f"{order}: {status} ({detail})")
            return
        seconds = 0.02 + 0.01 * (i % 3)
        answered = sum(1 for a in TALLY.answers.values() if a == "done")
        if answered == SIGTERM_AFTER:
            say(f"cust{number}", f"{answered} orders done; sending SIGTERM to the program")
            os.kill(os.getpid(), signal.SIGTERM)


class Traffic(GenServer):
    """Starts the customers (independent actors, as real clients would be)."""

    async def init(self) -> None:
        send(self_pid(), "open")  # start once init has returned

    async def handle_info(self, message: Any) -> None:
        if message == "open":
            say("traffic", "4 customers start ordering; customer 0's first order is slow")
            for number in range(4):
                spawn(customer, number, 10.0 if number == 0 else 0.02)


# -- the program ----------------------------------------------------------------------


app = Application(
    "orders",
    [
        Ledger.child_spec(name="ledger"),
        Front.child_spec(name="front", drain_timeout=0.5, shutdown=2.0),
        Traffic.child_spec(name="traffic"),
    ],
    shutdown_timeout=10.0,
)


def main() -> int:
    code = app.run(exit=False)
    answers = TALLY.answers
    done = {o for o, a in answers.items() if a == "done"}
    handed_back = {o for o, a in answers.items() if a == "handed back"}
    refused = {o for o, a in answers.items() if a == "refused"}
    unanswered = [o for o in TALLY.sent if answers.get(o) not in ("done", "handed back", "refused")]
    say(
        "summary",
        f"{len(TALLY.sent)} orders sent: {len(done)} done, {len(handed_back)} handed "
        f"back, {len(refused)} refused while closing",
    )
    say(
        "summary",
        f"ledger: {len(TALLY.ledger)} orders, "
        f"{'exactly the done ones' if TALLY.ledger == done else 'NOT the done ones'}",
    )
    lost = len(unanswered) + len(TALLY.ledger ^ done)
    say("summary", f"lost: {lost}; application exit code {code}")
    return code if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
