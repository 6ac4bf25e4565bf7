"""The client functions of both supervisors: which_children, start_child, ..."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .._core import ChildSpec, Pid, call, safe_repr
from ._base import ChildCounts, ChildInfo, _check_timeout, _Req


def _check_spec(spec: object) -> None:
    if not isinstance(spec, ChildSpec):
        raise TypeError(
            f"start_child: expected a ChildSpec (for example MyServer.child_spec(...)), "
            f"not {safe_repr(spec)}"
        )


def _check_child(child: object, operation: str) -> None:
    try:
        hash(child)
    except Exception:  # noqa: BLE001 - whatever hash raises, the id is not usable
        raise TypeError(
            f"{operation}: a child is named by its id (a hashable value) or, in a "
            f"DynamicSupervisor, by its pid; not {safe_repr(child)}"
        ) from None


async def which_children(sup: Pid | str) -> list[ChildInfo]:
    """The children of a supervisor, in start order (``pid`` None: not running)."""
    result: list[ChildInfo] = await call(sup, (_Req.WHICH,), None)
    return result


async def count_children(sup: Pid | str) -> ChildCounts:
    """How many specs, running children, supervisors and workers ``sup`` has."""
    result: ChildCounts = await call(sup, (_Req.COUNT,), None)
    return result


async def start_child(sup: Pid | str, spec: ChildSpec) -> Pid:
    """Add ``spec`` to ``sup`` and start it (last in the start order).

    Returns what the child's start function returned: its pid, as a rule.
    A start function may also return a ``(pid, info)`` pair (OTP's
    ``{ok, Pid, Info}``), and ``start_child`` then returns that pair as it
    is (``which_children`` still lists just the pid). The annotation says
    ``Pid``, the common case; for a start function that returns a pair,
    unpack it with a cast::

        pid, port = cast("tuple[Pid, int]", await start_child(sup, listener_spec))

    A start function that returns None (``ignore``) makes it return None.

    ``DuplicateChild`` for a taken id; ``StartError`` if it fails to start;
    ``MaxChildren`` past a dynamic supervisor's limit; ``ValueError`` for a
    significant child where ``auto_shutdown`` is ``NEVER`` (and in a
    ``DynamicSupervisor``, which has none). A ``spec`` that is not a
    ``ChildSpec`` raises ``TypeError`` before ``sup`` is looked up.
    """
    _check_spec(spec)
    result: Pid = await call(sup, (_Req.START, spec), None)
    return result


async def terminate_child(sup: Pid | str, child: Hashable) -> None:
    """Stop a child (by id; by pid for a DynamicSupervisor) as its spec says.

    A Supervisor keeps the spec (pid None) unless the child is temporary.
    A child that is restarting stops restarting; in a DynamicSupervisor it
    is named by the pid it last ran as, and removed.
    """
    _check_child(child, "terminate_child")
    await call(sup, (_Req.TERMINATE, child), None)


async def restart_child(sup: Pid | str, child_id: Hashable) -> Pid:
    """Start again a child that is not running; return its new pid (or the
    ``(pid, info)`` pair its start function returned, as ``start_child``).

    Refused with ``ActorError`` for a child that is running, or restarting
    (the supervisor brings it back itself: OTP's ``{error, restarting}``);
    ``StartError`` if it fails to start.
    """
    _check_child(child_id, "restart_child")
    result: Pid = await call(sup, (_Req.RESTART, child_id), None)
    return result


async def delete_child(sup: Pid | str, child_id: Hashable) -> None:
    """Forget the spec of a child that is not running.

    Refused with ``ActorError`` for a child that is running, or restarting
    (``terminate_child`` it first).
    """
    _check_child(child_id, "delete_child")
    await call(sup, (_Req.DELETE, child_id), None)


async def supervisor_health(sup: Pid | str, timeout: float | None = 5.0) -> dict[str, Any]:
    """A snapshot of a supervisor for health reports (see ``asyncotp.health``)."""
    _check_timeout(timeout, "supervisor_health")
    result: dict[str, Any] = await call(sup, (_Req.HEALTH,), timeout)
    return result
