"""Call deadlines without arming one loop timer per call.

Calls with the same timeout expire in the order they were made, so each
timeout value keeps a FIFO of (deadline, caller) and the node arms a single
loop timer for the earliest live deadline. A call that got its reply leaves a
stale entry that is dropped the next time its queue is touched. This takes a
``call_later``/``cancel`` pair (about a third of a call round trip) off the
hot path.

Timeouts reach ``add`` validated (finite, >= 0, plain floats): a NaN here
would never expire and would stop the shared timer from being re-armed for
every later call of the node.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from typing import Protocol

from ._errors import CallTimeout
from ._pid import Pid

logger = logging.getLogger("asyncotp")


class Expirable(Protocol):
    def done(self) -> bool: ...

    def expire(self) -> None: ...


class Deadlines:
    __slots__ = ("_armed_at", "_handle", "_loop", "_queues")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[tuple[float, Expirable]]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = math.inf

    def add(self, item: Expirable, timeout: float) -> None:
        when = self._loop.time() + timeout
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
        else:
            while queue and queue[0][1].done():
                queue.popleft()
        queue.append((when, item))
        if when < self._armed_at:
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = math.inf
        now = self._loop.time()
        for timeout in list(self._queues):
            queue = self._queues.get(timeout)
            if queue is None:
                continue
            while queue:
                when, item = queue[0]
                if item.done():
                    queue.popleft()
                elif when <= now:
                    queue.popleft()
                    try:
                        item.expire()
                    except Exception:
                        logger.exception("asyncotp: a call deadline failed to expire")
                else:
                    break
            if not queue:
                del self._queues[timeout]
        # Computed afresh, so a deadline added while expiring others is kept.
        earliest = min((queue[0][0] for queue in self._queues.values()), default=math.inf)
        if earliest < self._armed_at:
            self._arm(earliest)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_at = math.inf
        self._queues.clear()


class StartWait:
    """The deadline of one start handshake: shares the node's call-deadline timer."""

    __slots__ = ("error", "fut", "timeout")

    def __init__(self, fut: asyncio.Future[None], timeout: float) -> None:
        self.fut = fut
        self.timeout = timeout
        self.error: TimeoutError | None = None  # set when the deadline fires

    def done(self) -> bool:
        return self.fut.done()

    def expire(self) -> None:
        if not self.fut.done():
            self.error = TimeoutError(f"init did not return within {self.timeout} s")
            self.fut.set_exception(self.error)


class StopWait:
    """The deadline of one ``stop``: shares the node's call-deadline timer."""

    __slots__ = ("fut", "pid", "timeout")

    def __init__(self, fut: asyncio.Future[object], pid: Pid, timeout: float) -> None:
        self.fut = fut
        self.pid = pid
        self.timeout = timeout

    def done(self) -> bool:
        return self.fut.done()

    def expire(self) -> None:
        if not self.fut.done():
            self.fut.set_exception(
                CallTimeout(
                    f"stop: {self.pid!r} did not end within {self.timeout} s (it is still "
                    "running its current callback or terminate); wait longer, or "
                    "send_exit(pid, KILL)",
                    self.pid,
                    self.timeout,
                )
            )
