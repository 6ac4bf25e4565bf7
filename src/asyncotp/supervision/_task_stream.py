"""``TaskSupervisor.async_stream``: a function mapped over items by supervised
tasks, with bounded concurrency, back-pressure and per-task timeouts.

The consumer's own code drives everything (there is no helper actor): each
``__anext__`` first tops the window up (pulls items and starts their tasks
while fewer than ``max_concurrency`` are in it), then waits for the next
result to deliver. A slot is freed only when its result is handed to the
consumer, so the items pulled ahead of the consumer never exceed
``max_concurrency``, whatever the input and however slow the consumer.

Each task's outcome comes back through a ``ReplyChannel`` future (the result,
or the exit reason through the task's exit callback), so nothing reaches the
consumer's mailbox. A loop timer per task enforces ``timeout`` even while the
consumer is busy elsewhere: the task is killed then, and reported (or the
stream raises) when the consumer next asks.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar

import attrs

from .._core import (
    BRUTAL_KILL,
    INFINITY,
    SHUTDOWN,
    ChildSpec,
    MaxChildren,
    Pid,
    Restart,
    ShutdownSetting,
    TaskTimeout,
    fn_name,
    kill,
    send_exit,
    validate,
    wait_exit,
)
from ..actors._task import ReplyChannel, check_fn, check_shutdown, check_timeout, spawn_task
from ._client import start_child

A = TypeVar("A")
R = TypeVar("R")

StreamResult: TypeAlias = "tuple[Literal['ok'], R] | tuple[Literal['exit'], object]"
"""One item's result: ``("ok", value)``, or ``("exit", reason)`` when its task
failed (``reason`` is its exception or exit reason; ``"timeout"`` when it was
killed for its timeout with ``on_timeout="kill_task"``)."""

OnTimeout: TypeAlias = Literal["exit", "kill_task"]

_TIMEOUT: Final = "timeout"
"""The reason reported for a task killed for its timeout (Elixir's ``:timeout``)."""


@attrs.define(eq=False)
class _Slot:
    """One item in flight: its task, its gate, its outcome, its timer."""

    index: int
    gate: asyncio.Future[bool]
    channel: ReplyChannel
    pid: Pid | None = None
    timer: asyncio.TimerHandle | None = None
    timed_out: bool = False

    @property
    def outcome(self) -> asyncio.Future[Any]:
        fut = self.channel.outcome
        assert fut is not None  # the stream's channels have no owner actor
        return fut


def check_child_shutdown(shutdown: object, where: str) -> ShutdownSetting:
    """A task's shutdown under a supervisor, as a ``ChildSpec``'s: seconds
    >= 0 (0: SHUTDOWN then KILL at once), ``BRUTAL_KILL`` or ``INFINITY``."""
    return check_shutdown(shutdown, where)


def async_stream(
    sup: Pid | str,
    items: Iterable[A] | AsyncIterable[A],
    fn: Callable[[A], Awaitable[R]],
    *,
    max_concurrency: int | None = None,
    ordered: bool = True,
    timeout: float | None = 5.0,
    on_timeout: OnTimeout = "exit",
    shutdown: ShutdownSetting = 5.0,
) -> AsyncGenerator[StreamResult[R], None]:
    """See ``TaskSupervisor.async_stream``; the arguments are checked here, at
    once, and the stream starts when it is first iterated."""
    where = "TaskSupervisor.async_stream"
    validate.pid_or_name(sup, "sup", where=where, expected="a task supervisor's pid or name")
    if not isinstance(items, (Iterable, AsyncIterable)) or isinstance(items, (str, bytes)):
        validate.fail(TypeError, items, "items", "an iterable or an async iterable", where=where)
    check_fn(fn, where)
    concurrency = validate.count(
        (os.cpu_count() or 1) if max_concurrency is None else max_concurrency,
        "max_concurrency",
        where=where,
    )
    validate.instance(ordered, bool, "ordered", where=where)
    if on_timeout not in ("exit", "kill_task"):
        validate.fail(ValueError, on_timeout, "on_timeout", "'exit' or 'kill_task'", where=where)
    stream: _Stream[A, R] = _Stream(
        sup,
        items,
        fn,
        concurrency,
        ordered,
        check_timeout(timeout, where),
        on_timeout,
        check_child_shutdown(shutdown, where),
    )
    return stream.run()


class _Stream(Generic[A, R]):
    """The state of one stream, driven by its consumer's ``__anext__``."""

    def __init__(
        self,
        sup: Pid | str,
        items: Iterable[A] | AsyncIterable[A],
        fn: Callable[[A], Awaitable[R]],
        max_concurrency: int,
        ordered: bool,
        timeout: float | None,
        on_timeout: OnTimeout,
        shutdown: ShutdownSetting,
    ) -> None:
        self._sup = sup
        self._items = items
        self._fn = fn
        self._id = fn_name(fn)
        self._max = max_concurrency
        self._ordered = ordered
        self._timeout = timeout
        self._on_timeout = on_timeout
        self._shutdown = shutdown
        self._iter: Any = None  # the input: an iterator or an async iterator
        self._is_async = isinstance(items, AsyncIterable)
        self._exhausted = False
        self._pulled = 0
        self._window: deque[_Slot] = deque()
        """Items pulled and not yet delivered, in input order."""
        self._done: deque[_Slot] = deque()
        """Unordered: slots whose outcome came, in the order it came."""
        self._expired: _Slot | None = None
        """on_timeout="exit": the first task that ran out of time."""
        self._wake: asyncio.Future[None] | None = None

    async def run(self) -> AsyncGenerator[StreamResult[R], None]:
        try:
            while True:
                await self._fill()
                if not self._window:
                    return
                yield await self._next()
        finally:
            await self._close()

    # -- input and tasks -----------------------------------------------------

    async def _fill(self) -> None:
        """Pull items and start their tasks while the window has room."""
        while not self._exhausted and len(self._window) < self._max:
            if self._iter is None:
                items = self._items
                self._iter = aiter(items) if self._is_async else iter(items)  # type: ignore[arg-type]
            try:
                item = await anext(self._iter) if self._is_async else next(self._iter)
            except (StopIteration, StopAsyncIteration):
                self._exhausted = True
                return
            await self._start(item)

    async def _start(self, item: A) -> None:
        loop = asyncio.get_running_loop()
        slot = _Slot(self._pulled, loop.create_future(), ReplyChannel(None))
        self._pulled += 1
        spec = ChildSpec(
            self._id,
            functools.partial(spawn_task, slot.gate, slot.channel, self._fn, (item,)),
            Restart.TEMPORARY,
            self._shutdown,
        )
        self._window.append(slot)
        try:
            slot.pid = await start_child(self._sup, spec)
            slot.channel.attach(slot.pid)
        except BaseException as exc:
            if not slot.gate.done():
                slot.gate.set_result(False)  # a task spawned for nothing ends at once
            self._window.remove(slot)
            if isinstance(exc, MaxChildren):
                raise MaxChildren(
                    f"{exc}; async_stream runs up to max_concurrency={self._max} tasks at once: "
                    "keep it at or under the supervisor's max_children, counting its other tasks"
                ) from exc
            raise
        slot.gate.set_result(True)
        if self._timeout is not None:
            slot.timer = loop.call_later(self._timeout, self._expire, slot)
        slot.outcome.add_done_callback(functools.partial(self._completed, slot))

    def _completed(self, slot: _Slot, _fut: object) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        if not self._ordered:
            self._done.append(slot)
        self._notify()

    def _expire(self, slot: _Slot) -> None:
        """The task's time is up: kill it (its outcome then comes as KILLED)."""
        slot.timer = None
        if slot.outcome.done() or slot.pid is None:
            return
        slot.timed_out = True
        if self._expired is None or slot.index < self._expired.index:
            self._expired = slot  # the earliest item, of those out of time together
        kill(slot.pid)
        self._notify()

    def _notify(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    # -- output --------------------------------------------------------------

    async def _next(self) -> StreamResult[R]:
        """Wait for the next result to deliver, and free its slot."""
        while True:
            expired = self._expired
            if expired is not None and self._on_timeout == "exit":
                raise TaskTimeout(
                    f"async_stream: the task {expired.pid!r} for item #{expired.index} did not "
                    f"finish within {self._timeout} s (on_timeout='exit'); the stream is "
                    "closed and its tasks stopped. Raise the timeout, or pass "
                    "on_timeout='kill_task' to get ('exit', 'timeout') for that item instead",
                    expired.pid,
                    self._timeout,
                )
            slot = self._deliverable()
            if slot is not None:
                return self._result(slot)
            self._wake = asyncio.get_running_loop().create_future()
            try:
                await self._wake
            finally:
                self._wake = None

    def _deliverable(self) -> _Slot | None:
        window = self._window
        if self._ordered:
            if window and window[0].outcome.done():
                return window.popleft()
            return None
        if self._done:
            slot = self._done.popleft()
            window.remove(slot)
            return slot
        return None

    def _result(self, slot: _Slot) -> StreamResult[R]:
        if slot.timer is not None:
            slot.timer.cancel()
            slot.timer = None
        kind, value = slot.outcome.result()
        if kind == "ok":
            return ("ok", value)
        return ("exit", _TIMEOUT if slot.timed_out else value)

    # -- the end -------------------------------------------------------------

    async def _close(self) -> None:
        """Stop the tasks still running (as their supervisor would: SHUTDOWN,
        then KILL after their shutdown time) and close the input."""
        slots = list(self._window)
        self._window.clear()
        self._done.clear()
        running: list[Pid] = []
        for slot in slots:
            if slot.timer is not None:
                slot.timer.cancel()
                slot.timer = None
            if not slot.gate.done():
                slot.gate.set_result(False)
            slot.channel.active = False
            if slot.pid is not None and not slot.outcome.done():
                running.append(slot.pid)
        for pid in running:
            if self._shutdown is BRUTAL_KILL:
                kill(pid)
            else:
                send_exit(pid, SHUTDOWN)
        for pid in running:
            wait = None if self._shutdown is INFINITY else float(self._shutdown)  # type: ignore[arg-type]
            if self._shutdown is not BRUTAL_KILL and not await wait_exit(pid, wait):
                kill(pid)
            await wait_exit(pid, None)
        source = self._iter
        self._iter = None
        if inspect.isasyncgen(source):
            await source.aclose()
        elif inspect.isgenerator(source):
            source.close()
