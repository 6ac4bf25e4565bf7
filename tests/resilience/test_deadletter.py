"""Dead letters: WorkerPool retries failing jobs with backoff, then moves them
to a DeadLetterQueue to inspect, replay or discard; undeliverable messages
can be observed.

Tests wait on results, events and monitors. Backoff delays are zero, or
elapse only when the test moves the loop's clock, never by sleeping.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import attrs
import pytest

from asyncotp import (
    KILL,
    Backoff,
    Cast,
    Node,
    NoProcess,
    Pid,
    Supervisor,
    cast,
    self_pid,
    send,
    send_after,
    send_exit,
    spawn,
    stop,
)
from asyncotp.resilience import (
    DeadLetter,
    DeadLetterNotFound,
    DeadLetterQueue,
    DeadLetterStats,
    JobFailed,
    Overloaded,
    PoolStats,
    Undeliverable,
    WorkerPool,
    observe_undeliverable,
)
from asyncotp.testing import VirtualClock, wait_for_exit
from tests.helpers import run_example

NO_DELAY = Backoff(initial=0.0, max=0.0, jitter=0.0)


# -- helpers -------------------------------------------------------------------


@attrs.define(eq=False)
class Jobs:
    """The handler: what a job does depends on the job.

    ``("ok", x)`` returns x; ``("flaky", n, x)`` fails its first n attempts,
    then returns x; ``("poison", x)`` always raises; ``("hold", x)`` waits
    until ``release(x)``. ``attempts`` counts the attempts at each job and
    ``started`` gets an event per attempt.
    """

    attempts: Counter[object] = attrs.field(factory=Counter)
    workers: dict[object, Pid] = attrs.field(factory=dict)
    events: dict[tuple[object, int], asyncio.Event] = attrs.field(factory=dict)
    gates: dict[object, asyncio.Event] = attrs.field(factory=dict)

    def started(self, job: object, attempt: int) -> asyncio.Event:
        return self.events.setdefault((job, attempt), asyncio.Event())

    def release(self, job: object) -> None:
        self.gates.setdefault(job, asyncio.Event()).set()

    async def __call__(self, job: Any) -> object:
        self.attempts[job] += 1
        self.workers[job] = self_pid()
        self.started(job, self.attempts[job]).set()
        match job:
            case ("ok", x):
                return x
            case ("flaky", n, x):
                if self.attempts[job] <= n:
                    raise ConnectionError(f"flaky attempt {self.attempts[job]}")
                return x
            case ("poison", x):
                raise ValueError(f"cannot parse {x!r}")
            case ("hold", x):
                await self.gates.setdefault(job, asyncio.Event()).wait()
                return x
        raise TypeError(f"unknown job {job!r}")


async def pool_with(jobs: Jobs, name: str = "pool", **settings: Any) -> tuple[Pid, Pid]:
    """A dead-letter queue and a pool using it (started in that order)."""
    settings.setdefault("backoff", NO_DELAY)
    dlq = await DeadLetterQueue.start(name="dead_letters")
    pool = await WorkerPool.start(jobs, dead_letters="dead_letters", name=name, **settings)
    return dlq, pool


# -- running and retrying ------------------------------------------------------------------


async def test_a_job_that_succeeds_runs_once_and_returns_its_result(node: Node) -> None:
    jobs = Jobs()
    _dlq, pool = await pool_with(jobs)
    assert await WorkerPool.run(pool, ("ok", 42)) == 42
    assert jobs.attempts[("ok", 42)] == 1
    stats = await WorkerPool.statistics(pool)
    assert (stats.submitted, stats.succeeded, stats.failed_attempts) == (1, 1, 0)


async def test_a_failing_job_is_retried_and_succeeds_on_a_later_attempt(node: Node) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, max_attempts=3)
    assert await WorkerPool.run(pool, ("flaky", 2, "sent")) == "sent"
    assert jobs.attempts[("flaky", 2, "sent")] == 3
    stats = await WorkerPool.statistics(pool)
    assert (stats.failed_attempts, stats.retried, stats.dead) == (2, 2, 0)
    assert await DeadLetterQueue.letters(dlq) == []


async def test_a_poison_job_lands_in_the_dead_letter_queue_after_exactly_n_attempts(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, max_attempts=4)
    with pytest.raises(JobFailed) as info:
        await WorkerPool.run(pool, ("poison", "{bad json"))
    error = info.value
    assert jobs.attempts[("poison", "{bad json")] == 4
    assert error.attempts == 4
    assert isinstance(error.__cause__, ValueError)
    assert "DeadLetterQueue.replay" in str(error)
    [letter] = await DeadLetterQueue.letters(dlq)
    assert letter.id == error.letter_id
    assert letter.job == ("poison", "{bad json")
    assert letter.pool == "pool"
    assert letter.attempts == 4
    assert letter.error == "ValueError(\"cannot parse '{bad json'\")"
    assert letter.errors == (letter.error,) * 4
    assert "Traceback (most recent call last)" in letter.traceback
    assert "raise ValueError" in letter.traceback
    assert await DeadLetterQueue.inspect(dlq, letter.id) == letter
    stats = await WorkerPool.statistics(pool)
    assert (stats.failed_attempts, stats.retried, stats.dead) == (4, 3, 1)
    assert any(getattr(r, "event", None) == "job_dead" for r in caplog.records)


async def test_a_submitted_poison_job_is_dead_lettered_without_anybody_waiting(
    node: Node,
) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, max_attempts=2)
    job_id = await WorkerPool.submit(pool, ("poison", 1))
    assert job_id == 1
    await jobs.started(("poison", 1), 2).wait()
    # The second (last) attempt has run; the letter is buried before the next
    # message to the pool is handled.
    assert (await WorkerPool.statistics(pool)).dead == 1
    [letter] = await DeadLetterQueue.letters(dlq)
    assert letter.attempts == 2


async def test_retries_wait_for_the_growing_backoff_delay(node: Node, clock: VirtualClock) -> None:
    jobs = Jobs()
    backoff = Backoff(initial=10.0, max=100.0, multiplier=2.0, jitter=0.0)
    _dlq, pool = await pool_with(jobs, max_attempts=3, backoff=backoff)
    job = ("flaky", 2, "done")
    result = asyncio.ensure_future(WorkerPool.run(pool, job))
    await jobs.started(job, 1).wait()
    assert (await WorkerPool.statistics(pool)).retrying == 1
    await clock.advance(9.0)
    assert (await WorkerPool.statistics(pool)).retrying == 1  # not yet: 10 s after attempt 1
    await clock.advance(1.5)
    await jobs.started(job, 2).wait()
    await clock.advance(15.0)
    assert (await WorkerPool.statistics(pool)).retrying == 1  # not yet: 20 s after attempt 2
    await clock.advance(5.5)
    assert await result == "done"


async def test_a_worker_that_is_killed_counts_as_a_failed_attempt(node: Node) -> None:
    jobs = Jobs()
    _dlq, pool = await pool_with(jobs, max_attempts=2)
    job = ("hold", "x")
    result = asyncio.ensure_future(WorkerPool.run(pool, job))
    await jobs.started(job, 1).wait()
    jobs.release(job)  # the second attempt will not wait
    send_exit(jobs.workers[job], KILL)
    assert await result == "x"
    assert jobs.attempts[job] == 2
    assert (await WorkerPool.statistics(pool)).failed_attempts == 1


async def test_an_attempt_that_hangs_past_attempt_timeout_fails(
    node: Node, clock: VirtualClock
) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, max_attempts=1, attempt_timeout=30.0)
    job = ("hold", "forever")
    result = asyncio.ensure_future(WorkerPool.run(pool, job))
    await jobs.started(job, 1).wait()
    await clock.advance(31.0)
    with pytest.raises(JobFailed) as info:
        await result
    assert isinstance(info.value.__cause__, TimeoutError)
    [letter] = await DeadLetterQueue.letters(dlq)
    assert letter.error.startswith("TimeoutError")


async def test_at_most_size_jobs_run_at_once_and_the_rest_wait_in_order(node: Node) -> None:
    jobs = Jobs()
    _dlq, pool = await pool_with(jobs, size=2)
    held = [("hold", i) for i in range(4)]
    results = [asyncio.ensure_future(WorkerPool.run(pool, job)) for job in held]
    await jobs.started(held[0], 1).wait()
    await jobs.started(held[1], 1).wait()
    stats = await WorkerPool.statistics(pool)
    assert (stats.running, stats.pending) == (2, 2)
    jobs.release(held[0])
    await jobs.started(held[2], 1).wait()
    assert not jobs.started(held[3], 1).is_set()
    for job in held[1:]:
        jobs.release(job)
    assert await asyncio.gather(*results) == [0, 1, 2, 3]


async def test_submit_beyond_max_pending_raises_overloaded(node: Node) -> None:
    jobs = Jobs()
    _dlq, pool = await pool_with(jobs, size=1, max_pending=1)
    await WorkerPool.submit(pool, ("hold", 1))  # running
    await WorkerPool.submit(pool, ("hold", 2))  # pending
    with pytest.raises(Overloaded, match="max_pending=1"):
        await WorkerPool.submit(pool, ("hold", 3))
    jobs.release(("hold", 1))
    jobs.release(("hold", 2))


# -- the dead-letter queue --------------------------------------------------------------


async def test_a_replayed_letter_runs_again_with_fresh_attempts_and_leaves_the_queue(
    node: Node,
) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, max_attempts=2)
    job = ("flaky", 3, "finally")  # fails 3 times: dead after 2, fine on the 3rd + 1
    with pytest.raises(JobFailed):
        await WorkerPool.run(pool, job)
    [letter] = await DeadLetterQueue.letters(dlq)
    new_id = await DeadLetterQueue.replay(dlq, letter.id)
    assert new_id == 2
    await jobs.started(job, 4).wait()
    assert await DeadLetterQueue.letters(dlq) == []
    stats = await DeadLetterQueue.statistics(dlq)
    assert (stats.buried, stats.replayed, stats.letters) == (1, 1, 0)
    assert (await WorkerPool.statistics(pool)).succeeded == 1


async def test_replay_all_sends_every_letter_back_oldest_first(node: Node) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, max_attempts=1)
    for x in ("a", "b"):
        with pytest.raises(JobFailed):
            await WorkerPool.run(pool, ("flaky", 1, x))
    assert await DeadLetterQueue.replay_all(dlq) == [3, 4]
    await jobs.started(("flaky", 1, "b"), 2).wait()
    assert await DeadLetterQueue.letters(dlq) == []


async def test_replaying_to_a_pool_that_is_gone_keeps_the_letter(node: Node) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, max_attempts=1)
    with pytest.raises(JobFailed):
        await WorkerPool.run(pool, ("poison", 1))
    [letter] = await DeadLetterQueue.letters(dlq)
    await stop(pool)
    with pytest.raises(NoProcess):
        await DeadLetterQueue.replay(dlq, letter.id)
    assert await DeadLetterQueue.letters(dlq) == [letter]
    assert (await DeadLetterQueue.statistics(dlq)).replayed == 0


async def test_discard_removes_a_letter_and_unknown_ids_raise_dead_letter_not_found(
    node: Node,
) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, max_attempts=1)
    with pytest.raises(JobFailed):
        await WorkerPool.run(pool, ("poison", 1))
    [letter] = await DeadLetterQueue.letters(dlq)
    assert await DeadLetterQueue.discard(dlq, letter.id) == letter
    with pytest.raises(DeadLetterNotFound) as info:
        await DeadLetterQueue.inspect(dlq, letter.id)
    assert isinstance(info.value, LookupError)
    assert info.value.letter_id == letter.id
    with pytest.raises(DeadLetterNotFound):
        await DeadLetterQueue.replay(dlq, letter.id)
    assert (await DeadLetterQueue.statistics(dlq)).discarded == 1


async def test_a_full_dead_letter_queue_drops_its_oldest_letters_and_counts_them(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = Jobs()
    await DeadLetterQueue.start(max_letters=2, name="dead_letters")
    pool = await WorkerPool.start(jobs, dead_letters="dead_letters", max_attempts=1)
    for x in range(3):
        with pytest.raises(JobFailed):
            await WorkerPool.run(pool, ("poison", x))
    letters = await DeadLetterQueue.letters("dead_letters")
    assert [letter.job for letter in letters] == [("poison", 1), ("poison", 2)]
    assert (await DeadLetterQueue.statistics("dead_letters")).dropped == 1


async def test_a_stopping_pool_hands_its_unfinished_jobs_to_the_dead_letter_queue(
    node: Node,
) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, size=1)
    await WorkerPool.submit(pool, ("hold", "running"))
    await WorkerPool.submit(pool, ("ok", "pending"))
    await jobs.started(("hold", "running"), 1).wait()
    await stop(pool)
    letters = await DeadLetterQueue.letters(dlq)
    assert [letter.job for letter in letters] == [("hold", "running"), ("ok", "pending")]
    assert [letter.attempts for letter in letters] == [1, 0]
    assert "stopped with reason NORMAL" in letters[0].error


async def test_a_pool_whose_dead_letter_queue_is_gone_logs_the_lost_job(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = Jobs()
    dlq, pool = await pool_with(jobs, max_attempts=1)
    await stop(dlq)
    with pytest.raises(JobFailed, match="could not take it") as info:
        await WorkerPool.run(pool, ("poison", 1))
    assert info.value.letter_id is None
    assert any(getattr(r, "event", None) == "job_lost" for r in caplog.records)


async def test_the_pool_is_supervisable_and_its_workers_stop_with_it(node: Node) -> None:
    jobs = Jobs()
    root = await Supervisor.start(
        [
            DeadLetterQueue.child_spec(name="dead_letters"),
            WorkerPool.child_spec(jobs, dead_letters="dead_letters", name="pool", shutdown=10.0),
        ]
    )
    await WorkerPool.submit("pool", ("hold", 1))
    await jobs.started(("hold", 1), 1).wait()
    worker = jobs.workers[("hold", 1)]
    await stop(root)
    assert not node.procs  # the pool, its supervisor and its worker are all gone
    assert worker not in node.procs


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"size": 0}, ValueError, "size must be an int >= 1, not 0"),
        ({"max_attempts": 0}, ValueError, "max_attempts must be an int >= 1, not 0"),
        ({"backoff": 1.0}, TypeError, "backoff must be a Backoff, not 1.0"),
        ({"attempt_timeout": 0}, ValueError, "attempt_timeout must be None or seconds > 0"),
        ({"max_pending": -1}, ValueError, "max_pending must be an int >= 0, not -1"),
        ({"dead_letters": 3}, TypeError, "dead_letters must be the pid or name"),
    ],
)
async def test_bad_pool_settings_are_refused_naming_the_setting(
    node: Node, settings: dict[str, Any], error: type[Exception], message: str
) -> None:
    settings.setdefault("dead_letters", "dead_letters")
    with pytest.raises(error, match=message):
        await WorkerPool.start(Jobs(), **settings)


async def test_a_handler_must_be_an_async_function(node: Node) -> None:
    with pytest.raises(TypeError, match="handler must be an async function"):
        await WorkerPool.start(print, dead_letters="dead_letters")  # type: ignore[arg-type]


def test_dead_letters_repr_as_python() -> None:
    letter = DeadLetter(1, ("job", 1), "pool", 3, "ValueError('x')", "Traceback...", ())
    assert eval(repr(letter), {"DeadLetter": DeadLetter}) == letter
    stats = DeadLetterStats(1, 2, 3, 4, 5, 6, 7)
    assert eval(repr(stats), {"DeadLetterStats": DeadLetterStats}) == stats
    pool_stats = PoolStats(1, 2, 3, 4, 5, 6, 7, 8)
    assert eval(repr(pool_stats), {"PoolStats": PoolStats}) == pool_stats


# -- undeliverable messages -------------------------------------------------------------


async def dead_pid() -> Pid:
    """The pid of an actor that has ended."""

    async def brief() -> None:
        pass

    pid = spawn(brief)
    await wait_for_exit(pid)
    return pid


def hook(node: Node) -> object:
    """The node's dead-letter hook (read through a call: no type narrowing)."""
    return node.on_dead_letter


async def test_undeliverable_messages_are_not_observed_unless_opted_in(node: Node) -> None:
    assert node.on_dead_letter is None
    send(await dead_pid(), "lost")  # dropped silently, as in Erlang


async def test_observed_undeliverable_messages_are_counted_and_recorded(node: Node) -> None:
    dlq = await DeadLetterQueue.start()
    dead = await dead_pid()
    with observe_undeliverable(dlq) as observer:
        assert node.on_dead_letter is observer
        send(dead, "hello")
        cast(dead, "a cast")
        send_after(0, dead, "a timer")
        await receive_all_timers()
        records = await DeadLetterQueue.undeliverable(dlq)
    assert hook(node) is None
    assert [(r.pid, r.message) for r in records] == [
        (dead, "hello"),
        (dead, Cast("a cast")),
        (dead, "a timer"),
    ]
    assert all(isinstance(r, Undeliverable) for r in records)
    assert (observer.forwarded, observer.lost, observer.seen) == (3, 0, 3)
    assert (await DeadLetterQueue.statistics(dlq)).undeliverable_seen == 3
    send(dead, "after close")
    assert observer.seen == 3


async def receive_all_timers() -> None:
    """Wait until a zero-delay timer set before has fired (timers fire in order)."""
    fired = asyncio.Event()
    asyncio.get_running_loop().call_later(0, fired.set)
    await fired.wait()


async def test_an_observer_whose_destination_is_dead_counts_the_message_lost_without_recursing(
    node: Node,
) -> None:
    dead = await dead_pid()
    observer = observe_undeliverable(dead)
    try:
        send(dead, "nobody hears this")
    finally:
        observer.close()
    assert (observer.forwarded, observer.lost) == (0, 1)


async def test_observers_chain_and_each_close_restores_the_one_before(node: Node) -> None:
    first_dlq = await DeadLetterQueue.start()
    second_dlq = await DeadLetterQueue.start()
    dead = await dead_pid()
    first = observe_undeliverable(first_dlq)
    second = observe_undeliverable(second_dlq)
    send(dead, "seen by both")
    second.close()
    assert hook(node) is first
    first.close()
    assert hook(node) is None
    assert first.forwarded == second.forwarded == 1


# -- the example ---------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_dead_letters_example_dead_letters_the_poison_job_and_replays_it() -> None:
    result = run_example("dead_letters.py", timeout=50)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "after exactly 3 attempts" in out
    assert "replayed" in out
    assert "undeliverable" in out
