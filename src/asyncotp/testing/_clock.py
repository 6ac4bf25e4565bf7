"""Virtual time for asyncio: a clock installed on the running event loop.

asyncotp reads all its time from ``loop.time()`` and waits on the loop's own
timers (see ``asyncotp._clock``). A ``VirtualClock`` replaces the running
loop's ``time`` with a virtual one and wraps the loop selector's ``select``:

* whenever the loop has nothing ready to run (every task waits on a timer,
  a future or I/O), ``select`` is where it would sleep. The wrapper first
  polls for I/O without waiting; if there is none, and ``autojump`` is on,
  it moves virtual time straight to the next timer instead of sleeping, so
  the timer fires at once (like trio's ``MockClock(autojump_threshold=0)``);
* ``await clock.advance(seconds)`` moves time forward by ``seconds``, one
  timer at a time, letting everything that became ready run before the next
  timer fires, and returns once the loop is idle at the target time.

With ``autojump`` off, virtual time stands still except in ``advance``: an
idle loop then sleeps until I/O arrives (another thread's
``call_soon_threadsafe``, a signal). That is what a test that wants to pace
time itself (a state machine, a restart window) needs.

Limits: this works on asyncio's own selector event loops (the default on
every platform, including anyio's asyncio backend). uvloop keeps its timers
in libuv's clock, so it cannot be driven; ``install`` refuses it. Work done in
threads or processes does not count as activity: while a thread works, an
idle loop jumps ahead.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any

_installed: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, VirtualClock] = (
    weakref.WeakKeyDictionary()
)
_order = itertools.count()


def current_clock() -> VirtualClock | None:
    """The ``VirtualClock`` installed on the running loop, or None."""
    return _installed.get(asyncio.get_running_loop())


class VirtualClock:
    """A virtual clock for the running asyncio loop.

    Example::

        async def test_backoff_waits_a_minute() -> None:
            with VirtualClock() as clock:
                await asyncio.sleep(60)          # returns at once: time jumps
                assert clock.elapsed == 60
                await clock.advance(5)           # everything due in 5 s fires, in order

    ``with VirtualClock():`` installs the clock on the running loop (inside a
    coroutine) and restores the loop on exit; ``install()``/``uninstall()``
    do the same by hand. Virtual time starts at the loop's current time
    (rounded up to a whole second), so timers armed before the clock was
    installed keep their places. Timers still pending when the clock is
    removed fire by the loop's real clock.

    ``autojump`` (default True): an idle loop jumps to its next timer. Turn
    it off to move time only with ``advance``.
    """

    def __init__(self, *, autojump: bool = True) -> None:
        self._autojump = bool(autojump)
        self._now = 0.0
        self._start = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._selector: Any = None
        self._real_select: Callable[[float | None], Any] | None = None
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._targets: list[tuple[float, int, asyncio.Future[None]]] = []
        self._next_timer: float | None = None

    def __repr__(self) -> str:
        state = "installed" if self._loop is not None else "not installed"
        return f"<VirtualClock {state} elapsed={self.elapsed!r} autojump={self._autojump!r}>"

    # -- reading -------------------------------------------------------------

    def time(self) -> float:
        """The loop's time, in virtual seconds (what ``loop.time()`` returns)."""
        return self._now

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the clock was installed."""
        return self._now - self._start

    @property
    def autojump(self) -> bool:
        """Whether an idle loop jumps to its next timer."""
        return self._autojump

    @autojump.setter
    def autojump(self, value: bool) -> None:
        self._autojump = bool(value)

    # -- installing ----------------------------------------------------------

    def install(self) -> VirtualClock:
        """Install the clock on the running loop; return the clock."""
        loop = asyncio.get_running_loop()
        selector = getattr(loop, "_selector", None)
        if not isinstance(loop, asyncio.BaseEventLoop) or selector is None:
            raise TypeError(
                f"VirtualClock needs asyncio's own selector event loop, not {loop!r}; uvloop "
                "keeps its timers in libuv and cannot run on virtual time: run the test "
                "without use_uvloop"
            )
        if self._loop is not None:
            raise RuntimeError(f"{self!r} is already installed")
        if loop in _installed or "time" in vars(loop) or "select" in vars(selector):
            raise RuntimeError(
                "another virtual clock is already installed on this event loop; use that one "
                "(asyncotp.testing.current_clock())"
            )
        self._loop = loop
        self._selector = selector
        self._real_select = selector.select
        # Start at the next whole second: time never goes back, and whole and
        # binary-fraction delays (1, 0.5, 60) add up exactly in ``elapsed``.
        self._now = self._start = float(math.ceil(loop.time()))
        loop.time = self.time  # type: ignore[method-assign]
        selector.select = self._select
        _installed[loop] = self
        return self

    def uninstall(self) -> None:
        """Give the loop its real clock back (idempotent)."""
        loop = self._loop
        if loop is None:
            return
        self._loop = None
        _installed.pop(loop, None)
        vars(loop).pop("time", None)
        vars(self._selector).pop("select", None)
        self._selector = None
        self._real_select = None
        waiters = [*self._idle_waiters, *(fut for _, _, fut in self._targets)]
        self._idle_waiters.clear()
        self._targets.clear()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def __enter__(self) -> VirtualClock:
        return self.install()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    # -- moving time ---------------------------------------------------------

    def _running_loop(self, operation: str) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            raise RuntimeError(
                f"VirtualClock.{operation}: the clock is not installed on the running loop; "
                "use `with VirtualClock() as clock:` inside the test"
            )
        return loop

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and return once everything due by
        then has run.

        Timers fire in order; between two of them, everything they made ready
        runs (so a timer armed by a callback fires too if it is due in the
        window). ``advance(0)`` runs what is ready now.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"VirtualClock.advance: seconds must be a number, not {seconds!r}")
        if not 0 <= seconds < math.inf:
            raise ValueError(
                f"VirtualClock.advance: seconds must be finite and >= 0, not {seconds!r}"
            )
        loop = self._running_loop("advance")
        fut: asyncio.Future[None] = loop.create_future()
        entry = (self._now + seconds, next(_order), fut)
        heapq.heappush(self._targets, entry)
        try:
            await fut
        finally:
            if entry in self._targets:
                self._targets.remove(entry)
                heapq.heapify(self._targets)

    async def wait_idle(self) -> None:
        """Return the next time the loop has nothing ready to run (time does
        not move for it)."""
        loop = self._running_loop("wait_idle")
        fut: asyncio.Future[None] = loop.create_future()
        self._idle_waiters.append(fut)
        try:
            await fut
        finally:
            if fut in self._idle_waiters:
                self._idle_waiters.remove(fut)

    @property
    def next_timer(self) -> float | None:
        """When the loop was last idle: the time of its next timer (None: none)."""
        return self._next_timer

    # -- the selector hook ---------------------------------------------------

    def _select(self, timeout: float | None = None) -> Any:
        real = self._real_select
        assert real is not None
        if timeout is not None and timeout <= 0:
            return real(0)
        events = real(0)
        if events:
            return events
        # Idle: nothing is ready and no timer is due; the loop would sleep.
        nxt = math.inf if timeout is None else self._now + timeout
        self._next_timer = None if timeout is None else nxt
        if self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
            return []
        while self._targets and self._targets[0][2].done():
            heapq.heappop(self._targets)
        if self._targets:
            target = self._targets[0][0]
            if nxt <= target:
                self._now = nxt
            else:
                self._now = max(self._now, target)
                while self._targets and self._targets[0][0] <= self._now:
                    fut = heapq.heappop(self._targets)[2]
                    if not fut.done():
                        fut.set_result(None)
            return []
        if self._autojump and timeout is not None:
            self._now = nxt
            return []
        return real(None)
