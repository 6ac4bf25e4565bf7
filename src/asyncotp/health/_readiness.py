"""Readiness checks: what makes a service ready to take traffic, per node.

Readiness checks come in two kinds:

* a **server** declares its own readiness by subclassing ``ReadinessServer``
  and defining ``async def ready(self)``. The report asks it through a
  ``call`` round trip, so the answer is consistent with the server's state
  (``ready`` runs between two callbacks, never in the middle of one), and a
  server that is stuck in a callback fails its check by not answering in
  time::

      class Database(ReadinessServer):
          async def init(self, url: str) -> None:
              self.url = url
              self.conn = await connect(url)

          async def ready(self) -> bool | tuple[bool, str]:
              if self.conn.closed:
                  return False, f"no connection to {self.url}"
              return True

* a **function** registered with ``ready_when(name, check)`` for what no
  single server owns ("the migrations have run", "the cache is warm")::

      ready_when("migrations", lambda: migrations_done.is_set())

Besides checks, an actor of a higher layer can add itself as a **reporter**
(``add_reporter``): the report then reads a status record from it, as it
does from every circuit breaker. So health knows nothing of the layers built
on it, and the dependency runs from them to health only.

Every check, server and reporter lives in a per-node registry, which this
module keeps and ``_report`` reads.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias

import attrs

from .._core import (
    Caller,
    Node,
    Pid,
    Stop,
    current_node,
    is_clean_exit,
    node_of,
    on_exit,
    registered_name,
    safe_repr,
    validate,
)
from ..actors import GenServer
from ._values import TREE_CHECK, StatusRecord

CheckOutcome: TypeAlias = "bool | tuple[bool, str]"
CheckFn: TypeAlias = "Callable[[], CheckOutcome | Awaitable[CheckOutcome]]"
Reporter: TypeAlias = Callable[[Pid, float], Awaitable[StatusRecord]]
"""``reporter(pid, timeout)``: the status record of the actor ``pid``, within
``timeout`` seconds."""


# -- per-node registry -----------------------------------------------------------


class _Alive:
    def __repr__(self) -> str:
        return "<alive>"


_ALIVE: Final = _Alive()


@attrs.define(eq=False)
class _ServerEntry:
    pid: Pid
    cls: type[ReadinessServer]
    name: str | None
    down_reason: object = _ALIVE
    """The crash reason once the server ended abnormally (its check then fails
    until a server registered under the same name starts)."""


@attrs.define(eq=False)
class _Registry:
    servers: dict[object, _ServerEntry] = attrs.Factory(dict)
    """Keyed by the server's registered name, or by its pid if it has none."""
    checks: dict[str, CheckFn] = attrs.Factory(dict)
    reporters: dict[Pid, Reporter] = attrs.Factory(dict)


_registries: weakref.WeakKeyDictionary[Node, _Registry] = weakref.WeakKeyDictionary()


def _registry(node: Node) -> _Registry:
    registry = _registries.get(node)
    if registry is None:
        registry = _registries[node] = _Registry()
    return registry


def _register_server(pid: Pid, cls: type[ReadinessServer]) -> None:
    registry = _registry(node_of(pid))
    name = registered_name(pid)
    key: object = name if name is not None else pid
    entry = _ServerEntry(pid, cls, name)

    def exited(reason: object) -> None:
        if registry.servers.get(key) is not entry:
            return  # replaced by a newer server under the same name
        if key is pid or is_clean_exit(reason):
            del registry.servers[key]  # a clean end withdraws the check
        else:
            entry.down_reason = reason

    if on_exit(pid, exited):  # False: it has ended already
        registry.servers[key] = entry


def add_reporter(pid: Pid, reporter: Reporter) -> None:
    """Add the actor ``pid`` to the readiness reporters of its node, until it ends.

    Every ``health_report`` then awaits ``reporter(pid, timeout)`` and lists
    the record it returns in ``HealthReport.breakers`` (ordered by pid). A
    reporter that does not answer within the report's timeout, or whose
    actor is gone (``CallTimeout``, ``NoProcess``, ``ServerExited``), is left
    out of that report. The reporter is removed when ``pid`` ends; nothing
    happens if it has ended already.

    This is the hook through which the layers above health show their
    actors in the report (``CircuitBreaker.start`` adds every breaker),
    without health importing them.
    """
    reporters = _registry(node_of(pid)).reporters

    def exited(_reason: object) -> None:
        reporters.pop(pid, None)

    if on_exit(pid, exited):  # False: it has ended already
        reporters[pid] = reporter


# -- readiness: functions ------------------------------------------------------------


def ready_when(name: str, check: CheckFn) -> None:
    """Register a readiness check of the running node under ``name``.

    ``check()`` takes no argument and returns (or, if it is async, returns
    an awaitable of) ``True`` when ready, ``False`` when not, or a pair
    ``(ok, detail)`` whose detail explains it. A check that raises, or does
    not finish within the report's timeout, fails. Sync checks run on the
    event loop: keep them instant.

    Example::

        warm = asyncio.Event()
        ready_when("cache_warm", warm.is_set)

    The check stays until ``remove_ready_check(name)`` or until the node
    stops. A name already taken raises ``ValueError``.
    """
    validate.text(name, "name", where="ready_when")
    validate.function(
        check,
        "check",
        where=f"ready_when({name!r})",
        expected="a callable taking no argument that returns a bool (or an awaitable of one)",
        usage="the function (ready_when(name, is_up))",
        coroutine=" (is_up()): the check is called again at every report",
    )
    registry = _registry(current_node())
    if name in registry.checks or name == TREE_CHECK:
        raise ValueError(
            f"ready_when: a readiness check named {name!r} already exists; choose another "
            "name, or remove_ready_check it first"
        )
    registry.checks[name] = check


def remove_ready_check(name: str) -> bool:
    """Remove the ``ready_when`` check ``name``; return whether it existed."""
    validate.text(name, "name", where="remove_ready_check")
    return _registry(current_node()).checks.pop(name, None) is not None


# -- readiness: servers ------------------------------------------------------------


@attrs.frozen
class _Probe:
    """The request a ``ReadinessServer`` answers with its readiness."""


_PROBE: Final = _Probe()


@attrs.frozen
class _ProbeReply:
    ok: bool
    detail: str


class ReadinessServer(GenServer):
    """A GenServer that declares when it is ready to serve.

    Subclass it instead of ``GenServer`` and define ``ready``::

        class Database(ReadinessServer):
            async def init(self, url: str) -> None:
                self.conn = await connect(url)

            async def ready(self) -> bool | tuple[bool, str]:
                return self.conn.is_open, f"connection state {self.conn.state}"

    Every ``ReadinessServer`` of the node, wherever it runs (under a
    supervisor or not), is a readiness check of ``health_report``: the report
    calls it, and ``ready`` runs inside the server between two callbacks.
    Its check is named after the server's registered name, else after its
    place in the supervision tree (child ids joined by ``/``), else after its
    class and pid.

    ``ready`` returns ``True``, ``False``, or ``(ok, detail)``. It fails the
    check (without crashing the server) when it raises or returns anything
    else; and the check fails when the server does not answer within the
    report's timeout: a server stuck in a long callback is not ready.

    Lifetime: the check appears when ``start`` returns. A server that stops
    cleanly (``NORMAL``, ``SHUTDOWN``) withdraws its check. A server with a
    registered name that crashes leaves its check failing ("down") until a
    server registered under the same name starts, which is what its
    supervisor does; so a crashed dependency is never mistaken for a ready
    one. Unnamed servers that crash are covered by the tree check (their
    supervisor shows them as ``restarting``).

    Overriding ``handle_call`` is fine: readiness requests are answered
    before your ``handle_call`` sees them.
    """

    async def ready(self) -> bool | tuple[bool, str]:
        """Whether this server can serve now; the default: always."""
        return True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("handle_call")
        if own is not None and own not in _answering:
            cls.handle_call = _answering_probes(own)  # type: ignore[method-assign, assignment]

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request is _PROBE:
            return await _answer_probe(self)
        return await super().handle_call(request, caller)

    @classmethod
    async def start(cls, *args: Any, **kwargs: Any) -> Pid:
        """As ``GenServer.start``; the server's readiness check appears once it
        has started."""
        pid = await super().start(*args, **kwargs)
        _register_server(pid, cls)
        return pid


def _answering_probes(
    handle_call: Callable[[Any, Any, Caller], Awaitable[Any]],
) -> Callable[[Any, Any, Caller], Awaitable[Any]]:
    @functools.wraps(handle_call)
    async def wrapper(self: Any, request: Any, caller: Caller) -> Any:
        if request is _PROBE:
            return await _answer_probe(self)
        return await handle_call(self, request, caller)

    _answering.add(wrapper)
    return wrapper


_answering: Final[weakref.WeakSet[Callable[..., Any]]] = weakref.WeakSet()
"""The ``handle_call`` wrappers that already answer readiness probes."""


async def _answer_probe(server: ReadinessServer) -> _ProbeReply:
    label = f"{type(server).__name__}.ready()"
    try:
        result: object = await server.ready()
    except Stop:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing check must not crash the server
        return _ProbeReply(False, f"{label} raised {safe_repr(exc)}")
    if isinstance(result, bool):
        return _ProbeReply(result, "")
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and isinstance(result[0], bool)
        and isinstance(result[1], str)
    ):
        return _ProbeReply(result[0], result[1])
    return _ProbeReply(
        False,
        f"{label} returned {safe_repr(result)}; it must return a bool or a pair (bool, detail)",
    )
