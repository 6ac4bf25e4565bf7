"""Testing the demonstration shop (examples/demo.py) with asyncotp.testing.

    pytest examples/test_demo_app.py

The fixtures ``otp_node``, ``virtual_clock`` and ``crash_reports`` come from
the asyncotp pytest plugin (installed with asyncotp). Every test
synchronises on events (reports, restarts, messages), never on sleeps, and
runs on virtual time: the five-second restart window and the call timeouts
take milliseconds.
"""

from __future__ import annotations

import pytest
from demo import build_shop, initial_prices, pay, start_shop
from hypothesis import settings
from hypothesis.stateful import invariant

from asyncotp import (
    GAVE_UP,
    Agent,
    CallTimeout,
    Node,
    Pid,
    call,
    whereis,
)
from asyncotp.testing import (
    MessageFaults,
    ReportCapture,
    SupervisionMachine,
    VirtualClock,
    crash,
    fail_init,
    settle,
    wait_for_restart,
)


async def test_every_third_charge_crashes_the_gateway_and_rest_for_one_restarts_the_ledger(
    otp_node: Node, crash_reports: ReportCapture
) -> None:
    await start_shop()
    old_ledger = whereis("ledger")
    assert await pay(3) == "ok"
    assert await pay(6) == "ok"
    assert await pay(9) == "failed"  # the gateway crashed mid-request

    crashed = await crash_reports.wait_for("child_terminated", child_id="gateway")
    assert isinstance(crashed.reason, ConnectionError)
    new_ledger = await wait_for_restart("payments", "ledger", old_ledger)
    assert new_ledger is whereis("ledger")
    assert await pay(12) == "ok"


async def test_a_burst_of_crashes_makes_payments_give_up_and_the_shop_restart_it(
    virtual_clock: VirtualClock, otp_node: Node, crash_reports: ReportCapture
) -> None:
    await start_shop()
    old_payments = whereis("payments")
    for _ in range(3):  # payments allows 2 restarts in 5 s
        gateway = whereis("gateway")
        assert gateway is not None
        await crash(gateway)
        await settle()

    gave_up = await crash_reports.wait_for("supervisor_gave_up", supervisor_name="payments")
    assert gave_up.restarts_in_window == 3
    restarted = await crash_reports.wait_for("child_terminated", child_id="payments")
    assert restarted.reason == GAVE_UP
    assert await wait_for_restart("shop", "payments", old_payments) is whereis("payments")
    assert await pay(3) == "ok"


async def test_crashes_spread_over_the_restart_window_do_not_exhaust_it(
    virtual_clock: VirtualClock, otp_node: Node, crash_reports: ReportCapture
) -> None:
    await start_shop()
    for _ in range(4):
        gateway = whereis("gateway")
        assert gateway is not None
        await crash(gateway)
        await settle()
        await virtual_clock.advance(3.0)  # two crashes never fall in one 5 s window

    assert crash_reports.events("supervisor_gave_up") == []
    assert len(crash_reports.events("child_restarted", child_id="gateway")) == 4


async def test_a_lost_charge_times_out_on_virtual_time(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    await start_shop()
    with MessageFaults() as faults:
        lost = faults.drop(dest="gateway", times=1)
        with pytest.raises(CallTimeout):
            await call("gateway", ("charge", 3))  # 5 s of virtual time, instantly
        assert len(lost.taken) == 1
    assert virtual_clock.elapsed >= 5.0
    assert await pay(3) == "ok"


# -- a property test of the shop's tree ------------------------------------------------


@settings(max_examples=20, stateful_step_count=8, deadline=None)
class ShopMachine(SupervisionMachine):
    """Random crashes, kills and failing starts against the shop; after each,
    OTP's rules must hold, and the shop must still have its prices."""

    async def start_tree(self) -> Pid:
        # fail_init(spec, times=0) lets the machine make those starts fail.
        return await start_shop([fail_init(spec, times=0) for spec in build_shop()])

    @invariant()
    def prices_come_back_intact(self) -> None:
        if self.tree is not None:
            assert self.run(Agent.get, "prices") == initial_prices()

    @invariant()
    def the_ledger_answers(self) -> None:
        if self.tree is not None:
            assert self.run(call, "ledger", ("record", 1)) >= 1


TestShop = ShopMachine.TestCase
