"""Health and readiness of a supervision tree.

``health_report(root)`` answers the two questions an orchestrator asks a
service:

* **Is it alive?** (liveness) Yes while the root supervisor runs. A root
  supervisor that gave up (too many restarts) or was stopped means the
  program is no longer doing its job: restart the process.
* **Can it take traffic?** (readiness) Yes when the tree is alive, no child
  anywhere in it is waiting to be restarted, and every readiness check
  passes. A service that is not ready is kept out of the load balancer until
  it is; nothing is restarted.

The report also shows the whole tree: every supervisor with its strategy and
the restarts inside its current restart-intensity window, and every child
with its state (``running``, ``restarting`` or ``stopped``) and how often it
was restarted; and every circuit breaker of the node with its state.

Readiness checks come in two kinds, both per node:

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

What the report does not do: it never restarts anything, and its checks
never crash a server (a ``ready`` that raises fails its check). Keep checks
cheap: the report runs them all, concurrently, on every readiness probe,
within one ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import anyio
import attrs

from .._core import (
    Caller,
    CallTimeout,
    ChildType,
    Node,
    NoNodeError,
    NoProcess,
    Pid,
    Restart,
    ServerExited,
    Stop,
    Strategy,
    call,
    current_node,
    is_alive,
    is_clean_exit,
    is_supervisor,
    node_of,
    node_running,
    now,
    on_exit,
    registered_name,
    using_node,
    whereis_on,
)
from ..actors import (
    GenServer,
)
from ..supervision import (
    GAVE_UP,
    supervisor_health,
)

if TYPE_CHECKING:
    from ..resilience._breaker import BreakerStats


logger = logging.getLogger("asyncotp")

ChildState: TypeAlias = Literal["running", "restarting", "stopped"]
SupervisorState: TypeAlias = Literal["running", "unresponsive", "gave_up", "down"]
CheckOutcome: TypeAlias = "bool | tuple[bool, str]"
CheckFn: TypeAlias = "Callable[[], CheckOutcome | Awaitable[CheckOutcome]]"

TREE_CHECK: Final = "supervision_tree"
"""The name of the built-in readiness check on the tree itself."""

_MIN_WAIT: Final = 0.001  # the least time left for a call, so that it can answer at all


# -- the report ----------------------------------------------------------------


@attrs.frozen
class CheckResult:
    """The outcome of one readiness check.

    ``pid`` is the server that answered, for checks declared by a
    ``ReadinessServer``; None for ``ready_when`` functions and the tree check.
    """

    name: str
    ok: bool
    detail: str = ""
    pid: Pid | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "pid": None if self.pid is None else self.pid.number,
        }


@attrs.frozen
class ChildHealth:
    """One child of a supervisor, as the report saw it.

    ``state`` is ``"running"``, ``"restarting"`` (it ended and waits for its
    restart, a delayed one with ``Backoff`` for instance) or ``"stopped"``
    (terminated on purpose, or a transient child that ended normally).
    ``restarts`` counts its restarts since the supervisor started it;
    ``supervisor`` is the nested report of a running child supervisor.
    """

    id: Hashable
    pid: Pid | None
    name: str | None
    type: ChildType
    restart: Restart
    restarts: int
    state: ChildState
    supervisor: SupervisorHealth | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out: dict[str, Any] = {
            "id": _json_id(self.id),
            "pid": None if self.pid is None else self.pid.number,
            "name": self.name,
            "type": self.type.value,
            "restart": self.restart.value,
            "restarts": self.restarts,
            "state": self.state,
        }
        if self.supervisor is not None:
            out["supervisor"] = self.supervisor.to_dict()
        return out


@attrs.frozen
class SupervisorHealth:
    """One supervisor and its children.

    ``state`` is ``"running"``; ``"unresponsive"`` when it did not answer
    within the report's timeout (it is busy, restarting a child whose
    ``init`` is slow, for instance); ``"gave_up"`` when it ended because it
    reached its restart intensity; ``"down"`` when it is not running for
    another reason (``exit_reason`` says which, when the report knew the
    supervisor before it ended). ``restarts_in_window`` counts the restarts
    inside the current window of ``max_seconds``: the supervisor gives up
    when it would exceed ``max_restarts``.
    """

    pid: Pid | None
    name: str | None
    state: SupervisorState
    strategy: Strategy | None = None
    restarts_in_window: int = 0
    max_restarts: int | None = None
    max_seconds: float | None = None
    children: tuple[ChildHealth, ...] = ()
    exit_reason: object = None

    def walk(self) -> Iterator[tuple[tuple[Hashable, ...], ChildHealth]]:
        """Every child of the tree, depth first in start order, with its path
        of child ids from this supervisor."""
        for child in self.children:
            yield (child.id,), child
            if child.supervisor is not None:
                for path, grandchild in child.supervisor.walk():
                    yield (child.id, *path), grandchild

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "pid": None if self.pid is None else self.pid.number,
            "name": self.name,
            "state": self.state,
            "strategy": None if self.strategy is None else self.strategy.value,
            "restarts_in_window": self.restarts_in_window,
            "max_restarts": self.max_restarts,
            "max_seconds": self.max_seconds,
            "exit_reason": None if self.exit_reason is None else repr(self.exit_reason),
            "children": [child.to_dict() for child in self.children],
        }


@attrs.frozen
class HealthReport:
    """What ``health_report`` found.

    ``live`` is true while the root supervisor runs. ``ready`` is true when
    the tree is live and every check passed; it is None when the report was
    made without checks (``health_report(root, checks=False)``, the liveness
    probe). ``breakers`` lists every circuit breaker of the node.
    """

    live: bool
    ready: bool | None
    root: SupervisorHealth
    checks: tuple[CheckResult, ...] = ()
    breakers: tuple[BreakerStats, ...] = ()

    @property
    def failing(self) -> tuple[CheckResult, ...]:
        """The checks that did not pass."""
        return tuple(check for check in self.checks if not check.ok)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the ASGI app serves)."""
        return {
            "status": "up" if self.live else "down",
            "live": self.live,
            "ready": self.ready,
            "root": self.root.to_dict(),
            "checks": [check.to_dict() for check in self.checks],
            "breakers": [breaker.to_dict() for breaker in self.breakers],
        }


def _json_id(value: Hashable) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


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
    fates: dict[object, object] = attrs.Factory(dict)
    """Exit reasons of supervisors the report knew, by pid and by name."""
    watched: set[Pid] = attrs.Factory(set)


_registries: weakref.WeakKeyDictionary[Node, _Registry] = weakref.WeakKeyDictionary()


def _registry(node: Node) -> _Registry:
    registry = _registries.get(node)
    if registry is None:
        registry = _registries[node] = _Registry()
    return registry


def _register_server(pid: Pid, cls: type[ReadinessServer]) -> None:
    if not is_alive(pid):
        return
    registry = _registry(node_of(pid))
    name = registered_name(pid)
    key: object = name if name is not None else pid
    entry = _ServerEntry(pid, cls, name)
    registry.servers[key] = entry

    def exited(reason: object) -> None:
        if registry.servers.get(key) is not entry:
            return  # replaced by a newer server under the same name
        if key is pid or is_clean_exit(reason):
            del registry.servers[key]  # a clean end withdraws the check
        else:
            entry.down_reason = reason

    on_exit(pid, exited)


def _watch(registry: _Registry, pid: Pid) -> None:
    """Remember how this supervisor ends, to report it afterwards."""
    if pid in registry.watched:
        return
    registry.watched.add(pid)
    name = registered_name(pid)

    def exited(reason: object) -> None:
        registry.watched.discard(pid)
        registry.fates[pid] = reason
        if name is not None:
            registry.fates[name] = reason

    on_exit(pid, exited)


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
    if not isinstance(name, str) or not name:
        raise TypeError(f"ready_when: name must be a non-empty str, not {name!r}")
    given: object = check
    if inspect.iscoroutine(given):
        given.close()
        raise TypeError(
            f"ready_when({name!r}): pass the function (ready_when(name, is_up)), not a "
            "coroutine (is_up()): the check is called again at every report"
        )
    if not callable(check):
        raise TypeError(
            f"ready_when({name!r}): check must be a callable taking no argument that "
            f"returns a bool (or an awaitable of one), not {check!r}"
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
        if own is not None and not getattr(own, "_asyncotp_answers_probe", False):
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

    wrapper._asyncotp_answers_probe = True  # type: ignore[attr-defined]
    return wrapper


async def _answer_probe(server: ReadinessServer) -> _ProbeReply:
    label = f"{type(server).__name__}.ready()"
    try:
        result: object = await server.ready()
    except Stop:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing check must not crash the server
        return _ProbeReply(False, f"{label} raised {exc!r}")
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
        False, f"{label} returned {result!r}; it must return a bool or a pair (bool, detail)"
    )


# -- making the report ---------------------------------------------------------------


async def health_report(
    root: Pid | str, *, checks: bool = True, timeout: float = 2.0
) -> HealthReport:
    """Report on the supervision tree under ``root`` (a pid or a registered name).

    Walks every supervisor of the tree (nested ones concurrently), reads
    every circuit breaker of the node and, with ``checks=True``, runs every
    readiness check: the built-in ``supervision_tree`` check (the root runs,
    no child is waiting for a restart, every supervisor answers), every
    ``ReadinessServer`` and every ``ready_when`` function. Everything shares
    one deadline, ``timeout`` seconds from now: what has not answered by
    then is reported as unresponsive or failing, so the report itself never
    takes much longer than ``timeout``.

    ``checks=False`` makes the cheaper liveness report (``ready`` is None).
    Raises ``TypeError`` when ``root`` is alive but not a supervisor.
    """
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise ValueError(f"health_report: timeout must be seconds > 0, not {timeout!r}")
    if type(root) is Pid:
        node = node_of(root)
        if not node_running(node):
            raise NoNodeError(
                f"health_report: the node of {root!r} has stopped; start one with "
                "asyncotp.run(main) or `async with asyncotp.node():`"
            )
    elif isinstance(root, str):
        node = current_node()
    else:
        raise TypeError(
            f"health_report: root must be the root supervisor's Pid or registered name, "
            f"not {root!r}"
        )
    return await _report(node, root, checks=checks, timeout=float(timeout))


async def _report(node: Node, root: Pid | str, *, checks: bool, timeout: float) -> HealthReport:
    with using_node(node):
        return await _make_report(node, root, checks=checks, timeout=timeout)


async def _make_report(
    node: Node, root: Pid | str, *, checks: bool, timeout: float
) -> HealthReport:
    registry = _registry(node)
    deadline = now() + timeout
    pid = root if type(root) is Pid else whereis_on(node, root)
    if pid is None or not is_alive(pid):
        tree = _down(registry, pid, root if isinstance(root, str) else None)
    else:
        if not is_supervisor(pid):
            raise TypeError(
                f"health_report: {pid!r} is not a supervisor; pass the pid or name of "
                "the root supervisor (Application.start and Supervisor.start return it)"
            )
        _watch(registry, pid)
        tree = await _walk(node, registry, pid, deadline)
    live = tree.state in ("running", "unresponsive")

    breakers: list[BreakerStats] = []
    results: list[CheckResult] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(_read_breakers, registry, deadline, breakers)
        if checks:
            results.append(_tree_check(tree))
            names = _server_names(registry, tree)
            for key, entry in list(registry.servers.items()):
                tg.start_soon(_probe_server, node, key, entry, names, deadline, timeout, results)
            for name, fn in list(registry.checks.items()):
                tg.start_soon(_run_function_check, node, name, fn, deadline, timeout, results)
    results.sort(key=lambda result: (result.name != TREE_CHECK, result.name))
    breakers.sort(key=lambda stats: stats.pid.number)
    ready = (live and all(result.ok for result in results)) if checks else None
    return HealthReport(live, ready, tree, tuple(results), tuple(breakers))


def _down(registry: _Registry, pid: Pid | None, name: str | None) -> SupervisorHealth:
    missing = object()
    reason = registry.fates.get(pid, missing) if pid is not None else missing
    if reason is missing and name is not None:
        reason = registry.fates.get(name, missing)
    if reason is missing:
        return SupervisorHealth(pid, name, "down")
    state: SupervisorState = "gave_up" if reason == GAVE_UP else "down"
    return SupervisorHealth(pid, name, state, exit_reason=reason)


def _left(node: Node, deadline: float) -> float:
    return max(_MIN_WAIT, deadline - now())


async def _walk(node: Node, registry: _Registry, pid: Pid, deadline: float) -> SupervisorHealth:
    name = registered_name(pid)
    try:
        snapshot = await supervisor_health(pid, timeout=_left(node, deadline))
    except CallTimeout:
        return SupervisorHealth(pid, name, "unresponsive")
    except (NoProcess, ServerExited) as exc:
        reason = exc.reason if isinstance(exc, ServerExited) else registry.fates.get(pid)
        state: SupervisorState = "gave_up" if reason == GAVE_UP else "down"
        return SupervisorHealth(pid, name, state, exit_reason=reason)
    raw_children: list[dict[str, Any]] = snapshot["children"]
    nested: dict[int, SupervisorHealth] = {}

    async def fill(index: int, child_pid: Pid) -> None:
        nested[index] = await _walk(node, registry, child_pid, deadline)

    async with anyio.create_task_group() as tg:
        for index, raw in enumerate(raw_children):
            child_pid = raw["pid"]
            if child_pid is None or raw["type"] is not ChildType.SUPERVISOR:
                continue
            if is_supervisor(child_pid):
                tg.start_soon(fill, index, child_pid)
    children = []
    for index, raw in enumerate(raw_children):
        child_pid = raw["pid"]
        children.append(
            ChildHealth(
                id=raw["id"],
                pid=child_pid,
                name=registered_name(child_pid) if child_pid is not None else None,
                type=raw["type"],
                restart=raw["restart"],
                restarts=raw["restarts"],
                state=raw["state"],
                supervisor=nested.get(index),
            )
        )
    return SupervisorHealth(
        pid=pid,
        name=snapshot["name"],
        state="running",
        strategy=snapshot["strategy"],
        restarts_in_window=snapshot["restarts_in_window"],
        max_restarts=snapshot["max_restarts"],
        max_seconds=snapshot["max_seconds"],
        children=tuple(children),
    )


def _path(path: tuple[Hashable, ...]) -> str:
    return "/".join(str(part) for part in path)


def _tree_check(tree: SupervisorHealth) -> CheckResult:
    if tree.state in ("down", "gave_up"):
        who = repr(tree.name) if tree.name is not None else repr(tree.pid)
        why = "gave up (too many restarts)" if tree.state == "gave_up" else "is not running"
        return CheckResult(TREE_CHECK, False, f"the root supervisor {who} {why}")
    problems = []
    if tree.state == "unresponsive":
        problems.append("the root supervisor did not answer in time")
    for path, child in tree.walk():
        if child.state == "restarting":
            problems.append(f"{_path(path)} is waiting to be restarted")
        elif child.supervisor is not None and child.supervisor.state != "running":
            problems.append(f"{_path(path)} is {child.supervisor.state}")
    if problems:
        return CheckResult(TREE_CHECK, False, "; ".join(problems))
    return CheckResult(TREE_CHECK, True, "every supervisor answered; no child is restarting")


def _server_names(registry: _Registry, tree: SupervisorHealth) -> dict[Pid, str]:
    """A check name for every ``ReadinessServer``: its registered name, else
    its path in the tree (with its pid when the path is not unique), else its
    class and pid."""
    paths: dict[Pid, str] = {}
    seen: dict[str, int] = {}
    for path, child in tree.walk():
        if child.pid is not None:
            text = _path(path)
            paths[child.pid] = text
            seen[text] = seen.get(text, 0) + 1
    names: dict[Pid, str] = {}
    for entry in registry.servers.values():
        pid = entry.pid
        if entry.name is not None:
            names[pid] = entry.name
        elif pid in paths and seen[paths[pid]] == 1:
            names[pid] = paths[pid]
        elif pid in paths:
            names[pid] = f"{paths[pid]}#{pid.number}"
        else:
            names[pid] = f"{entry.cls.__name__}#{pid.number}"
    return names


async def _probe_server(
    node: Node,
    key: object,
    entry: _ServerEntry,
    names: dict[Pid, str],
    deadline: float,
    timeout: float,
    results: list[CheckResult],
) -> None:
    name = names[entry.pid]
    if entry.down_reason is not _ALIVE:
        results.append(
            CheckResult(
                name,
                False,
                f"{entry.cls.__name__} {name!r} is down (it ended with "
                f"{entry.down_reason!r}) and has not started again",
                entry.pid,
            )
        )
        return
    wait = _left(node, deadline)
    try:
        reply = await call(entry.pid, _PROBE, timeout=wait)
    except CallTimeout:
        results.append(
            CheckResult(
                name,
                False,
                f"{entry.pid!r} did not answer within the report's timeout ({timeout:g} s): "
                "it is busy or blocked",
                entry.pid,
            )
        )
        return
    except (NoProcess, ServerExited) as exc:
        if _entry_gone(node, key, entry):
            return  # it stopped cleanly meanwhile: the check is withdrawn
        results.append(CheckResult(name, False, f"{entry.pid!r} is not running: {exc}", entry.pid))
        return
    if type(reply) is not _ProbeReply:
        results.append(
            CheckResult(
                name,
                False,
                f"{entry.pid!r} answered the readiness probe with {reply!r}; its class "
                "must derive from ReadinessServer",
                entry.pid,
            )
        )
        return
    results.append(CheckResult(name, reply.ok, reply.detail, entry.pid))


def _entry_gone(node: Node, key: object, entry: _ServerEntry) -> bool:
    return _registry(node).servers.get(key) is not entry


async def _run_function_check(
    node: Node,
    name: str,
    fn: CheckFn,
    deadline: float,
    timeout: float,
    results: list[CheckResult],
) -> None:
    wait = _left(node, deadline)
    try:
        async with asyncio.timeout(wait) as scope:
            outcome: object = fn()
            if inspect.isawaitable(outcome):
                outcome = await outcome
    except TimeoutError as exc:
        if scope.expired():
            results.append(
                CheckResult(
                    name, False, f"did not finish within the report's timeout ({timeout:g} s)"
                )
            )
        else:
            results.append(CheckResult(name, False, f"raised {exc!r}"))
        return
    except Exception as exc:  # noqa: BLE001 - a failing check is a result, not a crash
        results.append(CheckResult(name, False, f"raised {exc!r}"))
        return
    if isinstance(outcome, bool):
        results.append(CheckResult(name, outcome))
    elif (
        isinstance(outcome, tuple)
        and len(outcome) == 2
        and isinstance(outcome[0], bool)
        and isinstance(outcome[1], str)
    ):
        results.append(CheckResult(name, outcome[0], outcome[1]))
    else:
        results.append(
            CheckResult(
                name,
                False,
                f"the check returned {outcome!r}; it must return a bool or a pair (bool, detail)",
            )
        )


async def _read_breakers(
    registry: _Registry, deadline: float, breakers: list[BreakerStats]
) -> None:
    from ..resilience._breaker import CircuitBreaker

    found = [
        entry.pid
        for entry in registry.servers.values()
        if issubclass(entry.cls, CircuitBreaker) and entry.down_reason is _ALIVE
    ]
    if not found:
        return
    node = node_of(found[0])

    async def read(pid: Pid) -> None:
        # A breaker that is busy or gone is left out; its readiness check says why.
        with contextlib.suppress(CallTimeout, NoProcess, ServerExited):
            breakers.append(await CircuitBreaker.stats(pid, timeout=_left(node, deadline)))

    async with anyio.create_task_group() as tg:
        for pid in found:
            tg.start_soon(read, pid)
