"""Helpers shared by both sides of the benchmarks: clocks, memory, statistics.

Nothing here is specific to asyncotp or to the raw-asyncio floor, so both
sides pay exactly the same for it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any

perf = time.perf_counter
"""The wall clock: used for per-event latencies (call percentiles, restarts)."""

_clock = time.process_time


def set_clock(kind: str) -> None:
    """Choose the clock of the aggregate timings: ``"cpu"`` (this process's
    CPU time, the default) or ``"wall"``.

    The workloads are single-threaded and CPU-bound: the event loop always has
    ready work and never sleeps, so on an idle machine CPU time equals wall
    time. On a shared machine, CPU time leaves out the time the process
    waited for a core, which otherwise dominates the noise.
    """
    global _clock
    _clock = time.process_time if kind == "cpu" else time.perf_counter


def timer() -> float:
    """The clock chosen with ``set_clock``, for aggregate timings."""
    return _clock()


_PAGE = os.sysconf("SC_PAGE_SIZE")

# The loggers the two sides report crashes to. Their level drops everything:
# crash reports are still emitted (the restart workload pays for the
# `logger.error` call and whatever the runtime builds for it) but never
# formatted nor written, so we measure the runtime, not a log handler.
LOGGERS = ("asyncotp", "floor")


class Unavailable(Exception):
    """A workload that cannot run on this checkout (for example, no Supervisor yet)."""


def quiet_logging() -> None:
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def rss_bytes() -> int:
    """The resident set size of this process, from /proc/self/statm."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: ru_maxrss is a high-water mark, the best we have
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def settled_rss() -> int:
    """RSS after a full collection, so garbage does not count as growth."""
    gc.collect()
    gc.collect()
    return rss_bytes()


_gc = {"total": 0.0, "started": 0.0}


def _gc_callback(phase: str, _info: dict[str, int]) -> None:
    if phase == "start":
        _gc["started"] = _clock()
    else:
        _gc["total"] += _clock() - _gc["started"]


gc.callbacks.append(_gc_callback)


def gc_seconds() -> float:
    """Seconds (on the ``set_clock`` clock) spent in the garbage collector so
    far, every collection included: read it around a timed phase."""
    return _gc["total"]


def gc_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0..100) of an already sorted list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def run_floor(main: Callable[..., Coroutine[Any, Any, Any]], *args: Any, uvloop: bool) -> Any:
    """Run the floor's ``main`` exactly as anyio runs asyncotp's: an
    ``asyncio.Runner``, with uvloop's loop factory when asked."""
    loop_factory = None
    if uvloop:
        import uvloop as _uvloop

        loop_factory = _uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main(*args))
