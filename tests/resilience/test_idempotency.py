"""Idempotency keys: IdempotencyStore runs work once per key, remembers the
result for a time, and makes concurrent identical requests share one run.

The work is held on events the test opens; the store's time-to-live moves
only when the test moves the loop's clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest

from asyncotp import (
    KILL,
    ActorError,
    CallTimeout,
    MailboxFull,
    Node,
    NoProcess,
    Supervisor,
    is_alive,
    send,
    send_exit,
    spawn,
    whereis,
)
from asyncotp.resilience import IdempotencyKeyReused, IdempotencyStats, IdempotencyStore
from asyncotp.testing import VirtualClock, wait_for_restart
from tests.helpers import run_example, started

run_once = IdempotencyStore.run_once


# -- helpers -------------------------------------------------------------------


@attrs.define(eq=False)
class Work:
    """Counts its runs; while ``hold`` is set, each run waits for ``opened``."""

    result: object = "receipt"
    hold: bool = False
    fail: BaseException | None = None
    runs: int = 0
    entered: asyncio.Event = attrs.field(factory=asyncio.Event)
    opened: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def __call__(self, *args: Any) -> object:
        self.runs += 1
        self.entered.set()
        if self.hold:
            await self.opened.wait()
        if self.fail is not None:
            raise self.fail
        return (self.result, self.runs, args)


async def settled(store: Any) -> IdempotencyStats:
    """The store's stats, once every message sent to it before has been handled."""
    return await IdempotencyStore.statistics(store)


# -- once per key ----------------------------------------------------------------


async def test_the_first_request_with_a_key_runs_the_work_and_returns_its_result(
    node: Node,
) -> None:
    store = await IdempotencyStore.start()
    work = Work()
    assert await run_once(store, "k1", work, "order-1") == ("receipt", 1, ("order-1",))
    assert work.runs == 1


async def test_a_retried_request_with_the_same_key_gets_the_first_result_without_running_again(
    node: Node,
) -> None:
    store = await IdempotencyStore.start()
    work = Work()
    first = await run_once(store, "k1", work, "order-1")
    again = await run_once(store, "k1", work, "order-1")
    assert again == first
    assert work.runs == 1
    stats = await settled(store)
    assert (stats.runs, stats.hits, stats.remembered) == (1, 1, 1)


async def test_two_concurrent_requests_with_one_key_run_the_work_once(node: Node) -> None:
    store = await IdempotencyStore.start()
    work = Work(hold=True)
    first = await started(run_once(store, "k1", work))
    await work.entered.wait()
    second = await started(run_once(store, "k1", work))
    assert (await settled(store)).joined == 1  # the second waits for the first's run
    work.opened.set()
    assert await first == await second == ("receipt", 1, ())
    assert work.runs == 1


async def test_many_concurrent_requests_from_several_actors_run_the_work_once(
    node: Node,
) -> None:
    store = await IdempotencyStore.start()
    work = Work(hold=True)
    loop = asyncio.get_running_loop()
    results: list[asyncio.Future[object]] = [loop.create_future() for _ in range(10)]

    async def client(out: asyncio.Future[object]) -> None:
        out.set_result(await run_once(store, "same", work))

    for out in results:
        spawn(client, out)
    await work.entered.wait()
    work.opened.set()
    assert {await r for r in results} == {("receipt", 1, ())}
    assert work.runs == 1


async def test_work_runs_outside_the_store_so_other_keys_are_served_meanwhile(
    node: Node,
) -> None:
    store = await IdempotencyStore.start()
    slow = Work(hold=True)
    blocked = await started(run_once(store, "slow", slow))
    await slow.entered.wait()
    assert await run_once(store, "fast", Work(result="fast")) == ("fast", 1, ())
    slow.opened.set()
    await blocked


# -- failures ------------------------------------------------------------------------


async def test_a_failed_run_is_not_remembered_waiters_get_its_error_and_a_retry_runs_again(
    node: Node,
) -> None:
    store = await IdempotencyStore.start()
    work = Work(hold=True, fail=ConnectionError("card network down"))
    first = await started(run_once(store, "k1", work))
    await work.entered.wait()
    waiter = await started(run_once(store, "k1", work))
    await settled(store)
    work.opened.set()
    for task in (first, waiter):
        with pytest.raises(ConnectionError, match="card network down"):
            await task
    assert work.runs == 1
    work.fail = None
    assert await run_once(store, "k1", work) == ("receipt", 2, ())
    stats = await settled(store)
    assert (stats.runs, stats.failures, stats.remembered) == (2, 1, 1)


async def test_a_cancelled_runner_hands_the_work_to_a_waiting_request(node: Node) -> None:
    store = await IdempotencyStore.start()
    work = Work(hold=True)
    runner = await started(run_once(store, "k1", work))
    await work.entered.wait()
    waiter = await started(run_once(store, "k1", work))
    await settled(store)
    work.entered.clear()
    runner.cancel()
    await work.entered.wait()  # the waiter took over and runs the work
    work.opened.set()
    assert await waiter == ("receipt", 2, ())
    with pytest.raises(asyncio.CancelledError):
        await runner
    stats = await settled(store)
    assert (stats.runs, stats.abandoned, stats.remembered) == (2, 1, 1)


async def test_a_runner_actor_that_is_killed_hands_the_work_to_a_waiting_request(
    node: Node,
) -> None:
    store = await IdempotencyStore.start()
    work = Work(hold=True)

    async def client() -> None:
        await run_once(store, "k1", work)

    runner = spawn(client)
    await work.entered.wait()
    waiter = await started(run_once(store, "k1", work))
    await settled(store)
    work.entered.clear()
    send_exit(runner, KILL)
    await work.entered.wait()
    work.opened.set()
    assert await waiter == ("receipt", 2, ())
    assert not is_alive(runner)


async def test_an_abandoned_run_with_nobody_waiting_frees_the_key(node: Node) -> None:
    store = await IdempotencyStore.start()
    work = Work(hold=True)
    runner = await started(run_once(store, "k1", work))
    await work.entered.wait()
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert (await settled(store)).running == 0
    work.hold = False
    assert await run_once(store, "k1", work) == ("receipt", 2, ())


async def test_a_waiter_that_times_out_leaves_the_run_and_its_result_intact(
    node: Node, clock: VirtualClock
) -> None:
    store = await IdempotencyStore.start()
    work = Work(hold=True)
    runner = await started(run_once(store, "k1", work))
    await work.entered.wait()
    impatient = await started(run_once(store, "k1", work, timeout=1.0))
    await settled(store)
    await clock.advance(2.0)
    with pytest.raises(CallTimeout):
        await impatient
    work.opened.set()
    assert await runner == ("receipt", 1, ())
    assert await run_once(store, "k1", work) == ("receipt", 1, ())
    assert work.runs == 1


# -- time to live, fingerprints, forgetting -------------------------------------------------


async def test_a_remembered_result_expires_after_its_ttl(node: Node, clock: VirtualClock) -> None:
    store = await IdempotencyStore.start(ttl=60.0)
    work = Work()
    await run_once(store, "k1", work)
    await clock.advance(59.0)
    assert await run_once(store, "k1", work) == ("receipt", 1, ())
    await clock.advance(2.0)
    assert await run_once(store, "k1", work) == ("receipt", 2, ())
    stats = await settled(store)
    assert (stats.expired, stats.remembered) == (1, 1)


async def test_a_key_reused_for_another_request_raises_idempotency_key_reused(
    node: Node,
) -> None:
    store = await IdempotencyStore.start()
    work = Work()
    await run_once(store, "k1", work, fingerprint="sha:aaa")
    with pytest.raises(IdempotencyKeyReused) as info:
        await run_once(store, "k1", work, fingerprint="sha:bbb")
    error = info.value
    assert isinstance(error, ActorError)
    assert isinstance(error, ValueError)
    assert error.key == "k1"
    assert "use a new key" in str(error)
    assert await run_once(store, "k1", work, fingerprint="sha:aaa") == ("receipt", 1, ())
    assert work.runs == 1


async def test_forget_drops_a_remembered_result(node: Node) -> None:
    store = await IdempotencyStore.start()
    work = Work()
    await run_once(store, "k1", work)
    assert await IdempotencyStore.forget(store, "k1") is True
    assert await IdempotencyStore.forget(store, "k1") is False
    assert await run_once(store, "k1", work) == ("receipt", 2, ())


async def test_max_entries_forgets_the_oldest_results_first(node: Node) -> None:
    store = await IdempotencyStore.start(max_entries=2)
    work = Work()
    for key in ("a", "b", "c"):
        await run_once(store, key, work)
    assert await run_once(store, "c", work) == ("receipt", 3, ())
    assert await run_once(store, "b", work) == ("receipt", 2, ())
    assert await run_once(store, "a", work) == ("receipt", 4, ())  # forgotten: ran again


async def test_an_outcome_is_recorded_even_when_the_store_mailbox_is_full(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    store = await IdempotencyStore.start(mailbox_size=1)

    async def work() -> str:
        send(store, "filler")  # the store's mailbox is full when the outcome is cast
        return "done"

    assert await run_once(store, "k1", work) == "done"
    for _attempt in range(10):
        try:
            assert await run_once(store, "k1", Work()) == "done"
            break
        except MailboxFull:  # the store has not caught up yet: retry, as a client would
            await asyncio.sleep(0)
    else:
        pytest.fail("the store never caught up")


# -- supervision and settings -----------------------------------------------------------


async def test_the_store_is_supervisable_and_a_restarted_store_has_forgotten_its_keys(
    node: Node,
) -> None:
    root = await Supervisor.start([IdempotencyStore.child_spec(ttl=30.0, name="idem")])
    work = Work()
    await run_once("idem", "k1", work)
    old = whereis("idem")
    assert old is not None
    send_exit(old, KILL)
    new = await wait_for_restart(root, "IdempotencyStore", old)
    assert whereis("idem") is new
    assert await run_once("idem", "k1", work) == ("receipt", 2, ())
    assert is_alive(root)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ttl": 0}, "ttl must be seconds > 0, not 0"),
        ({"ttl": "1h"}, "ttl must be seconds > 0, not '1h'"),
        ({"max_entries": 0}, "max_entries must be None or an int >= 1, not 0"),
    ],
)
async def test_bad_settings_raise_value_error_naming_the_setting(
    node: Node, settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await IdempotencyStore.start(**settings)


async def test_run_once_on_a_missing_store_raises_no_process(node: Node) -> None:
    with pytest.raises(NoProcess):
        await run_once("no-such-store", "k1", Work())


async def test_a_key_must_be_hashable(node: Node) -> None:
    store = await IdempotencyStore.start()
    with pytest.raises(TypeError, match="hashable"):
        await run_once(store, ["not", "hashable"], Work())  # type: ignore[arg-type]


# -- the example ---------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_idempotency_example_charges_once_per_key() -> None:
    result = run_example("idempotency.py", timeout=50)
    assert result.returncode == 0, result.stderr
    assert "charged 3 times for 3 distinct keys" in result.stdout
