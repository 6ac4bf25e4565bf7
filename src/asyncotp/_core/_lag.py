"""The event-loop lag sampler: an actor that emits ``("asyncotp", "loop", "lag")``.

Every ``interval`` seconds it asks the loop to wake it and measures how late
the wake-up came: the time the loop was busy with other work (a callback
that blocked it, a burst of ready tasks, a garbage collection). The user
starts it, as a plain actor or as a child of a supervisor; it costs one
timer per interval and nothing else.
"""

from __future__ import annotations

import asyncio
import functools

from . import _telemetry
from ._actor import spawn
from ._childspec import ChildSpec, Restart
from ._pid import Pid
from ._validate import check_name, duration


async def _sample(interval: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(interval)
        lag = max(0.0, loop.time() - asked - interval)
        if _telemetry.ANY:
            _telemetry.execute(_telemetry.LOOP_LAG, {"lag": lag, "interval": interval}, {})


def _interval(interval: object, where: str) -> float:
    return duration(interval, "interval", where=where)


def start_lag_sampler(interval: float = 1.0, *, name: str | None = None) -> Pid:
    """Start the lag sampler as a plain actor and return its pid.

    Every ``interval`` seconds (> 0, default 1.0) it emits
    ``("asyncotp", "loop", "lag")`` with the measurements ``lag`` (seconds
    the wake-up came late) and ``interval``. Stop it with ``stop(pid)``; it
    ends with its node. Under a supervisor, use ``lag_sampler_spec``.
    """
    seconds = _interval(interval, "telemetry.start_lag_sampler")
    if name is not None:
        check_name(name, "telemetry.start_lag_sampler")
    return spawn(_sample, seconds, name=name)


async def _start_child(interval: float, name: str | None) -> Pid:
    return spawn(_sample, interval, name=name)


def lag_sampler_spec(
    interval: float = 1.0,
    *,
    id: str = "loop_lag_sampler",  # noqa: A002 - ChildSpec's own field name, as in child_spec(id=...)
    name: str | None = None,
) -> ChildSpec:
    """A child spec for the lag sampler (permanent, shutdown at once): put it
    in a supervisor's children to sample the loop for the tree's lifetime."""
    seconds = _interval(interval, "telemetry.lag_sampler_spec")
    if name is not None:
        check_name(name, "telemetry.lag_sampler_spec")
    return ChildSpec(
        id=id,
        start=functools.partial(_start_child, seconds, name),
        restart=Restart.PERMANENT,
        shutdown=0.0,
    )
