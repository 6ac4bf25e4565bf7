"""The Prometheus adapter: telemetry events into a ``prometheus_client`` registry.

``PrometheusMetrics`` attaches one telemetry handler (its ``handler_id``)
to the runtime's events and keeps counters, gauges and histograms up to
date as they happen; the few figures that are a state of the node rather
than a sum of events (actors alive, mailbox depths) are read from the node
at each scrape (``sample``), which ``MetricsApp`` does before it answers.

Labels stay bounded: actors appear by their registered name (unnamed
actors are only counted), supervisors by name (``unnamed`` otherwise) and
children by their id, all as text made by ``safe_str``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, Final, TypeAlias

import anyio
from anyio.abc import TaskStatus

from .._core import (
    BreakerState,
    Node,
    is_clean_exit,
    node_running,
    running_node,
    safe_str,
    telemetry,
)

try:
    import prometheus_client
    from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "asyncotp.metrics.prometheus needs prometheus-client: pip install 'asyncotp[prometheus]'"
    ) from exc

Scope: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send: TypeAlias = Callable[[MutableMapping[str, Any]], Awaitable[None]]

DEFAULT_BUCKETS: Final = (
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
"""Call-latency buckets in seconds: from 10 µs (a local call takes a few µs)
to 10 s (beyond the default call timeout)."""

UNNAMED: Final = "unnamed"

_EVENTS: Final = (
    telemetry.ACTOR_SPAWN,
    telemetry.ACTOR_EXIT,
    telemetry.CALL_STOP,
    telemetry.CALL_EXCEPTION,
    telemetry.SLOW_CALLBACK,
    telemetry.MAILBOX_OVERFLOW,
    telemetry.DEAD_LETTER,
    telemetry.LOOP_LAG,
    ("asyncotp", "supervisor", "child_restarted"),
    ("asyncotp", "supervisor", "child_terminated"),
    ("asyncotp", "supervisor", "child_start_failed"),
    ("asyncotp", "supervisor", "gave_up"),
    ("asyncotp", "breaker", "state_change"),
    ("asyncotp", "shedding", "shed"),
    ("asyncotp", "retry", "retry"),
    ("asyncotp", "retry", "gave_up"),
    ("asyncotp", "dead_letters", "buried"),
)


def _name(value: object) -> str:
    return value if type(value) is str else UNNAMED


class PrometheusMetrics:
    """asyncotp's metrics in a ``prometheus_client`` registry.

    Creating it registers the metrics in ``registry`` (a fresh
    ``CollectorRegistry`` if None; pass ``prometheus_client.REGISTRY`` to
    serve them with your own metrics) and attaches to the telemetry events
    under ``handler_id``; ``close()`` detaches (the metrics stay, frozen).
    Use it as a context manager to do both. Two instances need two
    handler ids and two registries.

    ``slow_callbacks=True`` also counts GenServer and StateMachine callbacks slower than
    ``telemetry.slow_callback_threshold()``. It is off by default because
    of its price: every server started while it is on times each callback
    (a wrapper coroutine and two clock reads a message, which made a cast
    about 1.7x as expensive in benchmarks/telemetry_overhead.py).

    Metrics (``namespace`` defaults to ``asyncotp``):

    * ``asyncotp_actors_alive``, ``asyncotp_mailbox_messages`` (all
      mailboxes) and ``asyncotp_mailbox_depth{actor}`` (named actors):
      gauges read from the node at each ``sample()``;
    * ``asyncotp_actors_spawned_total``, ``asyncotp_actor_exits_total{outcome}``
      (``clean`` or ``crash``);
    * ``asyncotp_call_duration_seconds{server}`` (histogram of answered
      calls), ``asyncotp_call_exceptions_total{server,error}``;
    * ``asyncotp_supervisor_restarts_total{supervisor,child}``,
      ``asyncotp_supervisor_child_exits_total{supervisor,child,outcome}``,
      ``asyncotp_supervisor_start_failures_total{supervisor,child}``,
      ``asyncotp_supervisor_give_ups_total{supervisor}``;
    * ``asyncotp_mailbox_overflow_total{actor,policy}``,
      ``asyncotp_dead_letters_total`` (messages to dead actors),
      ``asyncotp_dead_letter_jobs_total`` (jobs buried in a dead-letter queue);
    * ``asyncotp_breaker_state{breaker}`` (an enum: closed, open, half_open),
      ``asyncotp_breaker_transitions_total{breaker,state}``;
    * ``asyncotp_shed_requests_total{server,reason}``,
      ``asyncotp_retries_total{operation}``, ``asyncotp_retry_give_ups_total{operation}``;
    * ``asyncotp_slow_callbacks_total{server,callback}``,
      ``asyncotp_event_loop_lag_seconds`` (histogram of the lag sampler's samples).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace: str = "asyncotp",
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
        handler_id: str = "asyncotp.metrics.prometheus",
        slow_callbacks: bool = False,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.handler_id = handler_id
        reg, ns = self.registry, namespace
        self.actors_alive = Gauge("actors_alive", "Live actors", namespace=ns, registry=reg)
        self.mailbox_messages = Gauge(
            "mailbox_messages", "Messages queued in all mailboxes", namespace=ns, registry=reg
        )
        self.mailbox_depth = Gauge(
            "mailbox_depth", "Messages queued per named actor", ["actor"], namespace=ns,
            registry=reg,
        )  # fmt: skip
        self.spawned = Counter("actors_spawned", "Actors started", namespace=ns, registry=reg)
        self.exits = Counter(
            "actor_exits", "Actors ended, by outcome", ["outcome"], namespace=ns, registry=reg
        )
        self.call_duration = Histogram(
            "call_duration_seconds",
            "Duration of answered calls, from send to reply",
            ["server"],
            namespace=ns,
            buckets=buckets,
            registry=reg,
        )
        self.call_exceptions = Counter(
            "call_exceptions", "Calls that raised", ["server", "error"], namespace=ns,
            registry=reg,
        )  # fmt: skip
        self.restarts = Counter(
            "supervisor_restarts", "Children restarted", ["supervisor", "child"], namespace=ns,
            registry=reg,
        )  # fmt: skip
        self.child_exits = Counter(
            "supervisor_child_exits",
            "Children that ended on their own",
            ["supervisor", "child", "outcome"],
            namespace=ns,
            registry=reg,
        )
        self.start_failures = Counter(
            "supervisor_start_failures",
            "Child starts that failed",
            ["supervisor", "child"],
            namespace=ns,
            registry=reg,
        )
        self.give_ups = Counter(
            "supervisor_give_ups",
            "Supervisors that reached their restart intensity",
            ["supervisor"],
            namespace=ns,
            registry=reg,
        )
        self.overflow = Counter(
            "mailbox_overflow",
            "Messages refused or dropped by full mailboxes",
            ["actor", "policy"],
            namespace=ns,
            registry=reg,
        )
        self.dead_letters = Counter(
            "dead_letters", "Messages sent to actors that had ended", namespace=ns, registry=reg
        )
        self.buried = Counter(
            "dead_letter_jobs", "Jobs moved to a dead-letter queue", namespace=ns, registry=reg
        )
        self.breaker_state = Enum(
            "breaker_state",
            "Circuit breaker state",
            ["breaker"],
            namespace=ns,
            states=[state.value for state in BreakerState],
            registry=reg,
        )
        self.breaker_transitions = Counter(
            "breaker_transitions",
            "Circuit breaker state changes, by new state",
            ["breaker", "state"],
            namespace=ns,
            registry=reg,
        )
        self.shed = Counter(
            "shed_requests", "Requests shed unhandled", ["server", "reason"], namespace=ns,
            registry=reg,
        )  # fmt: skip
        self.retries = Counter(
            "retries", "Failed attempts retried", ["operation"], namespace=ns, registry=reg
        )
        self.retry_give_ups = Counter(
            "retry_give_ups", "Retries that gave up", ["operation"], namespace=ns, registry=reg
        )
        self.slow_callbacks = Counter(
            "slow_callbacks",
            "GenServer and StateMachine callbacks slower than the slow-callback threshold",
            ["server", "callback"],
            namespace=ns,
            registry=reg,
        )
        self.loop_lag = Histogram(
            "event_loop_lag_seconds",
            "Event-loop lag measured by the lag sampler",
            namespace=ns,
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=reg,
        )
        self._handlers: dict[telemetry.EventName, Callable[[dict[str, Any], dict[str, Any]], None]]
        self._handlers = {
            telemetry.ACTOR_SPAWN: self._on_spawn,
            telemetry.ACTOR_EXIT: self._on_exit,
            telemetry.CALL_STOP: self._on_call_stop,
            telemetry.CALL_EXCEPTION: self._on_call_exception,
            telemetry.SLOW_CALLBACK: self._on_slow,
            telemetry.MAILBOX_OVERFLOW: self._on_overflow,
            telemetry.DEAD_LETTER: self._on_dead_letter,
            telemetry.LOOP_LAG: self._on_lag,
            ("asyncotp", "supervisor", "child_restarted"): self._on_restart,
            ("asyncotp", "supervisor", "child_terminated"): self._on_child_exit,
            ("asyncotp", "supervisor", "child_start_failed"): self._on_start_failed,
            ("asyncotp", "supervisor", "gave_up"): self._on_give_up,
            ("asyncotp", "breaker", "state_change"): self._on_breaker,
            ("asyncotp", "shedding", "shed"): self._on_shed,
            ("asyncotp", "retry", "retry"): self._on_retry,
            ("asyncotp", "retry", "gave_up"): self._on_retry_give_up,
            ("asyncotp", "dead_letters", "buried"): self._on_buried,
        }
        events = [e for e in _EVENTS if slow_callbacks or e != telemetry.SLOW_CALLBACK]
        telemetry.attach_many(handler_id, events, self._handle)

    def __repr__(self) -> str:
        return f"<PrometheusMetrics {self.handler_id!r}>"

    def close(self) -> None:
        """Detach from the telemetry events (idempotent)."""
        telemetry.detach(self.handler_id)

    def __enter__(self) -> PrometheusMetrics:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def sample(self, node: Node | None = None) -> None:
        """Read the node's state into the gauges: live actors, queued messages,
        each named actor's mailbox depth. ``node`` defaults to the running
        node of the calling task; without one, nothing changes. Call it on
        the node's loop (``MetricsApp`` does, before each scrape)."""
        if node is None:
            node = running_node()
        if node is None or not node_running(node):
            return
        alive, queued, named = telemetry.mailbox_depths(node)
        self.actors_alive.set(alive)
        self.mailbox_messages.set(queued)
        self.mailbox_depth.clear()  # actors that ended leave no stale series
        for name, length in named:
            self.mailbox_depth.labels(name).set(length)

    def exposition(self, node: Node | None = None) -> bytes:
        """``sample(node)``, then the registry in the text exposition format."""
        self.sample(node)
        return prometheus_client.generate_latest(self.registry)

    # -- the telemetry handler ---------------------------------------------

    def _handle(
        self,
        event: telemetry.EventName,
        measurements: dict[str, Any],
        metadata: dict[str, Any],
        config: Any,
    ) -> None:
        self._handlers[event](measurements, metadata)

    def _on_spawn(self, _m: dict[str, Any], _meta: dict[str, Any]) -> None:
        self.spawned.inc()

    def _on_exit(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.exits.labels("clean" if meta["clean"] else "crash").inc()

    def _on_call_stop(self, m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.call_duration.labels(_name(meta["name"])).observe(m["duration"])

    def _on_call_exception(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.call_exceptions.labels(_name(meta["name"]), meta["kind"].__name__).inc()

    def _on_slow(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.slow_callbacks.labels(meta["server"], meta["callback"]).inc()

    def _on_overflow(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.overflow.labels(_name(meta["name"]), meta["policy"].name.lower()).inc()

    def _on_dead_letter(self, _m: dict[str, Any], _meta: dict[str, Any]) -> None:
        self.dead_letters.inc()

    def _on_lag(self, m: dict[str, Any], _meta: dict[str, Any]) -> None:
        self.loop_lag.observe(m["lag"])

    def _child(self, meta: dict[str, Any]) -> tuple[str, str]:
        return _name(meta["supervisor_name"]), safe_str(meta["child_id"])

    def _on_restart(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.restarts.labels(*self._child(meta)).inc()

    def _on_child_exit(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        outcome = "clean" if is_clean_exit(meta["reason"]) else "crash"
        self.child_exits.labels(*self._child(meta), outcome).inc()

    def _on_start_failed(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.start_failures.labels(*self._child(meta)).inc()

    def _on_give_up(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.give_ups.labels(_name(meta["supervisor_name"])).inc()

    def _on_breaker(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        breaker = _name(meta["name"])
        state: BreakerState = meta["state"]
        self.breaker_state.labels(breaker).state(state.value)
        self.breaker_transitions.labels(breaker, state.value).inc()

    def _on_shed(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.shed.labels(_name(meta["name"]), meta["reason"].name.lower()).inc()

    def _on_retry(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.retries.labels(safe_str(meta["operation"])).inc()

    def _on_retry_give_up(self, _m: dict[str, Any], meta: dict[str, Any]) -> None:
        self.retry_give_ups.labels(safe_str(meta["operation"])).inc()

    def _on_buried(self, _m: dict[str, Any], _meta: dict[str, Any]) -> None:
        self.buried.inc()


class MetricsApp:
    """An ASGI application serving ``GET /metrics`` (and ``HEAD``) from a
    ``PrometheusMetrics``: it samples the node, then answers in the text
    exposition format. Mount it next to the ``HealthApp`` in any ASGI
    framework, or serve it alone with ``serve_metrics``. Other paths: 404;
    other methods: 405. ``node`` is the node to sample (default: the node of
    the task that handles the request)."""

    def __init__(self, metrics: PrometheusMetrics, *, node: Node | None = None) -> None:
        if not isinstance(metrics, PrometheusMetrics):
            raise TypeError(
                f"MetricsApp takes a PrometheusMetrics, not {safe_str(metrics)}; "
                "make one with PrometheusMetrics()"
            )
        self.metrics = metrics
        self.node = node

    def __repr__(self) -> str:
        return f"<MetricsApp {self.metrics!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):  # mounted: the path below the mount point
            path = path[len(root) :]
        method = scope.get("method", "GET")
        if path.rstrip("/") not in ("/metrics", ""):
            await _respond(send, 404, b"not found: try /metrics\n", "text/plain")
            return
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", "text/plain")
            return
        body = self.metrics.exposition(self.node)
        await _respond(send, 200, b"" if method == "HEAD" else body, _CONTENT_TYPE, len(body))


_CONTENT_TYPE: Final = prometheus_client.CONTENT_TYPE_LATEST


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message.get("type") == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message.get("type") == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(
    send: Send, status: int, body: bytes, content_type: str, length: int | None = None
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body) if length is None else length).encode()),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def _no_signal_capture() -> Iterator[None]:
    yield


async def serve_metrics(
    metrics: PrometheusMetrics | MetricsApp,
    *,
    host: str = "127.0.0.1",
    port: int = 9464,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``/metrics`` with uvicorn in the running event loop until
    cancelled (needs the ``asgi`` extra too, for uvicorn).

    Loopback by default; ``port=0`` picks a free port, reported through
    ``task_status`` once the socket listens. Run it as an actor
    (``spawn(functools.partial(serve_metrics, metrics, port=9464))``) or a
    supervised child, or in a task group with ``await tg.start(...)``.
    uvicorn's signal handlers and logging configuration are not installed:
    signals stay the program's (``Application.run``)."""
    try:
        import uvicorn  # noqa: PLC0415 - optional dependency
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "serve_metrics needs uvicorn: pip install 'asyncotp[asgi,prometheus]' (or mount "
            "the MetricsApp in the ASGI server of your choice)"
        ) from exc
    app = metrics if isinstance(metrics, MetricsApp) else MetricsApp(metrics)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    try:
        bound = sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, lifespan="on", access_log=False)
        server = uvicorn.Server(config)
        server.capture_signals = _no_signal_capture  # type: ignore[method-assign]
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    except BaseException:
        sock.close()
        raise
    try:
        task_status.started(bound)
        await asyncio.shield(serving)
    except BaseException:
        if not serving.done():
            server.should_exit = True
            try:
                with anyio.CancelScope(shield=True):
                    await asyncio.shield(serving)
            except BaseException:
                server.force_exit = True
                serving.cancel()
                raise
        raise
    finally:
        sock.close()
