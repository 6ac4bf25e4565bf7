"""Idle timeouts: "if no message arrives within T, call handle_info(TIMEOUT)",
cancelled by the next message (OTP's ``{noreply, State, Timeout}``).

Run on the kit's virtual clock: time moves only when the test says so.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

import asyncotp.sys as otp_sys
from asyncotp import (
    NORMAL,
    TIMEOUT,
    Caller,
    GenServer,
    IdleTimeout,
    Node,
    call,
    cast,
    send,
    stop,
)
from asyncotp.testing import VirtualClock
from tests.helpers import wait


class Idle(GenServer):
    """Logs ``(what, loop time)``; requests say which timeout to ask for."""

    log: list[tuple[object, float]]

    async def init(self, log: list[tuple[object, float]], seconds: float | None = None) -> Any:
        self.log = log
        return None if seconds is None else IdleTimeout(seconds)

    async def handle_cast(self, request: Any) -> Any:
        self.log.append((("cast", request), now()))
        match request:
            case ("idle", seconds):
                return IdleTimeout(seconds)
        return None

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("idle", seconds, value):
                return IdleTimeout(seconds, reply=value)
        return request

    async def handle_info(self, message: Any) -> Any:
        self.log.append((message, now()))
        return None

    async def terminate(self, reason: Any) -> None:
        self.log.append((("terminate", reason), now()))


def now() -> float:
    return asyncio.get_running_loop().time()


def timeouts(log: list[tuple[object, float]]) -> list[float]:
    return [at for what, at in log if what is TIMEOUT]


async def test_handle_info_gets_timeout_when_no_message_arrives_in_time(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[tuple[object, float]] = []
    pid = await Idle.start(log)
    start = now()
    cast(pid, ("idle", 5.0))
    await virtual_clock.advance(5)
    await call(pid, "sync")
    assert [at - start for at in timeouts(log)] == [5.0]


async def test_the_next_message_cancels_the_idle_timeout(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[tuple[object, float]] = []
    pid = await Idle.start(log)
    cast(pid, ("idle", 5.0))
    await virtual_clock.advance(3)
    send(pid, "a plain message")  # any message counts, not only requests
    await virtual_clock.advance(10)
    await call(pid, "sync")
    assert timeouts(log) == []
    assert ("a plain message", log[0][1] + 3.0) in log


async def test_init_may_ask_for_an_idle_timeout(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[tuple[object, float]] = []
    start = now()
    await Idle.start(log, 2.0)
    await virtual_clock.advance(2)
    assert [at - start for at in timeouts(log)] == [2.0]


async def test_handle_call_replies_and_arms_an_idle_timeout(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[tuple[object, float]] = []
    pid = await Idle.start(log)
    start = now()
    assert await call(pid, ("idle", 1.5, "answer")) == "answer"
    await virtual_clock.advance(1.5)
    await call(pid, "sync")
    assert [at - start for at in timeouts(log)] == [1.5]


async def test_a_zero_timeout_is_cancelled_by_a_message_already_queued(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[tuple[object, float]] = []
    pid = await Idle.start(log)
    cast(pid, ("idle", 0))
    cast(pid, "queued behind")
    await call(pid, "sync")
    await virtual_clock.advance(1)
    assert timeouts(log) == []


async def test_a_zero_timeout_with_an_empty_mailbox_times_out_at_once(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[tuple[object, float]] = []
    pid = await Idle.start(log)
    start = now()
    cast(pid, ("idle", 0))
    await virtual_clock.advance(0.001)
    await call(pid, "sync")
    assert [at - start for at in timeouts(log)] == [0.0]


@pytest.mark.parametrize("seconds", [None, math.inf])
async def test_none_and_infinity_mean_no_idle_timeout(
    virtual_clock: VirtualClock, otp_node: Node, seconds: float | None
) -> None:
    log: list[tuple[object, float]] = []
    pid = await Idle.start(log)
    cast(pid, ("idle", seconds))
    await virtual_clock.advance(1000)
    await call(pid, "sync")
    assert timeouts(log) == []


async def test_a_server_waiting_on_an_idle_timeout_still_stops_at_once(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[tuple[object, float]] = []
    pid = await Idle.start(log)
    cast(pid, ("idle", 60.0))
    await call(pid, "sync")
    await stop(pid)
    assert timeouts(log) == []
    assert log[-1][0] == ("terminate", NORMAL)
    assert virtual_clock.elapsed < 60


@pytest.mark.parametrize("seconds", [-1, math.nan, 10**400, "5"])
def test_idle_timeout_refuses_bad_seconds_naming_the_argument(seconds: object) -> None:
    with pytest.raises((ValueError, TypeError), match="seconds"):
        IdleTimeout(seconds)


def test_idle_timeout_repr_is_readable() -> None:
    assert repr(IdleTimeout(2)) == "IdleTimeout(2.0)"
    assert repr(IdleTimeout(None, reply="x")) == "IdleTimeout(None, reply='x')"


async def test_a_timeout_of_the_wrong_type_crashes_the_callback_that_made_it(
    node: Node,
) -> None:
    pid = await wait(Idle.start([]))
    cast(pid, ("idle", -1))
    with pytest.raises(Exception, match="seconds"):
        await wait(call(pid, "sync"))


async def test_a_system_request_restarts_the_idle_timeout_instead_of_cancelling_it(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    log: list[tuple[object, float]] = []
    pid = await Idle.start(log)
    cast(pid, ("idle", 5.0))
    await virtual_clock.advance(3)
    armed_again = now()
    assert (await otp_sys.get_state(pid))["log"] == log
    await virtual_clock.advance(5)
    await call(pid, "sync")
    assert [at - armed_again for at in timeouts(log)] == [5.0]
