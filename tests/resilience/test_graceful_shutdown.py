"""Graceful shutdown: the example's order desk drains on shutdown and loses nothing.

The example runs as a program (it sends itself SIGTERM and must exit 0 by
itself). Its ``Front`` is also tested in-process with work held on events,
so each rule of the drain is checked on its own; the drain deadline moves
only when the test moves the loop's clock.
"""

from __future__ import annotations

import asyncio
import importlib.util
from types import ModuleType
from typing import Any

import attrs
import pytest

from asyncotp import SHUTDOWN, Node, Pid, call, is_alive, stop
from asyncotp.testing import VirtualClock
from tests.helpers import EXAMPLES, run_example


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "graceful_shutdown_example", EXAMPLES / "graceful_shutdown.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = load_example()


# -- helpers -------------------------------------------------------------------


@attrs.define(eq=False)
class HeldWork:
    """The work of each order waits until the test releases it."""

    record_first: bool = False
    started: dict[str, asyncio.Event] = attrs.field(factory=dict)
    gates: dict[str, asyncio.Event] = attrs.field(factory=dict)

    def event(self, table: dict[str, asyncio.Event], order: str) -> asyncio.Event:
        return table.setdefault(order, asyncio.Event())

    async def __call__(self, order: str, seconds: float) -> None:
        if self.record_first:
            await call("ledger", ("record", order))
        self.event(self.started, order).set()
        await self.event(self.gates, order).wait()

    def release(self, order: str) -> None:
        self.event(self.gates, order).set()


async def desk(work: HeldWork, drain_timeout: float = 5.0) -> Pid:
    await example.Ledger.start(name="ledger")
    front: Pid = await example.Front.start(name="front", drain_timeout=drain_timeout, work=work)
    return front


async def order(work: HeldWork, name: str) -> asyncio.Future[Any]:
    """Place an order and wait until its work has started."""
    reply = asyncio.ensure_future(call("front", ("order", name, 0.0), timeout=None))
    await work.event(work.started, name).wait()
    return reply


async def draining(front: Pid) -> asyncio.Future[None]:
    """Tell the front to stop, and return once it is draining: an order sent
    now is refused (only the drain refuses orders)."""
    stopping = asyncio.ensure_future(stop(front, SHUTDOWN, timeout=None))
    assert await call(front, ("order", "late", 0.0)) == (
        "refused",
        "503: closing, retry elsewhere",
    )
    return stopping


# -- the rules of the drain ---------------------------------------------------------------


async def test_an_order_in_flight_at_shutdown_finishes_before_the_front_stops(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    work = HeldWork()
    front = await desk(work)
    reply = await order(work, "o1")
    stopping = await draining(front)
    assert is_alive(front)
    work.release("o1")
    assert await reply == ("done", "o1")
    await stopping
    assert not is_alive(front)
    assert await call("ledger", "all") == {"o1"}


async def test_orders_that_arrive_while_draining_are_refused_not_accepted(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    work = HeldWork()
    front = await desk(work)
    reply = await order(work, "o1")
    stopping = await draining(front)  # it checks that "late" is refused
    work.release("o1")
    await reply
    await stopping
    assert "late" not in await call("ledger", "all")
    assert "late" not in work.started


async def test_an_order_that_cannot_finish_within_the_drain_time_is_handed_back(
    node: Node, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    work = HeldWork()
    front = await desk(work, drain_timeout=1.0)
    reply = await order(work, "slow")
    stopping = await draining(front)
    await clock.advance(1.5)
    status, detail = await reply
    assert status == "handed back"
    assert "KILLED" in detail
    await stopping
    assert await call("ledger", "all") == set()  # not done: safe to retry elsewhere


async def test_a_handed_back_order_that_already_reached_the_ledger_is_reported_done(
    node: Node, clock: VirtualClock, capsys: pytest.CaptureFixture[str]
) -> None:
    work = HeldWork(record_first=True)
    front = await desk(work, drain_timeout=1.0)
    reply = await order(work, "recorded")
    stopping = await draining(front)
    await clock.advance(1.5)
    assert await reply == ("done", "recorded")  # its worker was killed after the effect
    await stopping


async def test_a_front_with_nothing_in_flight_stops_at_once(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    front = await desk(HeldWork())
    await stop(front, SHUTDOWN)
    assert "drained: every accepted order answered" in capsys.readouterr().out


# -- the example, as a program -------------------------------------------------------------


@pytest.mark.timeout(60)
def test_the_example_drains_on_sigterm_loses_nothing_and_exits_0_by_itself() -> None:
    result = run_example("graceful_shutdown.py", timeout=50)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "sending SIGTERM to the program" in out
    assert "closing the door" in out
    assert "handing it back" in out
    assert "refused" in out
    assert "exactly the done ones" in out
    assert "lost: 0; application exit code 0" in out
    # The front drains before the ledger (started before it) stops.
    assert out.index("drained:") < out.index("ledger   stopping")
    assert "received SIGTERM" in result.stderr
