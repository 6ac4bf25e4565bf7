"""Telemetry: an event bus in the spirit of Erlang/Elixir's ``:telemetry``.

A *handler* is attached to one or more *event names* (tuples of strings such
as ``("asyncotp", "call", "stop")``); ``execute`` runs every handler attached
to an event, synchronously, in the task that emits it, with a mapping of
*measurements* (numbers: durations in seconds, counts, lengths) and a
mapping of *metadata* (pids, names, reasons). A handler that raises is
detached (all its events, as ``:telemetry`` does) and logged once, on the
``asyncotp`` logger, naming the handler id and the event; the emitter never
sees the error.

The table is process-wide (as ``:telemetry``'s is per BEAM node): every
asyncotp node in the Python process emits to the same handlers, which is
what a metrics exporter wants. Attach and detach are for the event loop's
thread (or before any node runs); handlers are plain functions, not
coroutines.

The runtime's emission sites are guarded by the module-level booleans
below (``CALLS``, ``ACTORS``, ``SLOW``, ``ANY``), recomputed at every attach
and detach: with nothing attached, a site costs one attribute read.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs

from ._errors import HandlerExists
from ._reasons import is_clean_exit
from ._safe import safe_repr
from ._validate import duration, is_async_callable

if TYPE_CHECKING:
    from ._pid import Pid
    from ._state import Process

logger = logging.getLogger("asyncotp")

EventName: TypeAlias = tuple[str, ...]
"""An event's name: a non-empty tuple of strings, most general first."""

Handler: TypeAlias = Callable[[EventName, dict[str, float], dict[str, Any], Any], None]
"""``handler(event_name, measurements, metadata, config) -> None``."""


@attrs.frozen
class HandlerInfo:
    """One attached handler, as ``list_handlers`` reports it: its ``id``, the
    ``event_name`` it is attached to, the ``function`` and its ``config``."""

    id: str
    event_name: EventName
    function: Handler = attrs.field(repr=False)
    config: Any = attrs.field(repr=False)


# The handlers: by event name (what ``execute`` reads) and by id.
_table: dict[EventName, tuple[HandlerInfo, ...]] = {}
_by_id: dict[str, tuple[HandlerInfo, ...]] = {}

# -- the guards the runtime's emission sites read -----------------------------
ANY = False
"""Some handler is attached: rare events (supervisor reports, overflow, the
resilience layer) build their measurements only then."""
CALLS = False
"""A handler listens to ``("asyncotp", "call", ...)``: calls are timed."""
ACTORS = False
"""A handler listens to ``("asyncotp", "actor", ...)``: spawns and exits emit."""
SLOW = False
"""A handler listens to ``SLOW_CALLBACK``: servers started now time their callbacks."""

# -- the runtime's event names (docs/telemetry.md has the table) --------------
ACTOR_SPAWN: Final = ("asyncotp", "actor", "spawn")
ACTOR_EXIT: Final = ("asyncotp", "actor", "exit")
CALL_START: Final = ("asyncotp", "call", "start")
CALL_STOP: Final = ("asyncotp", "call", "stop")
CALL_EXCEPTION: Final = ("asyncotp", "call", "exception")
SLOW_CALLBACK: Final = ("asyncotp", "callback", "slow")
MAILBOX_OVERFLOW: Final = ("asyncotp", "mailbox", "overflow")
DEAD_LETTER: Final = ("asyncotp", "message", "dead_letter")
LOOP_LAG: Final = ("asyncotp", "loop", "lag")

RUNTIME_EVENTS: Final = (
    ACTOR_SPAWN,
    ACTOR_EXIT,
    CALL_START,
    CALL_STOP,
    CALL_EXCEPTION,
    SLOW_CALLBACK,
    MAILBOX_OVERFLOW,
    DEAD_LETTER,
    LOOP_LAG,
    ("asyncotp", "supervisor", "child_started"),
    ("asyncotp", "supervisor", "child_restarted"),
    ("asyncotp", "supervisor", "child_terminated"),
    ("asyncotp", "supervisor", "child_start_failed"),
    ("asyncotp", "supervisor", "child_killed"),
    ("asyncotp", "supervisor", "child_shutdown"),
    ("asyncotp", "supervisor", "gave_up"),
    ("asyncotp", "breaker", "state_change"),
    ("asyncotp", "shedding", "shed"),
    ("asyncotp", "retry", "retry"),
    ("asyncotp", "retry", "gave_up"),
    ("asyncotp", "dead_letters", "buried"),
)
"""Every event the runtime emits (docs/telemetry.md describes each)."""

_slow_threshold = 0.1
"""Seconds a GenServer or StateMachine callback may take before
``SLOW_CALLBACK`` fires (asyncio's own ``slow_callback_duration`` default)."""

_span_ids = itertools.count(1)


_clock = time.perf_counter

# The handlers of the call events, looked up at attach time for the hot path.
_call_start: tuple[HandlerInfo, ...] = ()
_call_stop: tuple[HandlerInfo, ...] = ()
_call_exception: tuple[HandlerInfo, ...] = ()


def _recompute() -> None:
    global ANY, CALLS, ACTORS, SLOW, _call_start, _call_stop, _call_exception
    names = _table.keys()
    _call_start = _table.get(CALL_START, ())
    _call_stop = _table.get(CALL_STOP, ())
    _call_exception = _table.get(CALL_EXCEPTION, ())
    ANY = bool(names)
    CALLS = any(name[:2] == ("asyncotp", "call") for name in names)
    ACTORS = any(name[:2] == ("asyncotp", "actor") for name in names)
    SLOW = SLOW_CALLBACK in _table


def _check_event_name(name: object, where: str) -> EventName:
    if type(name) is not tuple or not name or not all(type(part) is str for part in name):
        raise TypeError(
            f"{where}: an event name is a non-empty tuple of strings such as "
            f"('asyncotp', 'call', 'stop'), not {safe_repr(name)}"
        )
    return name


def attach_many(
    handler_id: str,
    event_names: Iterable[EventName],
    handler: Handler,
    config: Any = None,
) -> None:
    """Attach ``handler`` to every event of ``event_names`` under ``handler_id``.

    ``handler(event_name, measurements, metadata, config)`` then runs,
    synchronously and in the emitting task, each time one of those events is
    executed; ``config`` is passed back as it is. Keep handlers short: they
    run on the path of whatever emits (a ``call``, a restart). A handler that
    raises is detached and logged once.

    ``HandlerExists`` (a ``ValueError``) if ``handler_id`` is attached
    already: detach it first, or choose another id. ``TypeError`` for an
    event name that is not a non-empty tuple of strings, a handler that is
    not callable, or an ``async def`` handler (handlers cannot await: hand
    the work to an actor with ``cast`` or ``send`` instead).
    """
    where = "telemetry.attach"
    if type(handler_id) is not str:
        raise TypeError(f"{where}: handler_id must be a str, not {safe_repr(handler_id)}")
    if not callable(handler):
        raise TypeError(f"{where}: handler must be a function, not {safe_repr(handler)}")
    if is_async_callable(handler):
        raise TypeError(
            f"{where}: handler {safe_repr(handler)} is an async function; handlers run "
            "synchronously in the emitting task: use a plain function (it may cast or "
            "send to an actor for slow work)"
        )
    names = [_check_event_name(name, where) for name in event_names]
    if not names:
        raise ValueError(f"{where}: handler {handler_id!r} needs at least one event name")
    if handler_id in _by_id:
        raise HandlerExists(
            f"{where}: a handler with id {handler_id!r} is attached already; detach it "
            "first, or choose another id",
            handler_id,
        )
    infos = tuple(HandlerInfo(handler_id, name, handler, config) for name in dict.fromkeys(names))
    _by_id[handler_id] = infos
    for info in infos:
        _table[info.event_name] = (*_table.get(info.event_name, ()), info)
    _recompute()


def attach(handler_id: str, event_name: EventName, handler: Handler, config: Any = None) -> None:
    """Attach ``handler`` to one event; see ``attach_many``."""
    attach_many(handler_id, [event_name], handler, config)


def detach(handler_id: str) -> bool:
    """Detach the handler ``handler_id`` from all its events; return whether
    it was attached (False, not an error, for an unknown id)."""
    infos = _by_id.pop(handler_id, None)
    if infos is None:
        return False
    for info in infos:
        rest = tuple(h for h in _table.get(info.event_name, ()) if h.id != handler_id)
        if rest:
            _table[info.event_name] = rest
        else:
            _table.pop(info.event_name, None)
    _recompute()
    return True


def list_handlers(prefix: EventName = ()) -> list[HandlerInfo]:
    """The handlers attached to events whose name starts with ``prefix``
    (all of them for ``()``), in attach order per event."""
    if type(prefix) is not tuple:
        raise TypeError(
            f"telemetry.list_handlers: prefix must be a tuple of strings, not {safe_repr(prefix)}"
        )
    size = len(prefix)
    return [info for name, infos in _table.items() if name[:size] == prefix for info in infos]


def execute(
    event_name: EventName,
    measurements: Mapping[str, float] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Emit an event: run each handler attached to ``event_name``, in attach
    order, with ``measurements`` and ``metadata`` (each handler gets the
    same dicts; treat them as read-only). Costs one dict lookup when nothing
    listens. Never raises because of a handler."""
    try:
        handlers = _table.get(event_name)
    except TypeError:
        _check_event_name(event_name, "telemetry.execute")
        raise
    if handlers is None:
        return
    values = measurements if type(measurements) is dict else dict(measurements or {})
    meta = metadata if type(metadata) is dict else dict(metadata or {})
    for info in handlers:
        try:
            info.function(event_name, values, meta, info.config)
        except Exception:  # noqa: BLE001 - a failing handler is detached, never the emitter's problem
            _failed(info, event_name)


def _failed(info: HandlerInfo, event_name: EventName) -> None:
    if not any(attached is info for attached in _by_id.get(info.id, ())):
        return  # detached already (by another failure of the same event)
    detach(info.id)
    logger.exception(
        "telemetry handler %r failed on event %r and was detached; fix it, then attach it again",
        info.id,
        event_name,
        extra={"event": "telemetry_handler_failed", "handler_id": info.id},
    )


@contextlib.contextmanager
def span(
    event_prefix: EventName, metadata: Mapping[str, Any] | None = None
) -> Iterator[dict[str, Any]]:
    """Time a block as three events, like ``:telemetry.span``::

        with telemetry.span(("shop", "db", "query"), {"table": "orders"}) as meta:
            rows = await fetch()
            meta["rows"] = len(rows)           # reaches the stop event

    On entry, ``event_prefix + ("start",)`` with ``monotonic_time`` and
    ``system_time``. On a normal exit, ``+ ("stop",)`` with ``duration``
    (seconds) and the metadata as the block left it. If the block raises
    (cancellation included), ``+ ("exception",)`` with ``duration`` and the
    metadata plus ``kind`` (the exception's class) and ``reason`` (the
    exception), then the exception goes on. Every event of one span carries
    the same ``telemetry_span_context`` (an int) to pair them up.
    """
    prefix = _check_event_name(event_prefix, "telemetry.span")
    meta = dict(metadata or {})
    meta["telemetry_span_context"] = next(_span_ids)
    start = time.perf_counter()
    execute((*prefix, "start"), {"monotonic_time": start, "system_time": time.time()}, meta)
    try:
        yield meta
    except BaseException as exc:
        end = time.perf_counter()
        execute(
            (*prefix, "exception"),
            {"duration": end - start, "monotonic_time": end},
            {**meta, "kind": type(exc), "reason": exc},
        )
        raise
    end = time.perf_counter()
    execute((*prefix, "stop"), {"duration": end - start, "monotonic_time": end}, meta)


def set_slow_callback_threshold(seconds: float) -> float:
    """Set how long (seconds > 0) a GenServer or StateMachine callback may
    run before ``("asyncotp", "callback", "slow")`` is emitted; return the
    previous threshold. The default is 0.1 s."""
    global _slow_threshold
    value = duration(seconds, "seconds", where="telemetry.set_slow_callback_threshold")
    previous, _slow_threshold = _slow_threshold, value
    return previous


def slow_callback_threshold() -> float:
    """The current slow-callback threshold in seconds."""
    return _slow_threshold


# -- what the runtime calls (behind its guards) ------------------------------


def actor_spawned(proc: Process) -> None:
    execute(
        ACTOR_SPAWN,
        {"system_time": time.time()},
        {"pid": proc.pid, "name": proc.name, "parent": proc.parent},
    )


def actor_exited(proc: Process, reason: object) -> None:
    execute(
        ACTOR_EXIT,
        {"lifetime": max(0.0, proc.node.loop.time() - proc.started_at)},
        {
            "pid": proc.pid,
            "name": proc.name,
            "reason": reason,
            "clean": is_clean_exit(reason),
            "supervisor": proc.is_supervisor,
        },
    )


def mailbox_overflow(proc: Process) -> None:
    execute(
        MAILBOX_OVERFLOW,
        {"length": len(proc.mailbox), "mailbox_size": proc.maxlen or 0},
        {"pid": proc.pid, "name": proc.name, "policy": proc.overflow},
    )


def dead_letter(dest: Pid, message: object) -> None:
    execute(DEAD_LETTER, {"count": 1}, {"pid": dest, "message": message})


def _run(handlers: tuple[HandlerInfo, ...], event: EventName, values: Any, meta: Any) -> None:
    """``execute`` for the runtime's hot events, with the handlers looked up
    at attach time (no hashing of the event name)."""
    for info in handlers:
        try:
            info.function(event, values, meta, info.config)
        except Exception:  # noqa: BLE001 - a failing handler is detached, never the emitter's problem
            _failed(info, event)


def call_start(proc: Process, request: object, timeout: float | None) -> tuple[float, Any]:
    """A call is about to wait for its reply (``CALLS`` is on): emit
    ``CALL_START``; return what ``call_stop`` or ``call_exception`` needs.
    (The handler loops are inlined: this runs on every call while a
    metrics exporter listens.)"""
    meta = {"server": proc.pid, "name": proc.name, "request": request, "timeout": timeout}
    start = _clock()
    if _call_start:
        values = {"monotonic_time": start}
        for info in _call_start:
            try:
                info.function(CALL_START, values, meta, info.config)
            except Exception:  # noqa: BLE001 - a failing handler is detached, never the emitter's problem
                _failed(info, CALL_START)
    return start, meta


def call_stop(span: tuple[float, Any]) -> None:
    """The reply arrived: emit ``CALL_STOP`` with the call's duration."""
    handlers = _call_stop
    if handlers:
        values = {"duration": _clock() - span[0]}
        meta = span[1]
        for info in handlers:
            try:
                info.function(CALL_STOP, values, meta, info.config)
            except Exception:  # noqa: BLE001 - a failing handler is detached, never the emitter's problem
                _failed(info, CALL_STOP)


def call_exception(span: tuple[float, Any], exc: BaseException) -> None:
    """The call raised ``exc``: emit ``CALL_EXCEPTION``."""
    if _call_exception:
        meta = {**span[1], "kind": type(exc), "reason": exc}
        _run(_call_exception, CALL_EXCEPTION, {"duration": _clock() - span[0]}, meta)


def _timed(proc: Process, server: str, callback: str, fn: Callable[..., Any]) -> Any:
    async def timed(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args)
        finally:
            spent = time.perf_counter() - start
            if spent >= _slow_threshold:
                execute(
                    SLOW_CALLBACK,
                    {"duration": spent, "threshold": _slow_threshold},
                    {"pid": proc.pid, "name": proc.name, "server": server, "callback": callback},
                )

    return timed


def timed_callbacks(
    proc: Process, cls: type, call: Any, cast: Any, info: Any
) -> tuple[Any, Any, Any]:
    """``handle_call``, ``handle_cast`` and ``handle_info`` wrapped to emit
    ``SLOW_CALLBACK`` past the threshold (a server started while ``SLOW``)."""
    name = cls.__qualname__
    return (
        _timed(proc, name, "handle_call", call),
        _timed(proc, name, "handle_cast", cast),
        _timed(proc, name, "handle_info", info),
    )


def timed_state_callback(proc: Process, cls: type, fn: Callable[..., Any], callback: str) -> Any:
    """A ``StateMachine``'s state callback (``handle_event`` or a
    ``state_<state>`` function, named ``callback``) wrapped to emit
    ``SLOW_CALLBACK`` past the threshold (a machine started while ``SLOW``)."""
    return _timed(proc, cls.__qualname__, callback, fn)


def mailbox_depths(node: Any) -> tuple[int, int, list[tuple[str, int]]]:
    """For metrics scrapes, one instant of ``node``: the number of live
    actors, the messages queued in all their mailboxes, and the mailbox
    length of each actor holding a registered name (label-safe: names are
    strings, and unnamed actors are only counted)."""
    total = 0
    named: list[tuple[str, int]] = []
    procs = list(node.procs.values())
    for proc in procs:
        length = len(proc.mailbox)
        total += length
        if proc.name is not None:
            named.append((proc.name, length))
    return len(procs), total, named
