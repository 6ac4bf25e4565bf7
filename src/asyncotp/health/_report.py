"""Health of a supervision tree: ``health_report``.

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
was restarted; and what every readiness reporter of the node says (every
circuit breaker with its state).

What the report does not do: it never restarts anything, and its checks
never crash a server (a ``ready`` that raises fails its check). Keep checks
cheap: the report runs them all, concurrently, on every readiness probe,
within one ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import weakref
from collections.abc import Hashable
from typing import Any, Final

import anyio
import attrs

from .._core import (
    CallTimeout,
    ChildType,
    MailboxFull,
    Node,
    NoNodeError,
    NoProcess,
    Pid,
    ServerExited,
    Shutdown,
    call,
    current_node,
    is_alive,
    is_supervisor,
    node_of,
    node_running,
    now,
    on_exit,
    registered_name,
    safe_repr,
    safe_str,
    using_node,
    validate,
    whereis_on,
)
from ..supervision import GAVE_UP, supervisor_health
from ._readiness import (
    _ALIVE,
    _PROBE,
    CheckFn,
    Reporter,
    _ProbeReply,
    _Registry,
    _registry,
    _ServerEntry,
)
from ._values import (
    TREE_CHECK,
    CheckResult,
    ChildHealth,
    HealthReport,
    StatusRecord,
    SupervisorHealth,
    SupervisorState,
)

_MIN_WAIT: Final = 0.001  # the least time left for a call, so that it can answer at all


# -- how supervisors ended ---------------------------------------------------------


@attrs.define(eq=False)
class _Fates:
    """How the supervisors that a report (or a ``HealthApp``) knew have ended."""

    reasons: dict[object, object] = attrs.Factory(dict)
    """Their exit reasons, by pid and by name."""
    watched: set[Pid] = attrs.Factory(set)


_fates_by_node: weakref.WeakKeyDictionary[Node, _Fates] = weakref.WeakKeyDictionary()


def _fates(node: Node) -> _Fates:
    fates = _fates_by_node.get(node)
    if fates is None:
        fates = _fates_by_node[node] = _Fates()
    return fates


def _watch_supervisor(pid: Pid) -> None:
    """Remember how this supervisor ends, to report it afterwards."""
    fates = _fates(node_of(pid))
    if pid in fates.watched:
        return
    name = registered_name(pid)

    def exited(reason: object) -> None:
        fates.watched.discard(pid)
        fates.reasons[pid] = reason
        if name is not None:
            fates.reasons[name] = reason

    if on_exit(pid, exited):  # False: it has ended already
        fates.watched.add(pid)


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
    takes much longer than ``timeout`` (which must be finite: a probe that
    may never answer is no probe).

    ``checks=False`` makes the cheaper liveness report (``ready`` is None).
    Raises ``TypeError`` when ``root`` is alive but not a supervisor.
    """
    seconds = validate.duration(timeout, "timeout", where="health_report")  # finite: a bound
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
            f"not {safe_repr(root)}"
        )
    return await _report(node, root, checks=checks, timeout=seconds)


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
        tree = _down(_fates(node), pid, root if isinstance(root, str) else None)
    else:
        if not is_supervisor(pid):
            raise TypeError(
                f"health_report: {pid!r} is not a supervisor; pass the pid or name of "
                "the root supervisor (Application.start and Supervisor.start return it)"
            )
        _watch_supervisor(pid)
        tree = await _walk(_fates(node), pid, deadline)
    live = tree.state in ("running", "unresponsive")

    reported: dict[Pid, StatusRecord] = {}
    results: list[CheckResult] = []
    async with anyio.create_task_group() as tg:
        for reporter_pid, reporter in list(registry.reporters.items()):
            tg.start_soon(_read_reporter, reporter_pid, reporter, deadline, reported)
        if checks:
            results.append(_tree_check(tree))
            names = _server_names(registry, tree)
            for key, entry in list(registry.servers.items()):
                tg.start_soon(_probe_server, node, key, entry, names, deadline, timeout, results)
            for name, fn in list(registry.checks.items()):
                tg.start_soon(_run_function_check, name, fn, deadline, timeout, results)
    results.sort(key=lambda result: (result.name != TREE_CHECK, result.name))
    records = tuple(reported[pid] for pid in sorted(reported, key=lambda pid: pid.number))
    ready = (live and all(result.ok for result in results)) if checks else None
    return HealthReport(live, ready, tree, tuple(results), records)


def _down(fates: _Fates, pid: Pid | None, name: str | None) -> SupervisorHealth:
    missing = object()
    reason = fates.reasons.get(pid, missing) if pid is not None else missing
    if reason is missing and name is not None:
        reason = fates.reasons.get(name, missing)
    if reason is missing:
        return SupervisorHealth(pid, name, "down")
    return SupervisorHealth(pid, name, _ended(reason), exit_reason=reason)


def _ended(reason: object) -> SupervisorState:
    """How a supervisor that ended with ``reason`` is reported. Only a
    ``Shutdown`` with a str detail is compared: a user's reason (or detail)
    may have an ``__eq__`` that raises."""
    gave_up = (
        type(reason) is Shutdown and type(reason.detail) is str and reason.detail == GAVE_UP.detail
    )
    return "gave_up" if gave_up else "down"


def _left(deadline: float) -> float:
    return max(_MIN_WAIT, deadline - now())


async def _walk(fates: _Fates, pid: Pid, deadline: float) -> SupervisorHealth:
    name = registered_name(pid)
    try:
        snapshot = await supervisor_health(pid, timeout=_left(deadline))
    except (CallTimeout, MailboxFull):
        return SupervisorHealth(pid, name, "unresponsive")
    except (NoProcess, ServerExited) as exc:
        reason = exc.reason if isinstance(exc, ServerExited) else fates.reasons.get(pid)
        return SupervisorHealth(pid, name, _ended(reason), exit_reason=reason)
    raw_children: list[dict[str, Any]] = snapshot["children"]
    nested: dict[int, SupervisorHealth] = {}

    async def fill(index: int, child_pid: Pid) -> None:
        nested[index] = await _walk(fates, child_pid, deadline)

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
    return "/".join(safe_str(part) for part in path)


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
                f"{safe_repr(entry.down_reason)}) and has not started again",
                entry.pid,
            )
        )
        return
    wait = _left(deadline)
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
    except MailboxFull:
        results.append(
            CheckResult(
                name,
                False,
                f"{entry.pid!r} did not take the readiness probe: its mailbox is full (it "
                "is overloaded)",
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
                f"{entry.pid!r} answered the readiness probe with {safe_repr(reply)}; its class "
                "must derive from ReadinessServer",
                entry.pid,
            )
        )
        return
    results.append(CheckResult(name, reply.ok, reply.detail, entry.pid))


def _entry_gone(node: Node, key: object, entry: _ServerEntry) -> bool:
    return _registry(node).servers.get(key) is not entry


async def _run_function_check(
    name: str,
    fn: CheckFn,
    deadline: float,
    timeout: float,
    results: list[CheckResult],
) -> None:
    wait = _left(deadline)
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
            results.append(CheckResult(name, False, f"raised {safe_repr(exc)}"))
        return
    except Exception as exc:  # noqa: BLE001 - a failing check is a result, not a crash
        results.append(CheckResult(name, False, f"raised {safe_repr(exc)}"))
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
                f"the check returned {safe_repr(outcome)}; it must return a bool or a pair "
                "(bool, detail)",
            )
        )


async def _read_reporter(
    pid: Pid,
    reporter: Reporter,
    deadline: float,
    reported: dict[Pid, StatusRecord],
) -> None:
    # A reporter that is busy or gone is left out; its readiness check says why.
    with contextlib.suppress(CallTimeout, MailboxFull, NoProcess, ServerExited):
        reported[pid] = await reporter(pid, _left(deadline))
