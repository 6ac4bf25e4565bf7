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
import inspect
import json
import logging
import math
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest

import asyncotp
from asyncotp import (
    KILL,
    KILLED,
    Backoff,
    CallTimeout,
    CircuitOpen,
    GenServer,
    MailboxFull,
    Overflow,
    ServerExited,
    Shutdown,
    StartError,
    Supervisor,
    call,
    cast,
    processes,
    receive,
    send,
    send_exit,
    spawn,
)
from asyncotp.health import (
    HealthApp,
    ReadinessServer,
    health_report,
    ready_when,
    remove_ready_check,
)
from asyncotp.resilience import (
    BreakerState,
    CircuitBreaker,
    DeadLetter,
    DeadLetterQueue,
    IdempotencyKeyReused,
    IdempotencyStore,
    JobFailed,
    Overloaded,
    RequestEnvelope,
    RetryError,
    RetryPolicy,
    SheddingServer,
    ShedReason,
    WorkerPool,
    call_with_deadline,
    retry,
)
from asyncotp.testing import VirtualClock, kill
from tests.helpers import Gate, started, wait, watch

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN
NO_DELAY = Backoff(initial=0.0, max=0.0, jitter=0.0)

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


class HeldInterruptingQueue(Held, Interrupting, DeadLetterQueue):
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
    queue: type[DeadLetterQueue] = DeadLetterQueue,
    pool: type[WorkerPool] = WorkerPool,
    **queue_options: Any,
) -> tuple[asyncotp.Pid, asyncotp.Pid, DeadLetter]:
    """A dead-letter queue holding one letter, and the pool it came from."""
    dlq = await queue.start(**queue_options)
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


# -- 2. a user object that cannot be shown or compared breaks nothing ---------------------


class Unprintable(ConnectionError):
    """An error whose ``__repr__`` and ``__str__`` raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


class UnprintableTimeout(Unprintable, TimeoutError):
    """The same, and worth a retry."""


class Opaque:
    """A value whose ``__repr__``, ``__str__`` and ``__eq__`` raise (hashable by identity)."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")

    __hash__ = object.__hash__


class UnprintableKey(str):
    """A str key (hashable, comparable) whose ``__repr__`` raises."""

    __slots__ = ()

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


PLACEHOLDER = "repr() raised RuntimeError"
"""What a placeholder for a value whose ``__repr__`` raises says."""


@pytest.fixture
def every_log_formatted(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of the ``asyncotp`` logger, DEBUG included, is formatted as
    it is logged (pytest's capture handler raises if that fails)."""
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    return caplog


async def test_a_guarded_call_whose_error_cannot_be_shown_is_counted_and_raised_unchanged(
    node: asyncotp.Node, every_log_formatted: pytest.LogCaptureFixture
) -> None:
    breaker = await CircuitBreaker.start(failure_threshold=1)
    value = Opaque()

    async def returns() -> Opaque:
        return value

    assert await CircuitBreaker.call(breaker, returns) is value
    error = Unprintable()

    async def raises() -> None:
        raise error

    with pytest.raises(Unprintable) as caught:
        await CircuitBreaker.call(breaker, raises)
    assert caught.value is error
    stats = await CircuitBreaker.statistics(breaker)
    assert (stats.state, stats.failed) == (OPEN, 1)
    assert stats.last_error is not None
    assert PLACEHOLDER in stats.last_error


async def test_retry_of_an_error_that_cannot_be_shown_logs_and_gives_up_with_that_error(
    node: asyncotp.Node, every_log_formatted: pytest.LogCaptureFixture
) -> None:
    errors = [UnprintableTimeout(), UnprintableTimeout()]
    seen: list[BaseException] = []

    async def fails_twice() -> None:
        raise errors[len(seen)]

    policy = RetryPolicy(max_attempts=2, initial=0.0, jitter=0.0)
    with pytest.raises(RetryError) as caught:
        await retry(fails_twice, policy=policy, on_retry=lambda attempt: seen.append(attempt.error))
    assert seen == errors[:1]
    assert caught.value.__cause__ is errors[1]
    assert PLACEHOLDER in str(caught.value)
    messages = [record.getMessage() for record in every_log_formatted.records]
    assert any("trying again" in text and PLACEHOLDER in text for text in messages)
    assert any("giving up" in text and PLACEHOLDER in text for text in messages)


class Shedder(SheddingServer):
    max_queue = 1

    async def handle_request(self, request: Any, caller: asyncotp.Caller) -> Any:
        if type(request) is str:
            return "handled"
        raise LookupError("cannot handle it")


async def test_a_request_that_cannot_be_shown_is_shed_with_a_placeholder_and_the_server_lives_on(
    node: asyncotp.Node,
) -> None:
    server = await Shedder.start()
    expired = RequestEnvelope(
        Opaque(), sent_at=asyncio.get_running_loop().time() - 2.0, deadline=1.0
    )
    with pytest.raises(Overloaded) as caught:
        await call(server, expired)
    assert caught.value.reason is ShedReason.EXPIRED
    assert PLACEHOLDER in str(caught.value)
    assert await call(server, "next") == "handled"


async def test_a_failing_request_that_cannot_be_shown_ends_the_server_with_its_own_error(
    node: asyncotp.Node,
) -> None:
    server = await Shedder.start()
    exited = await watch(server)
    with pytest.raises(ServerExited) as caught:
        await call(server, Opaque())
    error = caught.value.reason
    assert isinstance(error, LookupError)
    assert await wait(exited) is error
    assert any(PLACEHOLDER in note for note in error.__notes__)


async def test_a_job_that_cannot_be_shown_failing_with_an_error_that_cannot_be_shown_is_buried(
    node: asyncotp.Node, every_log_formatted: pytest.LogCaptureFixture
) -> None:
    async def unprintable(job: object) -> None:
        raise Unprintable()

    dlq = await DeadLetterQueue.start(max_letters=1)
    pool = await WorkerPool.start(
        unprintable, dead_letters=dlq, max_attempts=2, backoff=NO_DELAY, max_pending=2
    )
    jobs = [Opaque(), Opaque()]
    for job in jobs:  # the second letter makes the queue drop (and log) the first
        with pytest.raises(JobFailed) as caught:
            await WorkerPool.run(pool, job)
        assert PLACEHOLDER in str(caught.value)
        assert isinstance(caught.value.__cause__, Unprintable)
    [letter] = await DeadLetterQueue.letters(dlq)
    assert letter.job is jobs[1]
    assert PLACEHOLDER in letter.error
    assert all(PLACEHOLDER in error for error in letter.errors)
    stats = await WorkerPool.statistics(pool)  # the pool lives on
    assert (stats.dead, stats.failed_attempts) == (2, 4)
    assert any("dropped the oldest" in r.getMessage() for r in every_log_formatted.records)


async def test_a_pool_refusing_a_job_that_cannot_be_shown_says_so_with_a_placeholder(
    node: asyncotp.Node,
) -> None:
    dlq = await DeadLetterQueue.start()
    pool = await WorkerPool.start(poison, dead_letters=dlq, max_pending=0)
    with pytest.raises(Overloaded) as caught:
        await WorkerPool.submit(pool, Opaque())
    assert PLACEHOLDER in str(caught.value)
    assert (await WorkerPool.statistics(pool)).submitted == 0


async def test_a_fingerprint_that_cannot_be_compared_is_refused_in_the_caller_not_the_store(
    node: asyncotp.Node,
) -> None:
    store = await IdempotencyStore.start()
    assert await IdempotencyStore.run_once(store, "k", succeeds, fingerprint=Opaque()) == "ok"
    with pytest.raises(TypeError, match="cannot be compared") as caught:
        await IdempotencyStore.run_once(store, "k", succeeds, fingerprint=Opaque())
    assert PLACEHOLDER in str(caught.value)
    assert (await IdempotencyStore.statistics(store)).remembered == 1  # the store lives on


async def test_a_reused_key_that_cannot_be_shown_is_reported_with_a_placeholder(
    node: asyncotp.Node,
) -> None:
    store = await IdempotencyStore.start()
    key = UnprintableKey("order-1")
    await IdempotencyStore.run_once(store, key, succeeds, fingerprint="a")
    with pytest.raises(IdempotencyKeyReused) as caught:
        await IdempotencyStore.run_once(store, key, succeeds, fingerprint="b")
    assert PLACEHOLDER in str(caught.value)


class NeverReady(ReadinessServer):
    async def ready(self) -> bool:
        raise Unprintable()


class UnprintableId:
    """A child id (hashable) whose ``__repr__`` and ``__str__`` raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


async def unprintable_check() -> bool:
    raise Unprintable()


async def test_checks_that_cannot_be_shown_fail_with_a_placeholder_and_the_report_is_served(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start([NeverReady.child_spec(id=UnprintableId())], name="root")
    ready_when("raises", unprintable_check)
    ready_when("returns", Opaque)  # type: ignore[arg-type]  # no bool, on purpose
    report = await health_report(root)
    checks = {check.name: check for check in report.checks}
    assert checks["raises"].ok is False
    assert PLACEHOLDER in checks["raises"].detail
    assert checks["returns"].ok is False
    assert PLACEHOLDER in checks["returns"].detail
    [server] = [check for check in report.checks if check.pid is not None]
    assert server.ok is False
    assert "str() raised RuntimeError" in server.name  # its path in the tree
    assert PLACEHOLDER in server.detail
    assert report.ready is False
    status, body = await asgi_get(HealthApp(root), "/ready")
    assert status == 503
    assert [(check["name"], check["ok"]) for check in body["checks"]] == [
        (check.name, check.ok) for check in report.checks
    ]
    assert PLACEHOLDER in body["root"]["children"][0]["id"]


async def test_a_root_that_ended_with_a_reason_that_cannot_be_compared_is_reported_down(
    node: asyncotp.Node,
) -> None:
    root = await Supervisor.start([], name="root")
    exited = await watch(root)  # a monitor: the runtime does not log the end as a crash
    assert (await health_report(root)).live  # the report now knows the root
    reason = Shutdown(Opaque())
    await asyncotp.stop(root, reason)
    assert await wait(exited) is reason
    report = await health_report(root)
    assert (report.live, report.root.state, report.root.exit_reason) == (False, "down", reason)
    status, body = await asgi_get(HealthApp(root), "/health")
    assert status == 503
    assert PLACEHOLDER in body["root"]["exit_reason"]


async def asgi_get(app: HealthApp, path: str) -> tuple[int, Any]:
    """GET ``path`` from the ASGI app directly; the status and the decoded JSON."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": path}, receive, send)
    start, body = sent
    return start["status"], json.loads(body["body"])


# -- 3. a key that cannot be hashed is refused in the caller, naming it ------------------


class HashOnce:
    """Hashable the first time only: the caller's check passes, the store's fails."""

    def __init__(self) -> None:
        self.hashed = 0

    def __hash__(self) -> int:
        self.hashed += 1
        if self.hashed > 1:
            raise RuntimeError("no second hash")
        return 1


class SameHash:
    """Keys that all hash alike and whose ``__eq__`` raises."""

    def __hash__(self) -> int:
        return 7

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")


async def test_an_unhashable_idempotency_key_is_refused_in_the_caller_naming_it(
    node: asyncotp.Node,
) -> None:
    store = await IdempotencyStore.start()
    exited = await watch(store)
    ran: list[str] = []

    async def work() -> str:
        ran.append("ran")
        return "ok"

    key = ("order", ["not", "hashable"])
    with pytest.raises(
        TypeError, match=r"key \('order', \['not', 'hashable'\]\).*must be hashable"
    ):
        await IdempotencyStore.run_once(store, key, work)
    with pytest.raises(TypeError, match="must be hashable"):
        await IdempotencyStore.forget(store, key)
    assert ran == []
    assert await IdempotencyStore.run_once(store, ("order", 1), work) == "ok"
    assert not exited.done()


async def test_a_key_whose_hash_fails_in_the_store_fails_the_caller_not_the_store(
    node: asyncotp.Node,
) -> None:
    store = await IdempotencyStore.start()
    exited = await watch(store)
    with pytest.raises(TypeError, match="cannot be hashed"):
        await IdempotencyStore.run_once(store, HashOnce(), succeeds)
    assert await IdempotencyStore.run_once(store, "k", succeeds) == "ok"
    assert not exited.done()


async def test_keys_whose_eq_raises_are_each_their_own_key_and_crash_nothing(
    node: asyncotp.Node,
) -> None:
    store = await IdempotencyStore.start()
    first, second = SameHash(), SameHash()
    runs: list[object] = []

    async def work(key: object) -> int:
        runs.append(key)
        return len(runs)

    assert await IdempotencyStore.run_once(store, first, work, first) == 1
    assert await IdempotencyStore.run_once(store, second, work, second) == 2
    assert await IdempotencyStore.run_once(store, first, work, first) == 1  # remembered
    assert runs == [first, second]
    assert await IdempotencyStore.forget(store, second)


async def test_a_letter_id_that_is_not_an_int_is_refused_in_the_caller_naming_it(
    node: asyncotp.Node,
) -> None:
    dlq, _pool, letter = await a_letter()
    for operation in (DeadLetterQueue.inspect, DeadLetterQueue.replay, DeadLetterQueue.discard):
        with pytest.raises(TypeError, match=r"letter_id must be an int .*not \[1\]"):
            await operation(dlq, [1])  # type: ignore[arg-type]
    assert await DeadLetterQueue.letters(dlq) == [letter]


async def test_readiness_check_names_must_be_str(node: asyncotp.Node) -> None:
    with pytest.raises(TypeError, match=r"ready_when: name must be a non-empty str, not \['x'\]"):
        ready_when(["x"], succeeds)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"remove_ready_check: name must be a non-empty str, not \['x'\]"
    ):
        remove_ready_check(["x"])  # type: ignore[arg-type]


# -- 4. a bad time argument is refused before anything happens ---------------------------


class ConfiguredShedder(Shedder):
    async def init(self, default_deadline: object) -> None:
        self.default_deadline = default_deadline  # type: ignore[assignment]


@attrs.frozen
class Env:
    """One of each component, to call with bad time arguments."""

    breaker: asyncotp.Pid
    shedder: asyncotp.Pid
    store: asyncotp.Pid
    dlq: asyncotp.Pid
    pool: asyncotp.Pid
    letter: DeadLetter
    root: asyncotp.Pid


async def environment() -> Env:
    dlq, pool, letter = await a_letter()
    return Env(
        breaker=await CircuitBreaker.start(),
        shedder=await Shedder.start(),
        store=await IdempotencyStore.start(),
        dlq=dlq,
        pool=pool,
        letter=letter,
        root=await Supervisor.start([]),
    )


async def nothing_happened(env: Env) -> None:
    """No call reached a component, no job was queued, no work ran."""
    shedding = await SheddingServer.statistics(env.shedder)
    assert (shedding.handled, shedding.queued, shedding.shed) == (0, 0, 0)
    assert (await IdempotencyStore.statistics(env.store)).runs == 0
    assert await DeadLetterQueue.letters(env.dlq) == [env.letter]
    assert (await WorkerPool.statistics(env.pool)).submitted == 1  # the letter's job only
    breaker = await CircuitBreaker.statistics(env.breaker)
    assert (breaker.calls, breaker.rejected) == (0, 0)


async def start_shedder(default_deadline: object) -> object:
    try:
        return await ConfiguredShedder.start(default_deadline)
    except StartError as exc:  # the setting is checked when init returns
        raise (exc.__cause__ or exc) from None


Use = Callable[[Env, Any], object]
TIME_ARGUMENTS: list[tuple[str, bool, Use]] = [
    # (argument, whether inf means "no limit" there, a use of it)
    ("initial", False, lambda env, v: RetryPolicy(initial=v)),
    ("max_delay", True, lambda env, v: RetryPolicy(max_delay=v)),
    ("deadline", True, lambda env, v: RetryPolicy(deadline=v)),
    ("attempt_timeout", True, lambda env, v: RetryPolicy(attempt_timeout=v)),
    ("window", False, lambda env, v: CircuitBreaker.start(window=v)),
    ("cool_down", False, lambda env, v: CircuitBreaker.start(cool_down=v)),
    ("call_timeout", True, lambda env, v: CircuitBreaker.start(call_timeout=v)),
    ("timeout", False, lambda env, v: CircuitBreaker.start(timeout=v)),
    ("timeout", True, lambda env, v: CircuitBreaker.statistics(env.breaker, v)),
    ("deadline", True, lambda env, v: RequestEnvelope("r", deadline=v)),
    ("deadline", True, lambda env, v: call_with_deadline(env.shedder, "r", v)),
    ("timeout", True, lambda env, v: call_with_deadline(env.shedder, "r", 1.0, timeout=v)),
    ("timeout", True, lambda env, v: SheddingServer.statistics(env.shedder, v)),
    ("default_deadline", True, lambda env, v: start_shedder(v)),
    ("ttl", True, lambda env, v: IdempotencyStore.start(ttl=v)),
    (
        "timeout",
        True,
        lambda env, v: IdempotencyStore.run_once(env.store, "k", succeeds, timeout=v),
    ),
    ("timeout", True, lambda env, v: IdempotencyStore.forget(env.store, "k", v)),
    ("timeout", True, lambda env, v: IdempotencyStore.statistics(env.store, v)),
    ("timeout", True, lambda env, v: DeadLetterQueue.letters(env.dlq, v)),
    ("timeout", True, lambda env, v: DeadLetterQueue.inspect(env.dlq, env.letter.id, v)),
    ("timeout", True, lambda env, v: DeadLetterQueue.replay(env.dlq, env.letter.id, v)),
    ("timeout", True, lambda env, v: DeadLetterQueue.replay_all(env.dlq, v)),
    ("timeout", True, lambda env, v: DeadLetterQueue.discard(env.dlq, env.letter.id, v)),
    ("timeout", True, lambda env, v: DeadLetterQueue.undeliverable(env.dlq, v)),
    ("timeout", True, lambda env, v: DeadLetterQueue.statistics(env.dlq, v)),
    (
        "attempt_timeout",
        True,
        lambda env, v: WorkerPool.start(poison, dead_letters=env.dlq, attempt_timeout=v),
    ),
    (
        "worker_shutdown",
        True,
        lambda env, v: WorkerPool.start(poison, dead_letters=env.dlq, worker_shutdown=v),
    ),
    (
        "initial",
        False,
        lambda env, v: WorkerPool.start(
            poison, dead_letters=env.dlq, backoff=Backoff(initial=v, max=v)
        ),
    ),
    (
        "max",
        False,
        lambda env, v: WorkerPool.start(
            poison, dead_letters=env.dlq, backoff=Backoff(initial=0, max=v)
        ),
    ),
    ("timeout", True, lambda env, v: WorkerPool.submit(env.pool, "job", v)),
    ("timeout", True, lambda env, v: WorkerPool.run(env.pool, "job", v)),
    ("timeout", True, lambda env, v: WorkerPool.statistics(env.pool, v)),
    ("timeout", False, lambda env, v: health_report(env.root, timeout=v)),
    ("timeout", False, lambda env, v: HealthApp(env.root, timeout=v)),
]


async def attempt(use: Use, env: Env, value: object) -> None:
    outcome = use(env, value)
    if inspect.isawaitable(outcome):
        await outcome


@pytest.mark.parametrize(
    ("argument", "inf_is_no_limit", "use"),
    TIME_ARGUMENTS,
    ids=[f"{i}-{argument}" for i, (argument, _, _) in enumerate(TIME_ARGUMENTS)],
)
async def test_time_arguments_refuse_nan_negative_and_overflowing_values_before_anything_happens(
    node: asyncotp.Node, argument: str, inf_is_no_limit: bool, use: Use
) -> None:
    env = await environment()
    actors = set(processes())
    bad: list[object] = [math.nan, -1.0, 10**400]
    if not inf_is_no_limit:
        bad.append(math.inf)
    for value in bad:
        shown = re.escape(repr(value)[:40])
        with pytest.raises(ValueError, match=rf"{re.escape(argument)} must be .*, not {shown}"):
            await attempt(use, env, value)
    assert set(processes()) == actors  # nothing was started, and nothing crashed
    await nothing_happened(env)


async def test_the_loop_time_of_an_envelope_is_a_finite_number() -> None:
    for value in (math.nan, math.inf, 10**400, "now"):
        with pytest.raises(ValueError, match=r"RequestEnvelope.sent_at must be a finite loop time"):
            RequestEnvelope("r", sent_at=value)  # type: ignore[arg-type]


async def test_inf_means_no_limit_where_the_argument_has_none(node: asyncotp.Node) -> None:
    policy = RetryPolicy(deadline=math.inf, attempt_timeout=math.inf, max_delay=math.inf)
    assert (policy.deadline, policy.attempt_timeout) == (None, None)
    assert RequestEnvelope("r", deadline=math.inf).deadline is None
    env = await environment()
    assert await call_with_deadline(env.shedder, "r", math.inf, timeout=math.inf) == "handled"
    assert await IdempotencyStore.run_once(env.store, "k", succeeds, timeout=math.inf) == "ok"
    forever = await IdempotencyStore.start(ttl=math.inf)
    assert await IdempotencyStore.run_once(forever, "k", succeeds) == "ok"
    assert (await CircuitBreaker.statistics(env.breaker, math.inf)).calls == 0
    pool = await WorkerPool.start(succeeds_with, dead_letters=env.dlq, worker_shutdown=math.inf)
    assert await WorkerPool.run(pool, "job", timeout=math.inf) == "job"


async def succeeds_with(job: object) -> object:
    return job


# -- 5. a bounded mailbox never costs a server its own token -------------------------------


class HeldStore(Held, IdempotencyStore):
    pass


class HeldReadiness(Held, ReadinessServer):
    pass


async def test_an_idempotency_outcome_is_never_dropped_by_a_bounded_store_mailbox(
    node: asyncotp.Node,
) -> None:
    store = await HeldStore.start(mailbox_size=1, overflow=Overflow.DROP_NEWEST)
    working, release = asyncio.Event(), asyncio.Event()
    runs: list[str] = []

    async def work() -> str:
        runs.append("ran")
        working.set()
        await release.wait()
        return "ok"

    runner = asyncio.ensure_future(IdempotencyStore.run_once(store, "k", work))
    await wait(working.wait())
    gate = Gate()
    send(store, gate)
    await wait(gate.entered.wait())
    statistics = await started(IdempotencyStore.statistics(store))  # the mailbox is full
    release.set()
    assert await runner == "ok"  # its outcome went to the full mailbox
    gate.open()
    assert (await statistics).running == 1
    assert await IdempotencyStore.run_once(store, "k", work) == "ok"  # remembered
    assert runs == ["ran"]


async def test_a_workers_answer_is_never_dropped_by_a_bounded_pool_mailbox(
    node: asyncotp.Node,
) -> None:
    working, release = asyncio.Event(), asyncio.Event()
    workers: list[asyncotp.Pid] = []

    async def handler(job: object) -> object:
        workers.append(asyncotp.self_pid())
        working.set()
        await release.wait()
        return job

    dlq = await DeadLetterQueue.start()
    pool = await HeldPool.start(
        handler, dead_letters=dlq, mailbox_size=1, overflow=Overflow.DROP_NEWEST
    )
    job = asyncio.ensure_future(WorkerPool.run(pool, "job", timeout=30.0))
    await wait(working.wait())
    gate = Gate()
    send(pool, gate)
    await wait(gate.entered.wait())
    statistics = await started(WorkerPool.statistics(pool))  # the mailbox is full
    worker_ended = await watch(workers[0])
    release.set()
    assert await wait(worker_ended) is asyncotp.NORMAL  # it answered into the full mailbox
    gate.open()
    await statistics
    assert await job == "job"
    assert len(workers) == 1  # the answer arrived: the job did not run again


async def test_a_retry_is_never_dropped_by_a_bounded_pool_mailbox(
    node: asyncotp.Node, virtual_clock: VirtualClock
) -> None:
    failed = asyncio.Event()

    async def fails_once(job: object) -> object:
        if not failed.is_set():
            failed.set()
            raise ConnectionError("once")
        return job

    dlq = await DeadLetterQueue.start()
    pool = await HeldPool.start(
        fails_once,
        dead_letters=dlq,
        backoff=Backoff(initial=1.0, max=1.0, jitter=0.0),
        mailbox_size=3,
        overflow=Overflow.DROP_NEWEST,
    )
    job = asyncio.ensure_future(WorkerPool.run(pool, "job", timeout=30.0))
    await wait(failed.wait())
    assert (await WorkerPool.statistics(pool)).retrying == 1  # waiting out its 1 s
    gate = Gate()
    send(pool, gate)
    await wait(gate.entered.wait())
    statistics = [await started(WorkerPool.statistics(pool)) for _ in range(3)]  # full
    await virtual_clock.advance(1.0)  # the retry is due while the mailbox is full
    gate.open()
    await asyncio.gather(*statistics)
    assert await job == "job"


async def test_a_letter_put_back_is_never_dropped_by_a_bounded_queue_mailbox(
    node: asyncotp.Node,
) -> None:
    dlq, pool, letter = await a_letter(
        queue=HeldInterruptingQueue, pool=HeldPool, mailbox_size=1, overflow=Overflow.DROP_NEWEST
    )
    pool_gate, queue_gate, filler = Gate(), Gate(), Gate()
    send(pool, pool_gate)
    await wait(pool_gate.entered.wait())
    handed_over = asyncio.Event()
    on_answer.append(lambda _caller: handed_over.set())
    replay = asyncio.ensure_future(DeadLetterQueue.replay(dlq, letter.id))
    await wait(handed_over.wait())  # the queue took the letter out for the replay
    send(dlq, queue_gate)
    await wait(queue_gate.entered.wait())
    filler.open()  # it will not hold the queue, only tell when it has been handled
    send(dlq, filler)  # the queue's mailbox is full
    replay.cancel()  # the letter goes back, into the full mailbox
    with pytest.raises(asyncio.CancelledError):
        await replay
    queue_gate.open()
    await wait(filler.entered.wait())  # the queue has emptied its mailbox
    pool_gate.open()
    await still_there(dlq, pool, letter)


async def test_a_readiness_server_with_a_full_mailbox_fails_its_check_not_the_report(
    node: asyncotp.Node,
) -> None:
    server = await HeldReadiness.start(name="busy", mailbox_size=1)
    root = await Supervisor.start([])
    gate = Gate()
    send(server, gate)
    await wait(gate.entered.wait())
    send(server, "filler")  # the mailbox is full: the probe is refused
    report = await health_report(root)
    [check] = [check for check in report.checks if check.name == "busy"]
    assert check.ok is False
    assert "mailbox is full" in check.detail
    gate.open()


class Burst(SheddingServer):
    """Handles every request; a ``Gate`` (request or cast) holds it busy."""

    max_queue = None

    async def handle_request(self, request: Any, caller: asyncotp.Caller) -> Any:
        if isinstance(request, Gate):
            await request.pass_through()
            return "held"
        return ("done", request)

    async def handle_cast(self, request: Any) -> None:
        if isinstance(request, Gate):
            await request.pass_through()


async def test_a_small_drop_oldest_mailbox_never_drops_the_shedding_servers_next_token(
    node: asyncotp.Node,
) -> None:
    server = await Burst.start(mailbox_size=2, overflow=Overflow.DROP_OLDEST)
    first, second = Gate(), Gate()
    held = await started(call(server, first))
    await wait(first.entered.wait())
    waiting = await started(call(server, "waiting"))
    cast(server, second)  # behind it: a cast that holds the server once it is admitted
    first.open()
    # The server admitted "waiting", posted its "handle next" token behind the
    # cast, and holds on the cast: the token is the oldest message in its mailbox.
    await wait(second.entered.wait())
    burst = [await started(call(server, n)) for n in range(4)]  # twice what the mailbox holds
    second.open()
    assert await held == "held"
    assert await waiting == ("done", "waiting")
    for n, outcome in enumerate(await asyncio.gather(*burst, return_exceptions=True)):
        assert outcome == ("done", n) or isinstance(outcome, MailboxFull), outcome
    assert await call(server, "after") == ("done", "after")
