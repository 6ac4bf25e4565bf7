"""Telemetry events: see what the runtime does, as Elixir's ``:telemetry``.

Attach a plain function to the events you care about; the runtime calls it,
synchronously, where the event happens::

    from asyncotp import telemetry

    def on_call(event, measurements, metadata, config):
        config.observe(measurements["duration"])

    telemetry.attach("latency", ("asyncotp", "call", "stop"), on_call, config=histogram)
    ...
    telemetry.detach("latency")

Every event has a name (a tuple of strings), ``measurements`` (numbers) and
``metadata`` (who and why); docs/telemetry.md lists the runtime's events in
one table. Your own code emits with ``execute`` or times a block with
``span``. A handler that raises is detached and logged once; the code that
emitted never sees the error. With nothing attached, the runtime pays one
attribute read per emission site; calls are timed only while a handler
listens to ``("asyncotp", "call", ...)``.

The metrics adapters (``asyncotp.metrics.prometheus``,
``asyncotp.metrics.otel``) are built on these events.
"""

from ._core import HandlerExists, lag_sampler_spec, start_lag_sampler
from ._core import publish as _publish
from ._core import telemetry as _telemetry

EventName = _telemetry.EventName
Handler = _telemetry.Handler
HandlerInfo = _telemetry.HandlerInfo
attach = _telemetry.attach
attach_many = _telemetry.attach_many
detach = _telemetry.detach
execute = _telemetry.execute
list_handlers = _telemetry.list_handlers
RUNTIME_EVENTS = _telemetry.RUNTIME_EVENTS
set_slow_callback_threshold = _telemetry.set_slow_callback_threshold
slow_callback_threshold = _telemetry.slow_callback_threshold
span = _telemetry.span

__all__ = (
    "RUNTIME_EVENTS",
    "EventName",
    "Handler",
    "HandlerExists",
    "HandlerInfo",
    "attach",
    "attach_many",
    "detach",
    "execute",
    "lag_sampler_spec",
    "list_handlers",
    "set_slow_callback_threshold",
    "slow_callback_threshold",
    "span",
    "start_lag_sampler",
)

_publish(
    (
        HandlerExists,
        HandlerInfo,
        attach,
        attach_many,
        detach,
        execute,
        lag_sampler_spec,
        list_handlers,
        set_slow_callback_threshold,
        slow_callback_threshold,
        span,
        start_lag_sampler,
    ),
    __name__,
)
