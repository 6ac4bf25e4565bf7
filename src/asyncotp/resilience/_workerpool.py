"""A worker pool: runs jobs in worker actors, retries failures, dead-letters
poison jobs.

A job that fails now and then should be tried again; a job that fails every
time (a "poison message": bad data, a bug) must not be retried forever, nor
crash its way up the supervision tree, nor vanish. ``WorkerPool`` runs jobs
in worker actors under its own ``DynamicSupervisor``, retries a failed job
up to ``max_attempts`` times with a growing delay (a ``Backoff``), and then
moves it to a ``DeadLetterQueue``, to be inspected, replayed once the cause
is fixed, or discarded.

Why the pool, not the supervisor, retries: a supervisor restarts children
to recover from *transient* faults, and gives up (taking its siblings down)
past its restart intensity. A poison job would exhaust that intensity and
bring the whole pool down. So each attempt runs as a ``TEMPORARY`` child
(the supervisor owns its process, its shutdown and its crash report), and
the pool decides about retries, job by job.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import random
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import attrs

from .._core import (
    INFINITY,
    NOREPLY,
    SHUTDOWN,
    ActorError,
    Backoff,
    Caller,
    ChildSpec,
    Down,
    JobFailed,
    MonitorRef,
    NoNodeError,
    NoProcess,
    Overloaded,
    Pid,
    Restart,
    ShedReason,
    ShutdownSetting,
    call,
    deliver_system,
    demonitor,
    monitor,
    registered_name,
    safe_repr,
    self_pid,
    spawn,
    stop,
    validate,
)
from ..actors import GenServer
from ..supervision import DynamicSupervisor, start_child
from ._deadletters import _Bury, _Resubmit

logger = logging.getLogger("asyncotp")

_DLQ_TIMEOUT: Final = 5.0
"""Seconds the pool waits for the dead-letter queue to take a letter."""

_DEFAULT_BACKOFF: Final = Backoff(initial=0.1, max=5.0)
"""The delays between attempts at a job when the pool is given none."""


@attrs.frozen
class PoolStats:
    """``WorkerPool.statistics``: jobs ``pending`` (waiting for a worker),
    ``running`` and ``retrying`` (waiting out a backoff delay) now; and
    ``submitted``, ``succeeded``, ``failed_attempts``, ``retried`` and
    ``dead`` (moved to the dead-letter queue) since the pool started."""

    pending: int
    running: int
    retrying: int
    submitted: int
    succeeded: int
    failed_attempts: int
    retried: int
    dead: int


@attrs.frozen
class _Submit:
    job: object
    wait: bool


@attrs.frozen
class _AttemptDone:
    job_id: int
    attempt: int
    result: object


@attrs.frozen
class _AttemptFailed:
    job_id: int
    attempt: int
    error: BaseException
    traceback: str


@attrs.frozen
class _Retry:
    job_id: int


class _PoolOp(enum.Enum):
    STATISTICS = "statistics"


@attrs.define(eq=False)
class _Job:
    id: int
    job: object
    attempts: int = 0
    errors: list[str] = attrs.field(factory=list)
    last_error: BaseException | None = None
    last_traceback: str = ""
    waiter: Caller | None = None
    worker: Pid | None = None
    ref: MonitorRef | None = None


async def _attempt(
    pool: Pid,
    job_id: int,
    attempt: int,
    handler: Callable[[Any], Awaitable[Any]],
    job: object,
    timeout: float | None,
) -> None:
    """One attempt at one job, in its own worker actor; reports to the pool."""
    try:
        if timeout is None:
            result = await handler(job)
        else:
            async with asyncio.timeout(timeout):
                result = await handler(job)
    except Exception as exc:  # noqa: BLE001 - any error of the job is a failed attempt
        text = "".join(traceback.format_exception(exc))
        deliver_system(pool, _AttemptFailed(job_id, attempt, exc, text))
        return
    # As system messages: a bound of the pool's mailbox must not drop an answer,
    # or the pool would take the worker's end for a failure and run the job again.
    deliver_system(pool, _AttemptDone(job_id, attempt, result))


async def _start_attempt(
    pool: Pid,
    job_id: int,
    attempt: int,
    handler: Callable[[Any], Awaitable[Any]],
    job: object,
    timeout: float | None,
) -> Pid:
    # Runs inside the dynamic supervisor: the worker is linked to it.
    return spawn(_attempt, pool, job_id, attempt, handler, job, timeout, link=True)


def _check_pool_settings(
    handler: object,
    dead_letters: object,
    size: object,
    max_attempts: object,
    backoff: object,
    attempt_timeout: object,
    max_pending: object,
    worker_shutdown: object,
    where: str,
) -> None:
    validate.async_function(
        handler, "handler", where=where, expected="an async function of the job"
    )
    validate.pid_or_name(
        dead_letters, "dead_letters", where=where, expected="the pid or name of a DeadLetterQueue"
    )
    validate.count(size, "size", where=where)
    validate.count(max_attempts, "max_attempts", where=where)
    checked = validate.instance(backoff, Backoff, "backoff", where=where)
    validate.duration(checked.initial, "backoff.initial", where=where, zero=True)
    validate.duration(checked.max, "backoff.max", where=where, zero=True)
    validate.duration(
        attempt_timeout, "attempt_timeout", where=where, optional=True, unlimited=True
    )
    validate.duration(
        worker_shutdown, "worker_shutdown", where=where, optional=True, unlimited=True
    )
    if max_pending is not None:
        validate.count(max_pending, "max_pending", where=where, minimum=0)


class WorkerPool(GenServer):
    """Runs jobs in worker actors, retries failures, and dead-letters poison jobs.

    Example::

        async def send_mail(job: Mail) -> str:
            return await smtp.send(job)         # raises on failure

        tree = [
            DeadLetterQueue.child_spec(name="dead_letters"),
            WorkerPool.child_spec(
                send_mail, dead_letters="dead_letters", name="mail",
                size=8, max_attempts=5, backoff=Backoff(initial=0.5, max=30.0),
            ),
        ]
        ...
        job_id = await WorkerPool.submit("mail", Mail(to, body))   # fire and forget
        message_id = await WorkerPool.run("mail", Mail(to, body))  # wait for the result

    Each attempt at a job runs ``await handler(job)`` in a new worker actor,
    a ``TEMPORARY`` child of the pool's own ``DynamicSupervisor``; at most
    ``size`` run at once, the others wait in submission order. An attempt
    fails when the handler raises (``attempt_timeout`` seconds, if set, make
    a hung attempt raise ``TimeoutError``) or when its worker ends without
    an answer (killed, say). A failed job is tried again after
    ``backoff.delay(n)`` seconds, up to ``max_attempts`` attempts in all;
    then it goes to the ``dead_letters`` queue with its attempts and the
    repr and traceback of its errors, and is logged (logger ``asyncotp``,
    WARNING). ``WorkerPool.run`` then raises ``JobFailed``.

    Client API (static methods): ``submit`` (returns the job id at once),
    ``run`` (waits for the result), ``statistics``. Beyond ``max_pending`` jobs
    waiting or retrying, ``submit`` and ``run`` raise ``Overloaded``.

    Shutdown: the pool stops its workers (each within ``worker_shutdown``
    seconds, then ``KILL``; None or ``math.inf``: no limit) and hands every
    job it has not finished, pending, retrying or interrupted, to the
    dead-letter queue, so that nothing is lost: replay them after the
    restart. Give the pool's child spec a ``shutdown`` longer than
    ``worker_shutdown``. A crash of the pool does the same. Jobs and
    results live in memory.

    When *not* to use it: for work that must survive the program (use a
    durable queue), or for one-off concurrent tasks whose failures the
    caller handles itself (spawn them).
    """

    async def init(
        self,
        handler: Callable[[Any], Awaitable[Any]],
        dead_letters: Pid | str,
        size: int = 4,
        max_attempts: int = 3,
        backoff: Backoff | None = None,
        attempt_timeout: float | None = None,
        max_pending: int | None = None,
        worker_shutdown: float = 5.0,
    ) -> None:
        backoff = _DEFAULT_BACKOFF if backoff is None else backoff
        _check_pool_settings(
            handler,
            dead_letters,
            size,
            max_attempts,
            backoff,
            attempt_timeout,
            max_pending,
            worker_shutdown,
            "WorkerPool",
        )
        self.handler = handler
        self.dead_letters = dead_letters
        self.size = size
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.attempt_timeout = validate.duration(
            attempt_timeout, "attempt_timeout", optional=True, unlimited=True
        )
        self.max_pending = max_pending
        shutdown = validate.duration(
            worker_shutdown, "worker_shutdown", optional=True, unlimited=True
        )
        self.worker_shutdown: ShutdownSetting = INFINITY if shutdown is None else shutdown
        self.workers = await DynamicSupervisor.start(link=True)
        self._pending: deque[_Job] = deque()
        self._running: dict[int, _Job] = {}
        self._retrying: dict[int, _Job] = {}
        self._by_ref: dict[MonitorRef, int] = {}
        self._next_id = 0
        self._submitted = 0
        self._succeeded = 0
        self._failed_attempts = 0
        self._retried = 0
        self._dead = 0

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        handler: Callable[[Any], Awaitable[Any]],
        *,
        dead_letters: Pid | str,
        size: int = 4,
        max_attempts: int = 3,
        backoff: Backoff | None = None,
        attempt_timeout: float | None = None,
        max_pending: int | None = None,
        worker_shutdown: float = 5.0,
        name: str | None = None,
        **opts: Any,
    ) -> Pid:
        """Start a pool running ``await handler(job)`` for each job.

        ``backoff`` defaults to ``Backoff(initial=0.1, max=5.0)``. ``opts``
        are ``GenServer.start``'s (``link``, ``mailbox_size``, ...).
        """
        _check_pool_settings(
            handler,
            dead_letters,
            size,
            max_attempts,
            _DEFAULT_BACKOFF if backoff is None else backoff,
            attempt_timeout,
            max_pending,
            worker_shutdown,
            "WorkerPool.start",
        )
        return await super().start(
            handler,
            dead_letters,
            size=size,
            max_attempts=max_attempts,
            backoff=backoff,
            attempt_timeout=attempt_timeout,
            max_pending=max_pending,
            worker_shutdown=worker_shutdown,
            name=name,
            **opts,
        )

    # -- client API ----------------------------------------------------------

    @staticmethod
    async def submit(pool: Pid | str, job: object, timeout: float | None = 5.0) -> int:
        """Queue ``job`` and return its id at once; ``Overloaded`` past ``max_pending``.

        A submission whose call times out (or is cancelled) before the pool
        has taken it is not queued, so that submitting again does not run
        the job twice.
        """
        timeout = validate.duration(
            timeout, "timeout", where="WorkerPool.submit", optional=True, zero=True, unlimited=True
        )
        job_id: int = await call(pool, _Submit(job, wait=False), timeout)
        return job_id

    @staticmethod
    async def run(pool: Pid | str, job: object, timeout: float | None = None) -> Any:
        """Run ``job`` and return its handler's result.

        Retries as the pool says; after the last failed attempt raises
        ``JobFailed`` (its ``__cause__`` is the last error; the job is in the
        dead-letter queue). By default waits as long as the attempts and
        their backoff delays take; past ``timeout``: ``CallTimeout`` (the
        job goes on).
        """
        timeout = validate.duration(
            timeout, "timeout", where="WorkerPool.run", optional=True, zero=True, unlimited=True
        )
        return await call(pool, _Submit(job, wait=True), timeout)

    @staticmethod
    async def statistics(pool: Pid | str, timeout: float | None = 5.0) -> PoolStats:
        """Counts of the pool's jobs."""
        timeout = validate.duration(
            timeout,
            "timeout",
            where="WorkerPool.statistics",
            optional=True,
            zero=True,
            unlimited=True,
        )
        result: PoolStats = await call(pool, _PoolOp.STATISTICS, timeout)
        return result

    # -- callbacks -----------------------------------------------------------

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if type(request) is _Resubmit:  # from DeadLetterQueue.replay
            request = _Submit(request.job, wait=False)
        if type(request) is _Submit:
            if not caller.waiting:
                return NOREPLY  # its call timed out or was cancelled: the job is not queued
            waiting = len(self._pending) + len(self._retrying)
            if self.max_pending is not None and waiting >= self.max_pending:
                caller.fail(
                    Overloaded(
                        f"worker pool {self_pid()!r} already has {waiting} jobs waiting "
                        f"(max_pending={self.max_pending}); the job {safe_repr(request.job)} was "
                        "not queued: retry later, or raise max_pending or size",
                        self_pid(),
                        ShedReason.QUEUE_FULL,
                    )
                )
                return NOREPLY
            self._next_id += 1
            self._submitted += 1
            job = _Job(self._next_id, request.job, waiter=caller if request.wait else None)
            self._pending.append(job)
            await self._dispatch()
            return NOREPLY if request.wait else job.id
        if request is _PoolOp.STATISTICS:
            return PoolStats(
                pending=len(self._pending),
                running=len(self._running),
                retrying=len(self._retrying),
                submitted=self._submitted,
                succeeded=self._succeeded,
                failed_attempts=self._failed_attempts,
                retried=self._retried,
                dead=self._dead,
            )
        raise TypeError(
            f"WorkerPool does not understand the call {safe_repr(request)}; use WorkerPool.submit, "
            "run or statistics"
        )

    async def handle_info(self, message: Any) -> None:
        kind = type(message)
        if kind is _AttemptDone:
            job = self._current(message.job_id, message.attempt)
            if job is not None:
                self._finish(job)
                self._succeeded += 1
                if job.waiter is not None:
                    job.waiter.reply(message.result)
                await self._dispatch()
        elif kind is _AttemptFailed:
            job = self._current(message.job_id, message.attempt)
            if job is not None:
                await self._failed(job, message.error, message.traceback)
        elif kind is Down:
            job_id = self._by_ref.pop(message.ref, None)
            job = self._running.get(job_id) if job_id is not None else None
            if job is not None and job.ref is message.ref:
                job.ref = None
                error = RuntimeError(
                    f"the worker {message.pid!r} of job {job.id} ended with reason "
                    f"{safe_repr(message.reason)} before it answered"
                )
                await self._failed(job, error, f"{safe_repr(error)}\n")
        elif kind is _Retry:
            job = self._retrying.pop(message.job_id, None)
            if job is not None:
                self._pending.append(job)
                await self._dispatch()
        else:
            await super().handle_info(message)

    async def terminate(self, reason: Any) -> None:
        with contextlib.suppress(NoProcess, NoNodeError):  # already gone: it ends with us
            await stop(self.workers, SHUTDOWN, timeout=None)
        unfinished = [*self._running.values(), *self._pending, *self._retrying.values()]
        self._running.clear()
        self._pending.clear()
        self._retrying.clear()
        for job in unfinished:
            text = (
                f"the pool {self_pid()!r} stopped with reason {safe_repr(reason)} before job "
                f"{job.id} finished"
            )
            job.errors.append(text)
            job.last_error = None
            job.last_traceback = text + "\n"
            await self._bury(
                job, f"was interrupted: the pool stopped with reason {safe_repr(reason)}"
            )

    # -- jobs ------------------------------------------------------------------

    def _current(self, job_id: int, attempt: int) -> _Job | None:
        job = self._running.get(job_id)
        if job is None or job.attempts != attempt:
            return None
        return job

    def _finish(self, job: _Job) -> None:
        del self._running[job.id]
        if job.ref is not None:
            self._by_ref.pop(job.ref, None)
            demonitor(job.ref, flush=True)
            job.ref = None
        job.worker = None

    async def _dispatch(self) -> None:
        """Start pending jobs while fewer than ``size`` run."""
        me = self_pid()
        while self._pending and len(self._running) < self.size:
            job = self._pending.popleft()
            job.attempts += 1
            spec = ChildSpec(
                ("job", job.id, job.attempts),
                functools.partial(
                    _start_attempt,
                    me,
                    job.id,
                    job.attempts,
                    self.handler,
                    job.job,
                    self.attempt_timeout,
                ),
                Restart.TEMPORARY,
                shutdown=self.worker_shutdown,
            )
            self._running[job.id] = job
            try:
                job.worker = await start_child(self.workers, spec)
            except ActorError as exc:
                await self._failed(job, exc, "".join(traceback.format_exception(exc)))
                continue
            job.ref = monitor(job.worker)
            self._by_ref[job.ref] = job.id

    async def _failed(self, job: _Job, error: BaseException, text: str) -> None:
        self._finish(job)
        self._failed_attempts += 1
        job.errors.append(safe_repr(error))
        job.last_error = error
        job.last_traceback = text
        if job.attempts >= self.max_attempts:
            await self._bury(job, f"failed {job.attempts} times")
        else:
            delay = self.backoff.delay(job.attempts - 1, random.random())
            self._retried += 1
            self._retrying[job.id] = job
            logger.info(
                "worker pool %r: job %d (%s) failed attempt %d of %d with %s; retrying in %.3f s",
                self_pid(),
                job.id,
                safe_repr(job.job),
                job.attempts,
                self.max_attempts,
                job.errors[-1],
                delay,
                extra={"event": "job_retry", "job_id": job.id, "attempt": job.attempts},
            )
            # A loop timer delivering a system message: a send_after into a bounded
            # mailbox could be dropped, and the job would wait for its retry for good.
            asyncio.get_running_loop().call_later(delay, deliver_system, self_pid(), _Retry(job.id))
        await self._dispatch()

    async def _bury(self, job: _Job, why: str) -> None:
        """Move a job to the dead-letter queue and tell whoever waits for it."""
        self._dead += 1
        me = self_pid()
        # Replay finds the pool by its name, so that a restarted pool gets it.
        pool: Pid | str = registered_name(me) or me
        bury = _Bury(
            job=job.job,
            pool=pool,
            attempts=job.attempts,
            error=job.errors[-1] if job.errors else "",
            traceback=job.last_traceback,
            errors=tuple(job.errors),
        )
        letter_id: int | None = None
        try:
            letter_id = await call(self.dead_letters, bury, _DLQ_TIMEOUT)
        except (ActorError, TimeoutError) as exc:
            logger.error(  # noqa: TRY400 - the job, not a traceback, is what matters here
                "worker pool %r: job %d (%s) %s, and the dead-letter queue %r could not take "
                "it (%r); the job is lost: %s",
                me,
                job.id,
                safe_repr(job.job),
                why,
                self.dead_letters,
                exc,
                safe_repr(bury),
                extra={"event": "job_lost", "job_id": job.id},
            )
        else:
            logger.warning(
                "worker pool %r: job %d (%s) %s (last error: %s); moved to the dead-letter "
                "queue %r as letter %d",
                me,
                job.id,
                safe_repr(job.job),
                why,
                bury.error,
                self.dead_letters,
                letter_id,
                extra={"event": "job_dead", "job_id": job.id, "letter_id": letter_id},
            )
        if job.waiter is not None:
            where = (
                f"moved to the dead-letter queue {self.dead_letters!r} as letter {letter_id}; "
                f"inspect it with DeadLetterQueue.inspect({self.dead_letters!r}, {letter_id}) "
                "and replay it with DeadLetterQueue.replay once the cause is fixed"
                if letter_id is not None
                else f"the dead-letter queue {self.dead_letters!r} could not take it"
            )
            error = JobFailed(
                f"job {job.id} ({safe_repr(job.job)}) in worker pool {me!r} {why} (last error: "
                f"{bury.error}); {where}",
                job.id,
                job.attempts,
                letter_id,
            )
            error.__cause__ = job.last_error
            job.waiter.fail(error)
