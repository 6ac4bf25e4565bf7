"""Hardening of resilience and health: what a hostile or unlucky caller cannot break.

Each test states one rule: a place a caller was given comes back when the
caller is gone; a user object whose ``__repr__`` (or ``__eq__``, or
``__hash__``) raises cannot crash a shared component nor replace the error
its caller should get; a bad key or time argument is refused in the caller,
before anything happens; a bounded mailbox cannot starve a server of its own
tokens.

The tests run on the kit's virtual clock (autojump on: the loop jumps to its
next timer when every task waits), and synchronise on messages, monitors,
events and call round trips, never on sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import asyncotp
from asyncotp import (
    KILL,
    KILLED,
    CallTimeout,
    CircuitOpen,
    GenServer,
    receive,
    send,
    send_exit,
    spawn,
)
from asyncotp.resilience import (
    BreakerState,
    CircuitBreaker,
    DeadLetter,
    DeadLetterQueue,
    JobFailed,
    WorkerPool,
)
from asyncotp.testing import kill
from tests.helpers import Gate, started, wait, watch

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

pytestmark = pytest.mark.usefixtures("virtual_clock")


# -- helpers -------------------------------------------------------------------------


async def succeeds() -> str:
    return "ok"


async def fails() -> None:
    raise ConnectionError("the dependency is down")


class Held(GenServer):
    """Mixed into a server: a ``Gate`` sent to it keeps it busy, so that
    requests queue behind it."""

    async def handle_info(self, message: Any) -> None:
        if isinstance(message, Gate):
            await message.pass_through()
        else:
            await super().handle_info(message)


on_answer: list[Callable[[asyncotp.Caller], object]] = []
"""What an ``Interrupting`` server does, once each, as it answers a call."""


class Interrupting(GenServer):
    """Mixed into a server: it runs the actions of ``on_answer`` as it answers
    a call; cancelling or killing the caller there, the caller never hears
    the answer."""

    async def handle_call(self, request: Any, caller: asyncotp.Caller) -> Any:
        answer = await super().handle_call(request, caller)
        while on_answer:
            on_answer.pop()(caller)
        return answer


class HeldBreaker(Held, CircuitBreaker):
    pass


class InterruptingBreaker(Interrupting, CircuitBreaker):
    pass


class HeldQueue(Held, DeadLetterQueue):
    pass


class InterruptingQueue(Interrupting, DeadLetterQueue):
    pass


class HeldPool(Held, WorkerPool):
    pass


async def state_changes(breaker: asyncotp.Pid) -> asyncio.Queue[BreakerState]:
    """The breaker's new states, one by one, fed by a subscribed actor."""
    states: asyncio.Queue[BreakerState] = asyncio.Queue()
    subscribed = asyncio.Event()

    async def forward() -> None:
        await CircuitBreaker.subscribe(breaker)
        subscribed.set()
        while True:
            states.put_nowait((await receive()).state)

    spawn(forward)
    await wait(subscribed.wait())
    return states


async def half_open(
    cls: type[CircuitBreaker] = CircuitBreaker,
) -> tuple[asyncotp.Pid, asyncio.Queue[BreakerState]]:
    """A breaker (one trial call) that has just turned half-open."""
    breaker = await cls.start(failure_threshold=1, cool_down=1.0)
    states = await state_changes(breaker)
    with pytest.raises(ConnectionError):
        await CircuitBreaker.call(breaker, fails)
    assert await wait(states.get()) is OPEN
    assert await wait(states.get()) is HALF_OPEN  # after the cool-down, on the virtual clock
    return breaker, states


async def poison(job: object) -> None:
    raise ValueError("cannot handle this job")


async def a_letter(
    queue: type[DeadLetterQueue] = DeadLetterQueue, pool: type[WorkerPool] = WorkerPool
) -> tuple[asyncotp.Pid, asyncotp.Pid, DeadLetter]:
    """A dead-letter queue holding one letter, and the pool it came from."""
    dlq = await queue.start()
    pool_pid = await pool.start(poison, dead_letters=dlq, max_attempts=1, name="pool")
    with pytest.raises(JobFailed):
        await WorkerPool.run(pool_pid, "job")
    [letter] = await DeadLetterQueue.letters(dlq)
    return dlq, pool_pid, letter


async def still_there(dlq: asyncotp.Pid, pool: asyncotp.Pid, letter: DeadLetter) -> None:
    """The letter is back in the queue, and the pool did not get the job again."""
    assert await DeadLetterQueue.letters(dlq) == [letter]
    assert (await DeadLetterQueue.statistics(dlq)).replayed == 0
    assert (await WorkerPool.statistics(pool)).submitted == 1


async def a_trial_closes_it(breaker: asyncotp.Pid, states: asyncio.Queue[BreakerState]) -> None:
    assert await CircuitBreaker.call(breaker, succeeds) == "ok"
    assert await wait(states.get()) is CLOSED


# -- 1. a place given to a caller comes back when the caller is gone ----------------------


async def test_a_trial_place_whose_request_timed_out_is_given_back(node: asyncotp.Node) -> None:
    breaker, states = await half_open(HeldBreaker)
    gate = Gate()
    send(breaker, gate)
    await wait(gate.entered.wait())
    with pytest.raises(CallTimeout):  # the request for permission waits behind the gate
        await CircuitBreaker.call(breaker, succeeds)
    gate.open()
    await a_trial_closes_it(breaker, states)


async def test_a_trial_place_whose_caller_was_cancelled_while_waiting_is_given_back(
    node: asyncotp.Node,
) -> None:
    breaker, states = await half_open(HeldBreaker)
    gate = Gate()
    send(breaker, gate)
    await wait(gate.entered.wait())
    waiting = await started(CircuitBreaker.call(breaker, succeeds))  # its request is queued
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.open()
    await a_trial_closes_it(breaker, states)


async def test_a_trial_place_whose_caller_was_cancelled_as_it_was_granted_is_given_back(
    node: asyncotp.Node,
) -> None:
    breaker, states = await half_open(InterruptingBreaker)
    victim = asyncio.ensure_future(CircuitBreaker.call(breaker, succeeds))
    on_answer.append(lambda _caller: victim.cancel())
    with pytest.raises(asyncio.CancelledError):
        await victim
    await a_trial_closes_it(breaker, states)


async def test_a_trial_place_whose_caller_actor_was_killed_as_it_was_granted_is_given_back(
    node: asyncotp.Node,
) -> None:
    breaker, states = await half_open(InterruptingBreaker)
    go = asyncio.Event()

    async def asks() -> None:
        await go.wait()
        await CircuitBreaker.call(breaker, succeeds)

    caller = spawn(asks)
    exited = await watch(caller)
    on_answer.append(lambda answered: send_exit(caller, KILL))
    go.set()
    assert await wait(exited) is KILLED
    await a_trial_closes_it(breaker, states)


async def test_a_trial_place_whose_caller_actor_died_during_the_trial_is_given_back(
    node: asyncotp.Node,
) -> None:
    breaker, states = await half_open()
    trial = Gate()

    async def hangs() -> None:
        await trial.pass_through()

    caller = spawn(CircuitBreaker.call, breaker, hangs)
    await wait(trial.entered.wait())
    with pytest.raises(CircuitOpen):  # the one trial place is taken
        await CircuitBreaker.call(breaker, succeeds)
    assert await kill(caller) is KILLED
    await a_trial_closes_it(breaker, states)


async def test_a_letter_whose_replay_timed_out_before_the_queue_handed_it_over_stays(
    node: asyncotp.Node,
) -> None:
    dlq, pool, letter = await a_letter(queue=HeldQueue)
    gate = Gate()
    send(dlq, gate)
    await wait(gate.entered.wait())
    with pytest.raises(CallTimeout):
        await DeadLetterQueue.replay(dlq, letter.id, timeout=1.0)
    gate.open()
    await still_there(dlq, pool, letter)


async def test_a_letter_whose_replayer_was_cancelled_as_it_was_handed_over_goes_back(
    node: asyncotp.Node,
) -> None:
    dlq, pool, letter = await a_letter(queue=InterruptingQueue)
    victim = asyncio.ensure_future(DeadLetterQueue.replay(dlq, letter.id))
    on_answer.append(lambda _caller: victim.cancel())
    with pytest.raises(asyncio.CancelledError):
        await victim
    await still_there(dlq, pool, letter)


async def test_a_letter_whose_replayer_actor_died_before_the_pool_took_the_job_goes_back(
    node: asyncotp.Node,
) -> None:
    dlq, pool, letter = await a_letter(pool=HeldPool)
    gate = Gate()
    send(pool, gate)
    await wait(gate.entered.wait())
    replayed = asyncio.Event()

    async def replays() -> None:
        replayed.set()
        await DeadLetterQueue.replay(dlq, letter.id, timeout=None)

    replayer = spawn(replays)
    await wait(replayed.wait())
    assert await DeadLetterQueue.letters(dlq) == []  # taken, on its way to the pool
    assert await kill(replayer) is KILLED
    gate.open()
    await still_there(dlq, pool, letter)


async def test_a_submission_that_timed_out_before_the_pool_took_it_is_not_queued(
    node: asyncotp.Node,
) -> None:
    dlq = await DeadLetterQueue.start()
    pool = await HeldPool.start(poison, dead_letters=dlq)
    gate = Gate()
    send(pool, gate)
    await wait(gate.entered.wait())
    with pytest.raises(CallTimeout):
        await WorkerPool.submit(pool, "job", timeout=1.0)
    gate.open()
    assert (await WorkerPool.statistics(pool)).submitted == 0
