"""Local names: ``register``, ``unregister``, ``whereis``, ``registered``.

A name belongs to one live actor at a time and is freed when it ends
(``_exits.exit_process``).
"""

from __future__ import annotations

from ._context import check_thread, current_node, node_of, process_of
from ._errors import NameTaken, NoProcess
from ._pid import Pid
from ._safe import safe_repr
from ._validate import check_name


def register(name: str, pid: Pid) -> None:
    """Register ``name`` for ``pid``; the name is freed when the actor ends.

    ``NameTaken`` if another actor holds it; ``NoProcess`` for a dead pid.
    """
    check_name(name, "register")
    if type(pid) is not Pid:
        raise TypeError(f"register: expected a Pid, not {safe_repr(pid)}")
    check_thread(node_of(pid), "register")
    proc = process_of(pid)
    if proc is None:
        raise NoProcess(f"register({name!r}): {pid!r} is not alive", pid)
    node = proc.node
    holder = node.names.get(name)
    if holder is not None:
        raise NameTaken(
            f"the name {name!r} is already registered to {holder!r}; choose another name, "
            "or unregister it first",
            name,
            holder,
        )
    if proc.name is not None:
        raise ValueError(
            f"register({name!r}): {pid!r} is already registered as {proc.name!r}; an actor "
            "has at most one name (unregister the old one first)"
        )
    node.names[name] = pid
    proc.name = name


def unregister(name: str) -> None:
    """Free ``name``; ``NoProcess`` if nobody holds it."""
    node = current_node("unregister")
    pid = node.names.pop(name, None)
    if pid is None:
        raise NoProcess(f"unregister: no actor is registered as {safe_repr(name)}", name)
    proc = node.procs.get(pid)
    if proc is not None:
        proc.name = None


def whereis(name: str) -> Pid | None:
    """The pid registered as ``name``, or None."""
    return current_node("whereis").names.get(name)


def registered() -> list[str]:
    """The names registered in the node, sorted."""
    return sorted(current_node("registered").names)
