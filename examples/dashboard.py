"""The live dashboard: watch a supervision tree crash and recover in the browser.

    python examples/dashboard.py              (needs uvicorn: pip install 'asyncotp[asgi]')
    python examples/dashboard.py --seconds 30 --port 8765

then open the URL it prints (http://127.0.0.1:8765/), or, in another
terminal, ``python -m asyncotp top http://127.0.0.1:8765/``.

The tree:

    shop (one_for_one)
    |-- prices        an Agent holding the price list
    |-- payments      a supervisor, rest_for_one
    |   |-- gateway   crashes on every 7th payment
    |   `-- ledger    records payments; restarts after the gateway
    |-- flaky         a worker that crashes every few seconds
    |-- mailer        a slow worker: its mailbox fills up in bursts
    `-- jobs          a DynamicSupervisor running two job workers

A shopper actor pays every 0.3 s and sends the mailer bursts of emails. The
page draws the tree, flashes each child that restarts, lists the busiest
actors (the mailer, mostly) and plots restarts over time. The program runs
for ``--seconds`` (a day by default), then shuts everything down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import random
from typing import Any

import anyio

from asyncotp import (
    Agent,
    Caller,
    DynamicSupervisor,
    GenServer,
    NoProcess,
    ServerExited,
    Strategy,
    Supervisor,
    call,
    cast,
    run,
    send_after,
    spawn,
    start_child,
)
from asyncotp.observer import serve_dashboard


class Gateway(GenServer):
    """Charges cards; every 7th charge crashes it."""

    async def init(self) -> None:
        self.handled = 0

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        self.handled += 1
        if self.handled % 7 == 0:
            raise ConnectionError("the card network timed out")
        return f"charged {request}"


class Ledger(GenServer):
    async def init(self) -> None:
        self.entries: list[int] = []

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        self.entries.append(request)
        return len(self.entries)


class Flaky(GenServer):
    """Crashes a few seconds after every start."""

    async def init(self) -> None:
        send_after(random.uniform(2.5, 5.0), "flaky", "tick")

    async def handle_info(self, message: Any) -> None:
        raise RuntimeError("flaky worker: lost its connection")


class Mailer(GenServer):
    """Sends one email every 40 ms: bursts queue up in its mailbox."""

    async def handle_cast(self, request: Any) -> None:
        await asyncio.sleep(0.04)


class Job(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


async def start_shop() -> None:
    payments = Supervisor.child_spec(
        [Gateway.child_spec(id="gateway", name="gateway"), Ledger.child_spec(id="ledger")],
        id="payments",
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=5,
        max_seconds=5.0,
        name="payments",
    )
    jobs = DynamicSupervisor.child_spec(id="jobs", name="jobs")
    await Supervisor.start(
        [
            Agent.child_spec(lambda: {"apple": 3, "pear": 4}, id="prices", name="prices"),
            payments,
            Flaky.child_spec(id="flaky", name="flaky"),
            Mailer.child_spec(id="mailer", name="mailer"),
            jobs,
        ],
        name="shop",
        max_restarts=10,
        max_seconds=10.0,
    )
    for _ in range(2):
        await start_child("jobs", Job.child_spec(id="job"))


async def shopper() -> None:
    """Pays every 0.3 s; every 3 s sends the mailer a burst of 40 emails."""
    tick = 0
    while True:
        tick += 1
        # While the payments side restarts, a payment fails; the next one goes through.
        with contextlib.suppress(ServerExited, NoProcess):
            await call("gateway", random.randint(3, 30))
        if tick % 10 == 0:
            for n in range(40):
                cast("mailer", f"receipt {n}")
        await asyncio.sleep(0.3)


class Narrator(logging.Handler):
    """One line per restart, from the supervisors' structured reports."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "child_terminated":
            child = getattr(record, "child_id", None)
            print(f"   [supervisor] {child!r} crashed: {getattr(record, 'reason', None)!r}")


async def main(seconds: float, port: int) -> None:
    await start_shop()
    spawn(shopper, name="shopper")
    async with anyio.create_task_group() as tg:
        bound = await tg.start(functools.partial(serve_dashboard, port=port))
        print(f"dashboard: http://127.0.0.1:{bound}/", flush=True)
        print(f"terminal:  python -m asyncotp top http://127.0.0.1:{bound}/", flush=True)
        await asyncio.sleep(seconds)
        tg.cancel_scope.cancel()
    print("done: the dashboard and the tree have stopped", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=24 * 3600.0, help="how long to run (default: a day)"
    )
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    log = logging.getLogger("asyncotp")
    log.addHandler(Narrator())
    log.propagate = False  # one line per crash instead of the tracebacks
    try:
        run(main, args.seconds, args.port)
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
