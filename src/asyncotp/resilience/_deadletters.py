"""Dead letters: a queue that keeps the jobs that failed every attempt.

A job that fails every time (a "poison message": bad data, a bug) must not
be retried forever, nor crash its way up the supervision tree, nor vanish.
A ``WorkerPool`` moves it, after its last attempt, to a ``DeadLetterQueue``:
an actor that keeps failed jobs with their attempts and last error, to be
inspected, replayed once the cause is fixed, or discarded. The queue also
records the undeliverable messages that ``observe_undeliverable`` forwards
to it.

The queue knows nothing of pools. Whoever buries a job calls the queue with
a ``_Bury``; ``replay`` calls the letter's ``pool`` with a ``_Resubmit`` of the
job, which a ``WorkerPool`` answers with the job's new id.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import deque
from typing import Any

import attrs

from .._core import (
    NOREPLY,
    ActorError,
    Caller,
    Cast,
    DeadLetterNotFound,
    Down,
    MonitorRef,
    Pid,
    call,
    deliver_system,
    demonitor,
    lookup,
    monitor,
    now,
    safe_repr,
    self_pid,
    telemetry,
    validate,
)
from ..actors import GenServer
from ._undeliverable import Undeliverable

logger = logging.getLogger("asyncotp")


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
class DeadLetterStats:
    """``DeadLetterQueue.statistics``: ``letters`` kept now; ``buried`` ever
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


# -- the dead-letter queue ---------------------------------------------------------------


class _Op(enum.Enum):
    LIST = "letters"
    GET = "inspect"
    TAKE = "take"
    REPLAYED = "replayed"
    RESTORE = "restore"
    DISCARD = "discard"
    UNDELIVERABLE = "undeliverable"
    STATISTICS = "statistics"


@attrs.frozen
class _Bury:
    """The call that puts a job in a dead-letter queue; answered with the
    letter's id. ``pool`` is where ``replay`` sends the job back."""

    job: object
    pool: Pid | str
    attempts: int
    error: str
    traceback: str
    errors: tuple[str, ...]


@attrs.frozen
class _Resubmit:
    """The call that ``DeadLetterQueue.replay`` makes to a letter's ``pool``:
    run ``job`` again, with a fresh set of attempts; answered with the new
    job id (or failed with the pool's refusal)."""

    job: object


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
    ``observe_undeliverable``) and ``statistics``.

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
        self.max_letters = validate.count(max_letters, "max_letters", where="DeadLetterQueue")
        validate.count(max_undeliverable, "max_undeliverable", where="DeadLetterQueue")
        self._letters: dict[int, DeadLetter] = {}
        self._taken: dict[int, tuple[DeadLetter, MonitorRef | None]] = {}
        """Letters being replayed, with a monitor of the replaying actor: they
        leave the queue once their pool has taken the job, and come back if
        the replay fails or its caller is gone."""
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
        validate.count(max_letters, "max_letters", where="DeadLetterQueue.start")
        validate.count(max_undeliverable, "max_undeliverable", where="DeadLetterQueue.start")
        return await super().start(
            max_letters=max_letters, max_undeliverable=max_undeliverable, name=name, **opts
        )

    # -- client API ----------------------------------------------------------

    @staticmethod
    async def letters(dlq: Pid | str, timeout: float | None = 5.0) -> list[DeadLetter]:
        """Every letter, oldest first."""
        timeout = validate.duration(
            timeout,
            "timeout",
            where="DeadLetterQueue.letters",
            optional=True,
            zero=True,
            unlimited=True,
        )
        result: list[DeadLetter] = await call(dlq, (_Op.LIST,), timeout)
        return result

    @staticmethod
    async def inspect(dlq: Pid | str, letter_id: int, timeout: float | None = 5.0) -> DeadLetter:
        """One letter; ``DeadLetterNotFound`` if it is not there."""
        _check_id(letter_id, "DeadLetterQueue.inspect")
        timeout = validate.duration(
            timeout,
            "timeout",
            where="DeadLetterQueue.inspect",
            optional=True,
            zero=True,
            unlimited=True,
        )
        result: DeadLetter = await call(dlq, (_Op.GET, letter_id), timeout)
        return result

    @staticmethod
    async def replay(dlq: Pid | str, letter_id: int, timeout: float | None = 5.0) -> int:
        """Send the letter's job back to its pool; return its new job id.

        The job gets a fresh set of attempts, and the letter leaves the
        queue. If the pool refuses it or is gone, the letter stays (and the
        pool's error is raised); so it does if this call is cancelled or
        times out, or its actor ends, before the pool has taken the job.
        ``DeadLetterNotFound`` for an unknown id.
        """
        _check_id(letter_id, "DeadLetterQueue.replay")
        timeout = validate.duration(
            timeout,
            "timeout",
            where="DeadLetterQueue.replay",
            optional=True,
            zero=True,
            unlimited=True,
        )
        try:
            letter: DeadLetter = await call(dlq, (_Op.TAKE, letter_id), timeout)
        except (asyncio.CancelledError, TimeoutError):
            # The queue may have handed us the letter all the same: put it back.
            _tell(dlq, (_Op.RESTORE, letter_id))
            raise
        try:
            job_id: int = await call(letter.pool, _Resubmit(letter.job), timeout)
        except BaseException:
            _tell(dlq, (_Op.RESTORE, letter_id))
            raise
        _tell(dlq, (_Op.REPLAYED, letter_id))
        return job_id

    @staticmethod
    async def replay_all(dlq: Pid | str, timeout: float | None = 5.0) -> list[int]:
        """Replay every letter, oldest first; return the new job ids.

        Stops at the first letter its pool refuses (that letter and the
        later ones stay) and raises the pool's error.
        """
        timeout = validate.duration(
            timeout,
            "timeout",
            where="DeadLetterQueue.replay_all",
            optional=True,
            zero=True,
            unlimited=True,
        )
        return [
            await DeadLetterQueue.replay(dlq, letter.id, timeout)
            for letter in await DeadLetterQueue.letters(dlq, timeout)
        ]

    @staticmethod
    async def discard(dlq: Pid | str, letter_id: int, timeout: float | None = 5.0) -> DeadLetter:
        """Remove a letter for good and return it."""
        _check_id(letter_id, "DeadLetterQueue.discard")
        timeout = validate.duration(
            timeout,
            "timeout",
            where="DeadLetterQueue.discard",
            optional=True,
            zero=True,
            unlimited=True,
        )
        result: DeadLetter = await call(dlq, (_Op.DISCARD, letter_id), timeout)
        return result

    @staticmethod
    async def undeliverable(dlq: Pid | str, timeout: float | None = 5.0) -> list[Undeliverable]:
        """The undeliverable messages recorded (see ``observe_undeliverable``)."""
        timeout = validate.duration(
            timeout,
            "timeout",
            where="DeadLetterQueue.undeliverable",
            optional=True,
            zero=True,
            unlimited=True,
        )
        result: list[Undeliverable] = await call(dlq, (_Op.UNDELIVERABLE,), timeout)
        return result

    @staticmethod
    async def statistics(dlq: Pid | str, timeout: float | None = 5.0) -> DeadLetterStats:
        """Counts of letters and undeliverable messages."""
        timeout = validate.duration(
            timeout,
            "timeout",
            where="DeadLetterQueue.statistics",
            optional=True,
            zero=True,
            unlimited=True,
        )
        result: DeadLetterStats = await call(dlq, (_Op.STATISTICS,), timeout)
        return result

    # -- callbacks -----------------------------------------------------------

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if type(request) is _Bury:
            return self._bury(request)
        if not (isinstance(request, tuple) and request and isinstance(request[0], _Op)):
            raise TypeError(
                f"DeadLetterQueue does not understand the call {safe_repr(request)}; use its "
                "static methods (letters, inspect, replay, discard, undeliverable, statistics)"
            )
        op = request[0]
        if op is _Op.LIST:
            return list(self._letters.values())
        if op is _Op.UNDELIVERABLE:
            return list(self._undeliverable)
        if op is _Op.STATISTICS:
            return DeadLetterStats(
                letters=len(self._letters),
                buried=self._buried,
                replayed=self._replayed,
                discarded=self._discarded,
                dropped=self._dropped,
                undeliverable=len(self._undeliverable),
                undeliverable_seen=self._seen,
            )
        letter_id = request[1] if len(request) == 2 else None
        if type(letter_id) is not int:  # not a key of the letters: the caller's error
            caller.fail(
                TypeError(
                    f"DeadLetterQueue: a letter id is an int (DeadLetter.id), not "
                    f"{safe_repr(letter_id)}"
                )
            )
            return NOREPLY
        found = self._letters.get(letter_id)
        if found is None:
            caller.fail(
                DeadLetterNotFound(
                    f"dead-letter queue {self_pid()!r} has no letter {safe_repr(letter_id)} "
                    "(it was replayed, discarded or dropped); DeadLetterQueue.letters lists "
                    "those kept",
                    letter_id,
                )
            )
            return NOREPLY
        if op is _Op.GET:
            return found
        if op is _Op.TAKE:
            if not caller.waiting:
                return None  # its call timed out or was cancelled: the letter stays
            ref = None if caller.pid is None else monitor(caller.pid)
            self._taken[letter_id] = (found, ref)
            self._replayed += 1
        else:
            self._discarded += 1
        del self._letters[letter_id]
        return found

    async def handle_cast(self, request: Any) -> None:
        ours = isinstance(request, tuple) and len(request) == 2 and type(request[1]) is int
        if ours and request[0] is _Op.REPLAYED:
            self._end_replay(request[1])
        elif ours and request[0] is _Op.RESTORE:
            self._restore(request[1])
        else:
            await super().handle_cast(request)

    async def handle_info(self, message: Any) -> None:
        if type(message) is Undeliverable:
            self._seen += 1
            self._undeliverable.append(message)
            return
        if type(message) is Down:
            for letter_id, (_letter, ref) in list(self._taken.items()):
                if ref is message.ref:
                    self._restore(letter_id)  # its replayer ended before the pool took it
                    return
        await super().handle_info(message)

    def _end_replay(self, letter_id: int) -> DeadLetter | None:
        """The replay of ``letter_id`` is over; the letter, if it was under way."""
        taken = self._taken.pop(letter_id, None)
        if taken is None:
            return None
        letter, ref = taken
        if ref is not None:
            demonitor(ref, flush=True)
        return letter

    def _restore(self, letter_id: int) -> None:
        """Put a letter whose replay failed back in the queue, in its place."""
        letter = self._end_replay(letter_id)
        if letter is None:
            return
        self._letters[letter.id] = letter
        self._letters = dict(sorted(self._letters.items()))
        self._replayed -= 1

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
        if telemetry.ANY:
            telemetry.execute(
                ("asyncotp", "dead_letters", "buried"),
                {"attempts": request.attempts, "letters": len(self._letters)},
                {
                    "queue": self_pid(),
                    "letter_id": letter.id,
                    "pool": request.pool,
                    "error": request.error,
                },
            )
        while len(self._letters) > self.max_letters:
            oldest = next(iter(self._letters))
            dropped = self._letters.pop(oldest)
            self._dropped += 1
            logger.error(
                "dead-letter queue %r is full (%d letters); dropped the oldest: %s",
                self_pid(),
                self.max_letters,
                safe_repr(dropped),
            )
        return letter.id


def _check_id(letter_id: object, where: str) -> None:
    if type(letter_id) is not int:
        raise TypeError(
            f"{where}: letter_id must be an int (the id of a DeadLetter), not "
            f"{safe_repr(letter_id)}"
        )


def _tell(dlq: Pid | str, request: object) -> None:
    """Cast ``request`` to the queue as a system message, which no bound of
    its mailbox refuses or drops: a lost one would leave its letter out of
    the queue for good. A queue that is gone has nothing left to keep."""
    with contextlib.suppress(ActorError):
        pid = lookup(dlq, "DeadLetterQueue.replay")
        if pid is not None:
            deliver_system(pid, Cast(request))
