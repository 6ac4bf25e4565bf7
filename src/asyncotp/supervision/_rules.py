"""The pure rules of supervision: restart intensity and restart plans.

No event loop and no clock here: every function takes the time it needs as
an argument, so the rules are tested exhaustively with hypothesis.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

import attrs

from .._core import Restart, Strategy, is_clean_exit


def add_restart(
    history: tuple[float, ...], now: float, max_restarts: int, max_seconds: float
) -> tuple[tuple[float, ...], bool]:
    """Record one restart at ``now``; return the new history and whether the
    supervisor may go on.

    The history keeps the restarts of the last ``max_seconds`` (a restart
    exactly ``max_seconds`` old has left the window). The supervisor gives up
    when, with this one, more than ``max_restarts`` restarts fall in the
    window, as in OTP.
    """
    # The history is in time order: the restarts still in the window are
    # those after now - max_seconds, found by bisection.
    new = (*history[bisect.bisect_right(history, now - max_seconds) :], now)
    return new, len(new) <= max_restarts


class RestartWindow:
    """``add_restart`` with a mutable history, O(1) amortised per restart.

    A supervisor records every restart here; ``add(now)`` answers exactly as
    ``add_restart`` would (property-tested), without copying the history, so
    a supervisor allowed many restarts per window does not slow down as it
    uses them.
    """

    __slots__ = ("_times", "max_restarts", "max_seconds")

    def __init__(self, max_restarts: int, max_seconds: float) -> None:
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self._times: deque[float] = deque()

    def add(self, now: float) -> bool:
        """Record a restart at ``now``; return whether the supervisor may go on."""
        times = self._times
        horizon = now - self.max_seconds
        while times and times[0] <= horizon:
            times.popleft()
        times.append(now)
        return len(times) <= self.max_restarts

    def count(self, now: float) -> int:
        """Restarts in the window that ends at ``now``."""
        horizon = now - self.max_seconds
        return sum(1 for t in self._times if t > horizon)

    def history(self) -> tuple[float, ...]:
        return tuple(self._times)


def needs_restart(restart: Restart, reason: object) -> bool:
    """Whether a child that ended with ``reason`` is to be restarted."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return not is_clean_exit(reason)
    return False


K = TypeVar("K", bound=Hashable)


@attrs.frozen
class RestartPlan(Generic[K]):
    """What a supervisor does when child ``failed`` must be restarted.

    ``stop``: running children to stop, in that order (reverse start order).
    ``remove``: temporary children that are stopped and forgotten.
    ``start``: children to start, in that order (start order).
    """

    stop: tuple[K, ...]
    remove: tuple[K, ...]
    start: tuple[K, ...]


def plan_restart(
    strategy: Strategy,
    children: Sequence[tuple[K, bool, Restart]],
    failed: K,
) -> RestartPlan[K]:
    """The restart plan for ``failed`` under ``strategy``.

    ``children`` lists every child in start order as ``(key, running,
    restart)``, where a key is anything hashable that tells the children
    apart (their ids, or a supervisor's own records of them, compared by
    identity); the failed child itself is no longer running. As in OTP, the
    affected children (all of them for ``ONE_FOR_ALL``, the failed one and
    those after it for ``REST_FOR_ONE``) that run are stopped in reverse
    order, the temporary ones among them are forgotten, and every remaining
    affected child is started again in order, whether or not it was running.
    """
    ids = [child_id for child_id, _, _ in children]
    if failed not in ids:
        raise ValueError(f"plan_restart: {failed!r} is not one of the children {ids!r}")
    if strategy is Strategy.ONE_FOR_ONE:
        return RestartPlan(stop=(), remove=(), start=(failed,))
    if strategy is Strategy.ONE_FOR_ALL:
        affected = list(children)
    else:
        affected = list(children[ids.index(failed) :])
    stop = tuple(
        child_id for child_id, running, _ in reversed(affected) if running and child_id != failed
    )
    remove = tuple(
        child_id
        for child_id, _, restart in affected
        if restart is Restart.TEMPORARY and child_id != failed
    )
    start = tuple(child_id for child_id, _, _ in affected if child_id not in remove)
    return RestartPlan(stop=stop, remove=remove, start=start)
