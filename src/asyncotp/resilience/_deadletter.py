"""Dead letters and poison messages: a retrying worker pool and a dead-letter queue.

A job that fails now and then should be tried again; a job that fails every
time (a "poison message": bad data, a bug) must not be retried forever, nor
crash its way up the supervision tree, nor vanish. ``WorkerPool`` runs jobs
in worker actors under its own ``DynamicSupervisor``, retries a failed job
up to ``max_attempts`` times with a growing delay (a ``Backoff``), and then
moves it to a ``DeadLetterQueue``: an actor that keeps failed jobs with
their attempts and last error, to be inspected, replayed once the cause is
fixed, or discarded.

Why the pool, not the supervisor, retries: a supervisor restarts children
to recover from *transient* faults, and gives up (taking its siblings down)
past its restart intensity. A poison job would exhaust that intensity and
bring the whole pool down. So each attempt runs as a ``TEMPORARY`` child
(the supervisor owns its process, its shutdown and its crash report), and
the pool decides about retries, job by job.

Messages sent to actors that are no longer alive are "undeliverable" and
dropped silently, as in Erlang. ``observe_undeliverable(dlq)`` opts in to
seeing them: they are counted and recorded by the dead-letter queue.
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
    NOREPLY,
    SHUTDOWN,
    ActorError,
    Backoff,
    Caller,
    ChildSpec,
    Down,
    MailboxFull,
    MonitorRef,
    Node,
    NoNodeError,
    NoProcess,
    Pid,
    Restart,
    call,
    current_node,
    dead_letter_hook,
    demonitor,
    is_alive,
    is_async_callable,
    monitor,
    now,
    process_info,
    self_pid,
    send,
    send_after,
    set_dead_letter_hook,
    spawn,
    stop,
    whereis,
)
from ..actors import (
    GenServer,
)
from ..supervision import (
    DynamicSupervisor,
    start_child,
)
from ._shedding import Overloaded, ShedReason

logger = logging.getLogger("asyncotp")

_DLQ_TIMEOUT: Final = 5.0
"""Seconds the pool waits for the dead-letter queue to take a letter."""

_DEFAULT_BACKOFF: Final = Backoff(initial=0.1, max=5.0)
"""The delays between attempts at a job when the pool is given none."""


# -- values and errors ---------------------------------------------------------


@attrs.frozen
class DeadLetter:
    """A job that failed every attempt, as the dead-letter queue keeps it.

    ``id`` numbers the letter in its queue; ``pool`` is where the job ran
    (its registered name, or its pid) and where ``replay`` sends it back;
    ``attempts`` is how many times it ran; ``error`` and ``traceback`` are
    the ``repr`` and the formatted traceback of the last error, and
    ``errors`` the ``repr`` of the error of every attempt, in order.
    ``dead_at`` is the loop time it was buried at.
    """

    id: int
    job: object
    pool: Pid | str
    attempts: int
    error: str
    traceback: str
    errors: tuple[str, ...] = ()
    dead_at: float = 0.0


@attrs.frozen
class Undeliverable:
    """A message that was sent to an actor no longer alive.

    ``pid`` is the dead destination, ``message`` what was sent (a ``Cast``
    for a cast), ``at`` the loop time. See ``observe_undeliverable``.
    """

    pid: Pid
    message: object
    at: float


@attrs.frozen
class DeadLetterStats:
    """``DeadLetterQueue.stats``: ``letters`` kept now; ``buried`` ever
    received; ``replayed`` and ``discarded`` taken out; ``dropped`` letters
    forgotten because the queue was full (oldest first); ``undeliverable``
    messages recorded now and ``undeliverable_seen`` ever received."""

    letters: int
    buried: int
    replayed: int
    discarded: int
    dropped: int
    undeliverable: int
    undeliverable_seen: int


@attrs.frozen
class PoolStats:
    """``WorkerPool.stats``: jobs ``pending`` (waiting for a worker),
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


class JobFailed(ActorError):
    """A job failed every attempt and was moved to the dead-letter queue.

    Raised by ``WorkerPool.run``. ``job_id`` is the job's number in the pool,
    ``attempts`` how many times it ran, ``letter_id`` its id in the
    dead-letter queue (None if the queue could not take it); ``__cause__``
    is the last attempt's error.
    """

    def __init__(
        self,
        message: str,
        job_id: int | None = None,
        attempts: int = 0,
        letter_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.attempts = attempts
        self.letter_id = letter_id


class DeadLetterNotFound(ActorError, LookupError):
    """The dead-letter queue has no letter with that id (replayed, discarded,
    dropped, or never there). ``letter_id`` is the id asked for."""

    def __init__(self, message: str, letter_id: int | None = None) -> None:
        super().__init__(message)
        self.letter_id = letter_id


# -- the dead-letter queue ---------------------------------------------------------------


class _Op(enum.Enum):
    LIST = "letters"
    GET = "inspect"
    TAKE = "take"
    RESTORE = "restore"
    DISCARD = "discard"
    UNDELIVERABLE = "undeliverable"
    STATS = "stats"


@attrs.frozen
class _Bury:
    job: object
    pool: Pid | str
    attempts: int
    error: str
    traceback: str
    errors: tuple[str, ...]


@attrs.frozen
class _Refusal:
    """A reply that carries an error for the client function to raise."""

    error: BaseException


def _unwrap(reply: object) -> Any:
    if type(reply) is _Refusal:
        raise reply.error
    return reply


def _check_count(value: object, name: str, where: str, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{where}: {name} must be an int >= {minimum}, not {value!r}")


class DeadLetterQueue(GenServer):
    """Keeps the jobs that failed every attempt, to inspect, replay or discard.

    Example::

        dlq = await DeadLetterQueue.start(name="dead_letters")
        pool = await WorkerPool.start(send_mail, dead_letters="dead_letters", name="mail")
        ...
        for letter in await DeadLetterQueue.letters("dead_letters"):
            print(letter.id, letter.job, letter.attempts, letter.error)
            print(letter.traceback)
        await DeadLetterQueue.replay("dead_letters", letter.id)   # once fixed

    Client API (static methods, like ``Agent``'s): ``letters`` (all, oldest
    first), ``inspect`` (one, by id), ``replay`` (send a job back to its pool
    for a fresh set of attempts; the letter leaves the queue), ``replay_all``,
    ``discard``, ``undeliverable`` (messages recorded by
    ``observe_undeliverable``) and ``stats``.

    Settings: ``max_letters`` (default 10 000; beyond it the oldest letter
    is dropped and counted) and ``max_undeliverable`` (default 1 000, the
    same for undeliverable messages).

    How to supervise it: ``DeadLetterQueue.child_spec(name=...)``, started
    *before* the pools that use it, so that it outlives them at shutdown (a
    pool hands its unfinished jobs to it when it stops). The letters live in
    memory: a restarted queue is empty, so write them somewhere durable
    (from ``letters``) if they must survive the program.
    """

    async def init(self, max_letters: int = 10_000, max_undeliverable: int = 1_000) -> None:
        _check_count(max_letters, "max_letters", "DeadLetterQueue")
        _check_count(max_undeliverable, "max_undeliverable", "DeadLetterQueue")
        self.max_letters = max_letters
        self._letters: dict[int, DeadLetter] = {}
        self._undeliverable: deque[Undeliverable] = deque(maxlen=max_undeliverable)
        self._next_id = 0
        self._buried = 0
        self._replayed = 0
        self._discarded = 0
        self._dropped = 0
        self._seen = 0

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        max_letters: int = 10_000,
        max_undeliverable: int = 1_000,
        name: str | None = None,
        **opts: Any,
    ) -> Pid:
        """Start an empty dead-letter queue; ``opts`` are ``GenServer.start``'s."""
        _check_count(max_letters, "max_letters", "DeadLetterQueue.start")
        _check_count(max_undeliverable, "max_undeliverable", "DeadLetterQueue.start")
        return await super().start(
            max_letters=max_letters, max_undeliverable=max_undeliverable, name=name, **opts
        )

    # -- client API ----------------------------------------------------------

    @staticmethod
    async def letters(dlq: Pid | str, timeout: float | None = 5.0) -> list[DeadLetter]:
        """Every letter, oldest first."""
        result: list[DeadLetter] = _unwrap(await call(dlq, (_Op.LIST,), timeout))
        return result

    @staticmethod
    async def inspect(dlq: Pid | str, letter_id: int, timeout: float | None = 5.0) -> DeadLetter:
        """One letter; ``DeadLetterNotFound`` if it is not there."""
        result: DeadLetter = _unwrap(await call(dlq, (_Op.GET, letter_id), timeout))
        return result

    @staticmethod
    async def replay(dlq: Pid | str, letter_id: int, timeout: float | None = 5.0) -> int:
        """Send the letter's job back to its pool; return its new job id.

        The job gets a fresh set of attempts, and the letter leaves the
        queue. If the pool refuses it or is gone, the letter stays (and the
        pool's error is raised). ``DeadLetterNotFound`` for an unknown id.
        """
        letter: DeadLetter = _unwrap(await call(dlq, (_Op.TAKE, letter_id), timeout))
        try:
            job_id = await WorkerPool.submit(letter.pool, letter.job, timeout=timeout)
        except BaseException:
            await call(dlq, (_Op.RESTORE, letter), timeout)
            raise
        return job_id

    @staticmethod
    async def replay_all(dlq: Pid | str, timeout: float | None = 5.0) -> list[int]:
        """Replay every letter, oldest first; return the new job ids.

        Stops at the first letter its pool refuses (that letter and the
        later ones stay) and raises the pool's error.
        """
        return [
            await DeadLetterQueue.replay(dlq, letter.id, timeout)
            for letter in await DeadLetterQueue.letters(dlq, timeout)
        ]

    @staticmethod
    async def discard(dlq: Pid | str, letter_id: int, timeout: float | None = 5.0) -> DeadLetter:
        """Remove a letter for good and return it."""
        result: DeadLetter = _unwrap(await call(dlq, (_Op.DISCARD, letter_id), timeout))
        return result

    @staticmethod
    async def undeliverable(dlq: Pid | str, timeout: float | None = 5.0) -> list[Undeliverable]:
        """The undeliverable messages recorded (see ``observe_undeliverable``)."""
        result: list[Undeliverable] = _unwrap(await call(dlq, (_Op.UNDELIVERABLE,), timeout))
        return result

    @staticmethod
    async def stats(dlq: Pid | str, timeout: float | None = 5.0) -> DeadLetterStats:
        """Counts of letters and undeliverable messages."""
        result: DeadLetterStats = _unwrap(await call(dlq, (_Op.STATS,), timeout))
        return result

    # -- callbacks -----------------------------------------------------------

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if type(request) is _Bury:
            return self._bury(request)
        if not (isinstance(request, tuple) and request and isinstance(request[0], _Op)):
            raise TypeError(
                f"DeadLetterQueue does not understand the call {request!r}; use its static "
                "methods (letters, inspect, replay, discard, undeliverable, stats)"
            )
        op = request[0]
        if op is _Op.LIST:
            return list(self._letters.values())
        if op is _Op.UNDELIVERABLE:
            return list(self._undeliverable)
        if op is _Op.STATS:
            return DeadLetterStats(
                letters=len(self._letters),
                buried=self._buried,
                replayed=self._replayed,
                discarded=self._discarded,
                dropped=self._dropped,
                undeliverable=len(self._undeliverable),
                undeliverable_seen=self._seen,
            )
        if op is _Op.RESTORE:
            letter: DeadLetter = request[1]
            self._letters[letter.id] = letter
            self._letters = dict(sorted(self._letters.items()))
            self._replayed -= 1
            return None
        letter_id = request[1]
        found = self._letters.get(letter_id)
        if found is None:
            return _Refusal(
                DeadLetterNotFound(
                    f"dead-letter queue {self_pid()!r} has no letter {letter_id!r} (it was "
                    "replayed, discarded or dropped); DeadLetterQueue.letters lists those kept",
                    letter_id,
                )
            )
        if op is _Op.GET:
            return found
        del self._letters[letter_id]
        if op is _Op.TAKE:
            self._replayed += 1
        else:
            self._discarded += 1
        return found

    async def handle_info(self, message: Any) -> None:
        if type(message) is Undeliverable:
            self._seen += 1
            self._undeliverable.append(message)
            return
        await super().handle_info(message)

    def _bury(self, request: _Bury) -> int:
        self._next_id += 1
        letter = DeadLetter(
            id=self._next_id,
            job=request.job,
            pool=request.pool,
            attempts=request.attempts,
            error=request.error,
            traceback=request.traceback,
            errors=request.errors,
            dead_at=now(),
        )
        self._letters[letter.id] = letter
        self._buried += 1
        while len(self._letters) > self.max_letters:
            oldest = next(iter(self._letters))
            dropped = self._letters.pop(oldest)
            self._dropped += 1
            logger.error(
                "dead-letter queue %r is full (%d letters); dropped the oldest: %r",
                self_pid(),
                self.max_letters,
                dropped,
            )
        return letter.id


# -- the worker pool ----------------------------------------------------------------


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
    STATS = "stats"


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
        send(pool, _AttemptFailed(job_id, attempt, exc, text))
        return
    send(pool, _AttemptDone(job_id, attempt, result))


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
    if not is_async_callable(handler):
        raise TypeError(f"{where}: handler must be an async function of the job, not {handler!r}")
    if type(dead_letters) is not Pid and not (isinstance(dead_letters, str) and dead_letters):
        raise TypeError(
            f"{where}: dead_letters must be the pid or name of a DeadLetterQueue, "
            f"not {dead_letters!r}"
        )
    _check_count(size, "size", where)
    _check_count(max_attempts, "max_attempts", where)
    if not isinstance(backoff, Backoff):
        raise TypeError(f"{where}: backoff must be a Backoff, not {backoff!r}")
    for name, value in (("attempt_timeout", attempt_timeout), ("worker_shutdown", worker_shutdown)):
        if value is not None and (
            not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0
        ):
            raise ValueError(f"{where}: {name} must be None or seconds > 0, not {value!r}")
    if max_pending is not None:
        _check_count(max_pending, "max_pending", where, minimum=0)


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
    ``run`` (waits for the result), ``stats``. Beyond ``max_pending`` jobs
    waiting or retrying, ``submit`` and ``run`` raise ``Overloaded``.

    Shutdown: the pool stops its workers (each within ``worker_shutdown``
    seconds, then ``KILL``) and hands every job it has not finished, pending,
    retrying or interrupted, to the dead-letter queue, so that nothing is
    lost: replay them after the restart. Give the pool's child spec a
    ``shutdown`` longer than ``worker_shutdown``. A crash of the pool does
    the same. Jobs and results live in memory.

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
        self.attempt_timeout = attempt_timeout
        self.max_pending = max_pending
        self.worker_shutdown = worker_shutdown
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
        """Queue ``job`` and return its id at once; ``Overloaded`` past ``max_pending``."""
        job_id: int = _unwrap(await call(pool, _Submit(job, wait=False), timeout))
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
        return _unwrap(await call(pool, _Submit(job, wait=True), timeout))

    @staticmethod
    async def stats(pool: Pid | str, timeout: float | None = 5.0) -> PoolStats:
        """Counts of the pool's jobs."""
        result: PoolStats = _unwrap(await call(pool, _PoolOp.STATS, timeout))
        return result

    # -- callbacks -----------------------------------------------------------

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if type(request) is _Submit:
            waiting = len(self._pending) + len(self._retrying)
            if self.max_pending is not None and waiting >= self.max_pending:
                return _Refusal(
                    Overloaded(
                        f"worker pool {self_pid()!r} already has {waiting} jobs waiting "
                        f"(max_pending={self.max_pending}); the job {request.job!r} was not "
                        "queued: retry later, or raise max_pending or size",
                        self_pid(),
                        ShedReason.QUEUE_FULL,
                    )
                )
            self._next_id += 1
            self._submitted += 1
            job = _Job(self._next_id, request.job, waiter=caller if request.wait else None)
            self._pending.append(job)
            await self._dispatch()
            return NOREPLY if request.wait else job.id
        if request is _PoolOp.STATS:
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
            f"WorkerPool does not understand the call {request!r}; use WorkerPool.submit, "
            "run or stats"
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
                    f"{message.reason!r} before it answered"
                )
                await self._failed(job, error, f"{error!r}\n")
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
                f"the pool {self_pid()!r} stopped with reason {reason!r} before job "
                f"{job.id} finished"
            )
            job.errors.append(text)
            job.last_error = None
            job.last_traceback = text + "\n"
            await self._bury(job, f"was interrupted: the pool stopped with reason {reason!r}")

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
        job.errors.append(repr(error))
        job.last_error = error
        job.last_traceback = text
        if job.attempts >= self.max_attempts:
            await self._bury(job, f"failed {job.attempts} times")
        else:
            delay = self.backoff.delay(job.attempts - 1, random.random())
            self._retried += 1
            self._retrying[job.id] = job
            logger.info(
                "worker pool %r: job %d (%r) failed attempt %d of %d with %r; retrying in %.3f s",
                self_pid(),
                job.id,
                job.job,
                job.attempts,
                self.max_attempts,
                error,
                delay,
                extra={"event": "job_retry", "job_id": job.id, "attempt": job.attempts},
            )
            send_after(delay, self_pid(), _Retry(job.id))
        await self._dispatch()

    async def _bury(self, job: _Job, why: str) -> None:
        """Move a job to the dead-letter queue and tell whoever waits for it."""
        self._dead += 1
        me = self_pid()
        info = process_info(me)
        # Replay finds the pool by its name, so that a restarted pool gets it.
        pool: Pid | str = info.name if info is not None and info.name is not None else me
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
                "worker pool %r: job %d (%r) %s, and the dead-letter queue %r could not take "
                "it (%r); the job is lost: %r",
                me,
                job.id,
                job.job,
                why,
                self.dead_letters,
                exc,
                bury,
                extra={"event": "job_lost", "job_id": job.id},
            )
        else:
            logger.warning(
                "worker pool %r: job %d (%r) %s (last error: %s); moved to the dead-letter "
                "queue %r as letter %d",
                me,
                job.id,
                job.job,
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
                f"job {job.id} ({job.job!r}) in worker pool {me!r} {why} (last error: "
                f"{bury.error}); {where}",
                job.id,
                job.attempts,
                letter_id,
            )
            error.__cause__ = job.last_error
            job.waiter.reply(_Refusal(error))


# -- undeliverable messages ----------------------------------------------------------


@attrs.define(eq=False)
class UndeliverableObserver:
    """An installed ``observe_undeliverable``: counts, and ``close()`` to stop.

    ``forwarded`` messages reached the destination; ``lost`` ones could not
    (the destination was dead, unknown or full). Usable as a context
    manager.
    """

    dest: Pid | str
    node: Node
    previous: Callable[[Pid, object], None] | None
    forwarded: int = 0
    lost: int = 0
    closed: bool = False
    _busy: bool = False

    @property
    def seen(self) -> int:
        """Every undeliverable message observed."""
        return self.forwarded + self.lost

    def __call__(self, pid: Pid, message: object) -> None:
        previous = self.previous
        if previous is not None:
            previous(pid, message)
        if self.closed:
            return
        if self._busy:  # the destination itself is dead: do not recurse
            self.lost += 1
            return
        dest = self.dest
        target = dest if type(dest) is Pid else whereis(dest)
        if target is None or not is_alive(target):
            self.lost += 1
            return
        self._busy = True
        try:
            send(target, Undeliverable(pid, message, now()))
        except (MailboxFull, NoProcess, NoNodeError):
            self.lost += 1
        else:
            self.forwarded += 1
        finally:
            self._busy = False

    def close(self) -> None:
        """Stop observing (and restore the hook that was there before)."""
        self.closed = True
        if dead_letter_hook(self.node) is self:
            set_dead_letter_hook(self.node, self.previous)

    def __enter__(self) -> UndeliverableObserver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def observe_undeliverable(dest: Pid | str) -> UndeliverableObserver:
    """Opt in to seeing messages sent to actors that are no longer alive.

    Every such message (from ``send``, ``cast`` or a timer) is forwarded to
    ``dest`` as an ``Undeliverable(pid, message, at)``: give a
    ``DeadLetterQueue`` (which records them, see
    ``DeadLetterQueue.undeliverable``) or any actor. Returns the installed
    observer, which counts what it forwarded and lost; ``close()`` it (or use
    it as a context manager) to stop. Observers chain: one installed later
    also calls the earlier one. A ``call`` to a dead actor is not
    undeliverable: it raises ``NoProcess`` in the caller.
    """
    node = current_node()
    if type(dest) is not Pid and not (isinstance(dest, str) and dest):
        raise TypeError(
            f"observe_undeliverable: dest must be a pid or a registered name, not {dest!r}"
        )
    observer = UndeliverableObserver(dest, node, dead_letter_hook(node))
    set_dead_letter_hook(node, observer)
    return observer
