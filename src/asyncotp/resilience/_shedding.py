"""Load shedding: a GenServer that drops requests by priority or by age.

A bounded mailbox already refuses work with ``MailboxFull``. That is the
bluntest tool: it refuses whatever arrives last, however important, and a
request that has waited so long that its caller no longer cares is still
handled. ``SheddingServer`` adds the two policies that a busy service needs:

* **by age**: every request carries the time it was made and a deadline (see
  ``call_with_deadline``). A request still queued when its deadline passes is
  shed, never handled: its caller gets ``Overloaded`` at once, and the server
  spends no time on work nobody waits for.
* **by priority**: requests wait in a bounded priority queue inside the
  server. When it is full, a more important request pushes out the least
  important (and, among those, the newest) one; a request no more important
  than everything queued is refused.

How it works: a GenServer does one thing at a time, so while it handles a
request, new ones wait in its mailbox. As soon as that request returns, the
server moves everything that arrived meanwhile from its mailbox into its own
queue (``handle_call`` returns ``NOREPLY``), and only then picks the next
request to handle: the most important, oldest one that has not expired. It
does so by posting itself a private "next" token at the back of its
mailbox after each request. So requests that arrived together compete by
priority, a shutdown or ``stop()`` is still handled as soon as the running
request returns, and the age of a request counts from the moment it was
made (its envelope says when), not from when it entered the queue.
"""

from __future__ import annotations

import enum
import functools
import math
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from heapq import heapify, heappop, heappush
from typing import Any, Final

import attrs

from .._core import (
    NOREPLY,
    Caller,
    Overloaded,
    Pid,
    ShedReason,
    Stop,
    call,
    deliver_system,
    now,
    registered_name,
    safe_repr,
    self_pid,
    telemetry,
    token_call,
    validate,
)
from ..actors import GenServer

_HANDLING_GRACE: Final = 5.0
"""Seconds ``call_with_deadline`` waits, by default, beyond the deadline."""


def _no_limit(value: Any) -> Any:
    """``math.inf`` means no limit, which an envelope spells None."""
    return None if type(value) is float and value == math.inf else value


def _loop_time(_instance: object, field: attrs.Attribute[Any], value: object) -> None:
    """A time on the loop clock: a finite number."""
    ok = validate.is_number(value)
    if ok:
        try:
            ok = math.isfinite(value)  # type: ignore[arg-type]
        except OverflowError:  # an int too large for a float
            ok = False
    if not ok:
        validate.fail(ValueError, value, f"RequestEnvelope.{field.name}", "a finite loop time")


@attrs.frozen
class RequestEnvelope:
    """A request with its priority, the time it was made and its deadline.

    ``call_with_deadline`` wraps requests in one; a ``SheddingServer`` unwraps
    it, so ``handle_request`` sees the bare request. ``sent_at`` is on the
    loop clock (``asyncotp._clock.now()``); ``deadline`` is in seconds after
    ``sent_at`` (None: no limit). A plain GenServer that receives an envelope
    sees it as is in ``handle_call``.
    """

    request: object
    priority: int = attrs.field(default=0, validator=validate.attribute(validate.integer))
    sent_at: float = attrs.field(default=0.0, validator=_loop_time)
    deadline: float | None = attrs.field(
        default=None,
        converter=_no_limit,
        validator=validate.attribute(validate.duration, optional=True, unlimited=True),
    )

    @property
    def expires_at(self) -> float:
        """The loop time after which the request is shed (``inf``: never)."""
        return math.inf if self.deadline is None else self.sent_at + self.deadline


@attrs.frozen
class SheddingStats:
    """What a ``SheddingServer`` did, from ``SheddingServer.statistics(server)``.

    ``queued`` requests wait now (at most ``max_queue``); ``handled`` were
    handled; ``expired``, ``evicted`` and ``rejected`` were shed (their
    callers got ``Overloaded``); ``abandoned`` were dropped because their
    caller had stopped waiting (its call timed out). ``mean_service_time``
    is a moving average of the seconds ``handle_request`` takes.
    """

    queued: int
    max_queue: int | None
    handled: int
    expired: int
    evicted: int
    rejected: int
    abandoned: int
    mean_service_time: float

    @property
    def shed(self) -> int:
        """Every request shed with ``Overloaded`` (expired, evicted, rejected)."""
        return self.expired + self.evicted + self.rejected


class _Token(enum.Enum):
    NEXT = "next"
    STATISTICS = "statistics"

    def __repr__(self) -> str:
        return f"<SheddingServer {self.value}>"


@attrs.define(eq=False)
class _Entry:
    caller: Caller
    request: object
    priority: int
    sent_at: float
    expires_at: float
    deadline: float | None
    settled: bool = False


def _fail(caller: Caller, error: BaseException) -> bool:
    """Make the caller's ``call`` raise ``error``; False if it no longer waits."""
    return caller.fail(error)


class SheddingServer(GenServer):
    """A GenServer that sheds requests by age and priority instead of collapsing.

    Example::

        class Search(SheddingServer):
            max_queue = 100             # requests waiting at most
            default_deadline = 2.0      # for plain call()s without a deadline

            async def init(self, index) -> None:
                self.index = index

            async def handle_request(self, request, caller):
                return await self.index.search(request)

        pid = await Search.start(index, name="search")
        try:
            hits = await call_with_deadline("search", "cats", deadline=0.5, priority=1)
        except Overloaded as exc:
            ...  # answer 503 / 429, Retry-After: exc.retry_after

    Callbacks: implement ``handle_request(request, caller)`` instead of
    ``handle_call``: it has the same returns (the reply, or ``NOREPLY`` and a
    later ``caller.reply(value)``, or ``raise Stop(reason, reply=...)``).
    ``init``, ``handle_cast``, ``handle_info`` and ``terminate`` are the
    GenServer's, unchanged; casts and other messages are not queued, and are
    handled between two requests, in arrival order.

    Settings (class attributes, or set them on ``self`` in ``init``; they
    are checked when ``init`` returns, so a bad one makes ``start`` fail
    with a ``StartError`` naming it):

    * ``max_queue``: requests that may wait (default 1000; None: no bound).
      When it is full, expired requests are shed first; then a request more
      important than the least important one queued evicts the newest of
      those, and any other is refused (``ShedReason.QUEUE_FULL``).
    * ``default_deadline``: seconds a plain ``call`` (one without an
      envelope) may wait in the queue, counted from when the server took it
      from its mailbox (None: no limit). A request is also dropped, without
      an error, once its caller's own call timeout has passed.
    * ``default_priority``: the priority of a plain ``call`` (default 0).
      Higher numbers are more important; equal priorities are served in
      arrival order.

    The caller of a shed request gets ``Overloaded`` (from ``call`` as much as
    from ``call_with_deadline``). ``SheddingServer.statistics(server)`` counts what was
    handled and shed. Requests queued when the server stops get
    ``ServerExited``, like any call to a server that ends.

    Backpressure while a request runs: requests that arrive meanwhile wait
    in the mailbox, which ``max_queue`` does not bound; start the server with
    ``mailbox_size=`` (and ``Overflow.REJECT``) to refuse them at once with
    ``MailboxFull`` beyond that. A plain ``call`` carries no timestamp, so
    its ``default_deadline`` counts from when it entered the queue;
    ``call_with_deadline`` counts from the call itself.

    When *not* to use it: a server whose requests are cheap and never queue
    for long needs none of this; a bounded mailbox (``mailbox_size=``,
    ``Overflow.REJECT``) is enough backpressure there.
    """

    max_queue: int | None = 1000
    default_deadline: float | None = None
    default_priority: int = 0
    _checked: tuple[object, ...] | None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "handle_call" in cls.__dict__:
            raise TypeError(
                f"{cls.__qualname__} defines handle_call, but a SheddingServer queues every "
                "call itself; define `async def handle_request(self, request, caller)` instead"
            )
        own = cls.__dict__.get("init")
        if own is not None and own not in _checking:
            cls.init = _checking_settings(own)  # type: ignore[method-assign, assignment]

    async def init(self, *args: Any, **kwargs: Any) -> None:
        """As ``GenServer.init``; the settings are checked once it returns (a
        bad one makes ``start`` fail)."""
        await super().init(*args, **kwargs)
        self._check_settings()

    def _check_settings(self) -> None:
        """``ValueError`` (``TypeError`` for the priority) naming a bad setting."""
        settings = (self.max_queue, self.default_deadline, self.default_priority)
        checked = self._checked
        if checked is not None and all(a is b for a, b in zip(settings, checked, strict=True)):
            return
        where = type(self).__qualname__
        validate.count(self.max_queue, f"{where}.max_queue", minimum=0, optional=True)
        validate.duration(
            self.default_deadline, f"{where}.default_deadline", optional=True, unlimited=True
        )
        validate.integer(self.default_priority, f"{where}.default_priority")
        self._checked = settings

    def __init__(self) -> None:
        self._queues: dict[int, deque[_Entry]] = {}
        self._expiry: list[tuple[float, int, _Entry]] = []
        self._size = 0
        self._seq = 0
        self._next_posted = False
        self._token: Caller | None = None
        self._handled = 0
        self._expired = 0
        self._evicted = 0
        self._rejected = 0
        self._abandoned = 0
        self._service_time = 0.0
        self._checked = None

    async def handle_request(self, request: Any, caller: Caller) -> Any:
        """Handle one request taken from the queue; the return value is the reply."""
        raise NotImplementedError(
            f"{type(self).__qualname__} received the request {safe_repr(request)} but defines no "
            "handle_request; define `async def handle_request(self, request, caller)`"
        )

    # -- client API ----------------------------------------------------------

    @staticmethod
    async def statistics(server: Pid | str, timeout: float | None = 5.0) -> SheddingStats:
        """A snapshot of what a ``SheddingServer`` queued, handled and shed.

        Answered as soon as the running request returns, ahead of the queued ones.
        """
        timeout = validate.duration(
            timeout,
            "timeout",
            where="SheddingServer.statistics",
            optional=True,
            zero=True,
            unlimited=True,
        )
        statistics = await call(server, _Token.STATISTICS, timeout)
        if type(statistics) is not SheddingStats:
            raise TypeError(
                f"SheddingServer.statistics: {server!r} is not a SheddingServer (it answered "
                f"{safe_repr(statistics)})"
            )
        return statistics

    # -- the queue (GenServer callbacks) ------------------------------------

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request is _Token.NEXT:
            await self._handle_next()
            return NOREPLY
        if request is _Token.STATISTICS:
            return self._statistics()
        self._check_settings()  # changed since init: a bad one ends the server, naming it
        t = now()
        timeout = caller.timeout
        if type(request) is RequestEnvelope:
            body, priority, sent_at, deadline = (
                request.request,
                request.priority,
                request.sent_at,
                request.deadline,
            )
        else:
            body, priority, sent_at, deadline = (
                request,
                self.default_priority,
                t,
                self.default_deadline,
            )
        expires_at = math.inf if deadline is None else sent_at + deadline
        if timeout is not None:  # past the caller's own timeout nobody waits for it
            expires_at = min(expires_at, t + timeout)
        self._admit(_Entry(caller, body, priority, sent_at, expires_at, deadline), t)
        return NOREPLY

    def _admit(self, entry: _Entry, t: float) -> None:
        if entry.expires_at <= t:
            self._shed(entry, ShedReason.EXPIRED, t)
            return
        limit = self.max_queue
        if limit is not None and self._size >= limit:
            self._shed_expired(t)
            if self._size >= limit:
                victim = self._lowest_newest()
                if victim is None or entry.priority <= victim.priority:
                    self._shed(entry, ShedReason.QUEUE_FULL, t)
                    return
                self._queues[victim.priority].pop()
                if not self._queues[victim.priority]:
                    del self._queues[victim.priority]
                self._settle(victim)
                self._shed(victim, ShedReason.EVICTED, t)
        queue = self._queues.get(entry.priority)
        if queue is None:
            queue = self._queues[entry.priority] = deque()
        queue.append(entry)
        self._size += 1
        if entry.expires_at < math.inf:
            expiry = self._expiry
            if len(expiry) > 2 * self._size + 64:
                # Handled requests stay in the heap until their deadline; drop
                # them now and then so the heap stays the size of the queue.
                expiry[:] = [item for item in expiry if not item[2].settled]
                heapify(expiry)
            self._seq += 1
            heappush(expiry, (entry.expires_at, self._seq, entry))
        self._post_next()

    def _settle(self, entry: _Entry) -> None:
        entry.settled = True
        self._size -= 1

    def _lowest_newest(self) -> _Entry | None:
        """The newest of the least important queued requests (still queued)."""
        while self._queues:
            lowest = min(self._queues)
            queue = self._queues[lowest]
            while queue and queue[-1].settled:
                queue.pop()
            if queue:
                return queue[-1]
            del self._queues[lowest]
        return None

    def _pop_next(self) -> _Entry | None:
        """Take the oldest of the most important queued requests."""
        while self._queues:
            highest = max(self._queues)
            queue = self._queues[highest]
            while queue:
                entry = queue.popleft()
                if not entry.settled:
                    if not queue:
                        del self._queues[highest]
                    return entry
            del self._queues[highest]
        return None

    def _shed_expired(self, t: float) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= t:
            _, _, entry = heappop(expiry)
            if not entry.settled:
                self._settle(entry)
                self._shed(entry, ShedReason.EXPIRED, t)

    def _shed(self, entry: _Entry, reason: ShedReason, t: float) -> None:
        caller = entry.caller
        if not caller.waiting:
            self._abandoned += 1
            return
        if reason is ShedReason.EXPIRED:
            self._expired += 1
        elif reason is ShedReason.EVICTED:
            self._evicted += 1
        else:
            self._rejected += 1
        me = self_pid()
        waited = max(0.0, t - entry.sent_at)
        if telemetry.ANY:
            telemetry.execute(
                ("asyncotp", "shedding", "shed"),
                {"waited": waited, "queued": self._size},
                {
                    "server": me,
                    "name": registered_name(me),
                    "reason": reason,
                    "priority": entry.priority,
                },
            )
        retry_after = self._size * self._service_time if self._service_time > 0 else None
        if reason is ShedReason.EXPIRED:
            why = f"it waited {waited:.3f} s in the queue, past its deadline"
            if entry.deadline is not None:
                why += f" of {entry.deadline} s"
        elif reason is ShedReason.EVICTED:
            why = (
                f"the queue was full ({self.max_queue} requests) and a request of higher "
                f"priority than its {entry.priority} took its place"
            )
        else:
            why = (
                f"the queue was full ({self.max_queue} requests) of requests at least as "
                f"important as its priority {entry.priority}"
            )
        hint = f" (after about {retry_after:.3f} s)" if retry_after is not None else ""
        _fail(
            caller,
            Overloaded(
                f"{me!r} shed the request {safe_repr(entry.request)} without handling it: {why}; "
                f"the server is overloaded: answer 503/429 and retry later{hint}, or give "
                "the request a longer deadline or a higher priority",
                me,
                reason,
                waited,
                retry_after,
            ),
        )

    def _post_next(self) -> None:
        """Put the "handle the next request" token at the back of the mailbox."""
        if self._next_posted or self._size == 0:
            return
        token = self._token
        if token is None:
            # A Caller routes the token to handle_call, which this class owns, so
            # subclasses cannot swallow it (token_call: nobody waits for its reply).
            token = self._token = token_call(_Token.NEXT)
        self._next_posted = True
        deliver_system(self_pid(), token)

    async def _handle_next(self) -> None:
        self._next_posted = False
        t = now()
        self._shed_expired(t)
        entry = self._pop_next()
        while entry is not None and not entry.caller.waiting:
            self._settle(entry)
            self._abandoned += 1
            entry = self._pop_next()
        if entry is None:
            return
        self._settle(entry)
        caller = entry.caller
        try:
            result = await self.handle_request(entry.request, caller)
        except Stop as stop:
            if stop.has_reply:
                caller.reply(stop.reply)
            raise
        except Exception as exc:
            exc.add_note(
                f"in {type(self).__qualname__}.handle_request({safe_repr(entry.request)}) for "
                f"{caller.pid!r}"
            )
            raise
        elapsed = now() - t
        self._handled += 1
        # A moving average over about the last ten requests.
        self._service_time += (elapsed - self._service_time) * (1.0 if self._handled == 1 else 0.1)
        if result is not NOREPLY:
            caller.reply(result)
        self._post_next()

    def _statistics(self) -> SheddingStats:
        return SheddingStats(
            queued=self._size,
            max_queue=self.max_queue,
            handled=self._handled,
            expired=self._expired,
            evicted=self._evicted,
            rejected=self._rejected,
            abandoned=self._abandoned,
            mean_service_time=self._service_time,
        )


# -- client functions ------------------------------------------------------


class _Auto(enum.Enum):
    TOKEN = 0

    def __repr__(self) -> str:
        return "<deadline + 5 s>"


_AUTO: Final = _Auto.TOKEN


async def call_with_deadline(
    dest: Pid | str,
    request: object,
    deadline: float | None,
    *,
    priority: int = 0,
    timeout: float | _Auto | None = _AUTO,
) -> Any:
    """Call a ``SheddingServer`` with a deadline for the wait and a priority.

    ``deadline`` is how many seconds the request may wait in the server's
    queue before it is handled (None: no limit); past it the request is
    shed and this raises ``Overloaded`` (``ShedReason.EXPIRED``).
    ``priority``: higher is more important (see ``SheddingServer``).
    ``timeout`` bounds the whole call, waiting plus handling, as in ``call``;
    by default it is the deadline plus 5 seconds for the handling (5 seconds
    without a deadline). Raises what ``call`` raises, and ``Overloaded``.
    """
    if timeout is not _AUTO:
        timeout = validate.duration(
            timeout, "timeout", where="call_with_deadline", optional=True, zero=True, unlimited=True
        )
    envelope = RequestEnvelope(request, priority, now(), deadline)
    if timeout is _AUTO:
        grace = envelope.deadline
        timeout = _HANDLING_GRACE if grace is None else grace + _HANDLING_GRACE
    return await call(dest, envelope, timeout)


def _checking_settings(
    init: Callable[..., Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    """Wrap a subclass's ``init`` so that the settings it leaves are checked."""

    @functools.wraps(init)
    async def wrapper(self: SheddingServer, *args: Any, **kwargs: Any) -> None:
        await init(self, *args, **kwargs)
        self._check_settings()

    _checking.add(wrapper)
    return wrapper


_checking: Final[weakref.WeakSet[Callable[..., Any]]] = weakref.WeakSet()
"""The ``init`` wrappers that already check the settings."""
