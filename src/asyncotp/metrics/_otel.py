"""The OpenTelemetry adapter: telemetry events into OTel metric instruments.

``OTelMetrics`` attaches one telemetry handler and records each event on
an instrument of a ``Meter`` (from the given ``MeterProvider``, or the
global one). Names follow the OpenTelemetry semantic conventions where one
fits: a call is an RPC (``rpc.client.call.duration``, seconds, with
``rpc.system.name``, ``rpc.service`` and, for a failed call,
``error.type``); everything else is asyncotp's own, under ``asyncotp.``.

Instruments are recorded on the node's loop, where the events happen;
the SDK's readers and exporters collect them from any thread. The
breaker-state gauge is observed from a snapshot the adapter keeps, so it
never touches the runtime from the collecting thread.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

from .._core import (
    BreakerState,
    ChildSpec,
    Node,
    Pid,
    Restart,
    is_clean_exit,
    node_running,
    running_node,
    safe_str,
    spawn,
    telemetry,
    validate,
)

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "asyncotp.metrics.otel needs opentelemetry-api (and an SDK to export): "
        "pip install 'asyncotp[otel]'"
    ) from exc

CALL_DURATION: Final = "rpc.client.call.duration"
"""The semantic-convention name of an outgoing RPC's duration (seconds)."""

UNNAMED: Final = "unnamed"

_BUCKETS: Final = (
    0.00001,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def _name(value: object) -> str:
    return value if type(value) is str else UNNAMED


class OTelMetrics:
    """asyncotp's metrics as OpenTelemetry instruments.

    ``meter_provider`` defaults to the global one
    (``opentelemetry.metrics.get_meter_provider()``); creating the adapter
    attaches to the telemetry events under ``handler_id``, ``close()``
    detaches (it is a context manager too). ``node`` (default: the running
    node of the calling task, if any) seeds ``asyncotp.actor.count`` with
    the actors already alive, so that the count stays exact.
    ``slow_callbacks=True`` also records ``asyncotp.callback.slow``; it is
    off by default for its price (see ``PrometheusMetrics``).

    Instruments:

    * ``rpc.client.call.duration`` (histogram, s): every call, answered or
      not; attributes ``rpc.system.name="asyncotp"``, ``rpc.service`` (the
      server's registered name, or ``unnamed``), ``error.type`` (the
      exception class) on a failed call;
    * ``asyncotp.actor.count`` (up-down counter), ``asyncotp.actor.spawns``,
      ``asyncotp.actor.exits`` (``asyncotp.outcome``: ``clean``/``crash``);
    * ``asyncotp.supervisor.restarts``, ``asyncotp.supervisor.child_exits``,
      ``asyncotp.supervisor.start_failures``, ``asyncotp.supervisor.give_ups``
      (attributes ``asyncotp.supervisor`` and ``asyncotp.child``);
    * ``asyncotp.mailbox.overflows`` (``asyncotp.actor``,
      ``asyncotp.overflow.policy``), ``asyncotp.dead_letters``,
      ``asyncotp.dead_letter_jobs``;
    * ``asyncotp.breaker.state`` (observable gauge: 1 for each breaker's
      current state, 0 for the others), ``asyncotp.breaker.transitions``;
    * ``asyncotp.shedding.shed`` (``asyncotp.reason``),
      ``asyncotp.retry.retries``, ``asyncotp.retry.give_ups``
      (``asyncotp.operation``);
    * ``asyncotp.callback.slow`` (``asyncotp.server``, ``asyncotp.callback``),
      ``asyncotp.event_loop.lag`` (histogram, s);
    * ``asyncotp.mailbox.depth`` (``asyncotp.actor``: named actors) and
      ``asyncotp.mailbox.messages`` (all mailboxes): observable gauges of
      the last ``sample()``; put ``sampler_spec()`` in your tree to sample
      on the loop at an interval (readers collect from their own thread,
      which must not touch the runtime).
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        *,
        handler_id: str = "asyncotp.metrics.otel",
        node: Node | None = None,
        slow_callbacks: bool = False,
    ) -> None:
        provider = meter_provider or otel_metrics.get_meter_provider()
        meter: Meter = provider.get_meter("asyncotp")
        self.meter = meter
        self.handler_id = handler_id
        self.call_duration = meter.create_histogram(
            CALL_DURATION,
            unit="s",
            description="Duration of calls to asyncotp servers, from send to reply or error",
            explicit_bucket_boundaries_advisory=_BUCKETS,
        )
        self.actor_count = meter.create_up_down_counter(
            "asyncotp.actor.count", unit="{actor}", description="Live actors"
        )
        self.spawns = meter.create_counter(
            "asyncotp.actor.spawns", unit="{actor}", description="Actors started"
        )
        self.exits = meter.create_counter(
            "asyncotp.actor.exits", unit="{actor}", description="Actors ended, by outcome"
        )
        self.restarts = meter.create_counter(
            "asyncotp.supervisor.restarts", unit="{restart}", description="Children restarted"
        )
        self.child_exits = meter.create_counter(
            "asyncotp.supervisor.child_exits",
            unit="{exit}",
            description="Children that ended on their own",
        )
        self.start_failures = meter.create_counter(
            "asyncotp.supervisor.start_failures",
            unit="{failure}",
            description="Child starts that failed",
        )
        self.give_ups = meter.create_counter(
            "asyncotp.supervisor.give_ups",
            unit="{give_up}",
            description="Supervisors that reached their restart intensity",
        )
        self.overflows = meter.create_counter(
            "asyncotp.mailbox.overflows",
            unit="{message}",
            description="Messages refused or dropped by full mailboxes",
        )
        self.dead_letters = meter.create_counter(
            "asyncotp.dead_letters",
            unit="{message}",
            description="Messages sent to actors that had ended",
        )
        self.buried = meter.create_counter(
            "asyncotp.dead_letter_jobs",
            unit="{job}",
            description="Jobs moved to a dead-letter queue",
        )
        self.transitions = meter.create_counter(
            "asyncotp.breaker.transitions",
            unit="{transition}",
            description="Circuit breaker state changes, by new state",
        )
        self.shed = meter.create_counter(
            "asyncotp.shedding.shed", unit="{request}", description="Requests shed unhandled"
        )
        self.retries = meter.create_counter(
            "asyncotp.retry.retries", unit="{attempt}", description="Failed attempts retried"
        )
        self.retry_give_ups = meter.create_counter(
            "asyncotp.retry.give_ups", unit="{operation}", description="Retries that gave up"
        )
        self.slow = meter.create_counter(
            "asyncotp.callback.slow",
            unit="{callback}",
            description=(
                "GenServer and StateMachine callbacks slower than the slow-callback threshold"
            ),
        )
        self.loop_lag = meter.create_histogram(
            "asyncotp.event_loop.lag",
            unit="s",
            description="Event-loop lag measured by the lag sampler",
        )
        self._breakers: dict[str, BreakerState] = {}
        self._depths: list[tuple[str, int]] = []
        self._queued: int | None = None
        self._lock = threading.Lock()
        meter.create_observable_gauge(
            "asyncotp.mailbox.depth",
            callbacks=[self._observe_depths],
            unit="{message}",
            description="Messages queued per named actor, at the last sample",
        )
        meter.create_observable_gauge(
            "asyncotp.mailbox.messages",
            callbacks=[self._observe_queued],
            unit="{message}",
            description="Messages queued in all mailboxes, at the last sample",
        )
        meter.create_observable_gauge(
            "asyncotp.breaker.state",
            callbacks=[self._observe_breakers],
            unit="1",
            description="1 for each circuit breaker's current state, 0 for the others",
        )
        handlers: dict[telemetry.EventName, Callable[[dict[str, Any], dict[str, Any]], None]] = {
            telemetry.ACTOR_SPAWN: self._on_spawn,
            telemetry.ACTOR_EXIT: self._on_exit,
            telemetry.CALL_STOP: self._on_call,
            telemetry.CALL_EXCEPTION: self._on_call,
            telemetry.MAILBOX_OVERFLOW: self._on_overflow,
            telemetry.DEAD_LETTER: lambda _m, _meta: self.dead_letters.add(1),
            telemetry.LOOP_LAG: lambda m, _meta: self.loop_lag.record(m["lag"]),
            ("asyncotp", "supervisor", "child_restarted"): self._on_restart,
            ("asyncotp", "supervisor", "child_terminated"): self._on_child_exit,
            ("asyncotp", "supervisor", "child_start_failed"): self._on_start_failed,
            ("asyncotp", "supervisor", "gave_up"): self._on_give_up,
            ("asyncotp", "breaker", "state_change"): self._on_breaker,
            ("asyncotp", "shedding", "shed"): self._on_shed,
            ("asyncotp", "retry", "retry"): self._on_retry,
            ("asyncotp", "retry", "gave_up"): self._on_retry_give_up,
            ("asyncotp", "dead_letters", "buried"): lambda _m, _meta: self.buried.add(1),
        }
        if slow_callbacks:
            handlers[telemetry.SLOW_CALLBACK] = self._on_slow
        self._handlers = handlers
        telemetry.attach_many(handler_id, list(handlers), self._handle)
        seed = node if node is not None else running_node()
        if seed is not None and node_running(seed):
            self.actor_count.add(telemetry.mailbox_depths(seed)[0])

    def __repr__(self) -> str:
        return f"<OTelMetrics {self.handler_id!r}>"

    def close(self) -> None:
        """Detach from the telemetry events (idempotent)."""
        telemetry.detach(self.handler_id)

    def __enter__(self) -> OTelMetrics:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sample(self, node: Node | None = None) -> None:
        """Read the mailboxes of ``node`` (default: the running node of the
        calling task) for the mailbox gauges. Call it on the node's loop."""
        if node is None:
            node = running_node()
        if node is None or not node_running(node):
            return
        _alive, queued, named = telemetry.mailbox_depths(node)
        with self._lock:
            self._depths = named
            self._queued = queued

    def sampler_spec(self, interval: float = 5.0, *, id: str = "otel_sampler") -> ChildSpec:  # noqa: A002 - ChildSpec's field
        """A child spec for an actor that calls ``sample()`` every
        ``interval`` seconds (> 0), for the tree's lifetime."""
        seconds = validate.duration(interval, "interval", where="OTelMetrics.sampler_spec")
        return ChildSpec(
            id=id,
            start=functools.partial(self._start_sampler, seconds),
            restart=Restart.PERMANENT,
            shutdown=0.0,
        )

    async def _start_sampler(self, interval: float) -> Pid:
        return spawn(self._sampling, interval)

    async def _sampling(self, interval: float) -> None:
        while True:
            self.sample()
            await asyncio.sleep(interval)

    def _observe_depths(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            depths = list(self._depths)
        return [Observation(length, {"asyncotp.actor": name}) for name, length in depths]

    def _observe_queued(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            queued = self._queued
        return [] if queued is None else [Observation(queued)]

    def _handle(
        self,
        event: telemetry.EventName,
        measurements: dict[str, Any],
        metadata: dict[str, Any],
        config: Any,
    ) -> None:
        self._handlers[event](measurements, metadata)

    def _observe_breakers(self, _options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            current = dict(self._breakers)
        return [
            Observation(
                1 if state is now else 0,
                {"asyncotp.breaker": breaker, "asyncotp.breaker.state": state.value},
            )
            for breaker, now in current.items()
            for state in BreakerState
        ]

    def _on_spawn(self, _m: dict[str, Any], _meta: dict[str, Any]) -> None:
        self.spawns.add(1)
        self.actor_count.add(1)

    def _on_exit(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.actor_count.add(-1)
        self.exits.add(1, {"asyncotp.outcome": "clean" if meta["clean"] else "crash"})

    def _on_call(self, m: dict[str, Any], meta: dict[str, Any]) -> None:
        attributes = {"rpc.system.name": "asyncotp", "rpc.service": _name(meta["name"])}
        kind = meta.get("kind")
        if kind is not None:
            attributes["error.type"] = kind.__qualname__
        self.call_duration.record(m["duration"], attributes)

    def _on_overflow(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.overflows.add(
            1,
            {
                "asyncotp.actor": _name(meta["name"]),
                "asyncotp.overflow.policy": meta["policy"].name.lower(),
            },
        )

    def _child(self, meta: dict[str, Any]) -> dict[str, str]:
        return {
            "asyncotp.supervisor": _name(meta["supervisor_name"]),
            "asyncotp.child": safe_str(meta["child_id"]),
        }

    def _on_restart(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.restarts.add(1, self._child(meta))

    def _on_child_exit(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        outcome = "clean" if is_clean_exit(meta["reason"]) else "crash"
        self.child_exits.add(1, {**self._child(meta), "asyncotp.outcome": outcome})

    def _on_start_failed(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.start_failures.add(1, self._child(meta))

    def _on_give_up(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.give_ups.add(1, {"asyncotp.supervisor": _name(meta["supervisor_name"])})

    def _on_breaker(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        breaker = _name(meta["name"])
        state: BreakerState = meta["state"]
        with self._lock:
            self._breakers[breaker] = state
        self.transitions.add(
            1, {"asyncotp.breaker": breaker, "asyncotp.breaker.state": state.value}
        )

    def _on_shed(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.shed.add(
            1,
            {
                "asyncotp.server": _name(meta["name"]),
                "asyncotp.reason": meta["reason"].name.lower(),
            },
        )

    def _on_retry(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.retries.add(1, {"asyncotp.operation": safe_str(meta["operation"])})

    def _on_retry_give_up(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.retry_give_ups.add(1, {"asyncotp.operation": safe_str(meta["operation"])})

    def _on_slow(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.slow.add(1, {"asyncotp.server": meta["server"], "asyncotp.callback": meta["callback"]})
