"""Names: ``register``, ``unregister``, ``whereis``, ``registered``.

A name is a local name (a ``str`` in the node's own table) or a ``Via``
name (a key in a registry that implements ``NameRegistry``, see ``_via``).
Either belongs to one live actor at a time and is freed when it ends: a
local name by ``_exits.exit_process``, a ``Via`` name by an exit callback
that asks its registry to forget it.

The local ``str`` path is the hot one (``send``/``call``/``cast`` by name
resolve through ``_context.resolve``); a ``Via`` is told apart by
``type(...) is Via`` after it, so local names pay nothing for it.
"""

from __future__ import annotations

from ._context import check_thread, current_node, node_of, process_of
from ._errors import NameTaken, NoProcess
from ._exits import add_on_exit
from ._pid import Pid
from ._remote import remote_of
from ._safe import safe_repr
from ._validate import check_name
from ._via import Name, Via, claim_via, holder_of, release_via, whereis_via


def register(name: Name, pid: Pid) -> None:
    """Register ``name`` for ``pid``; the name is freed when the actor ends.

    ``name`` is a local name (a non-empty ``str``) or a ``Via`` name, which
    its registry records (``register_name``) and forgets when the actor
    ends. ``NameTaken`` if another actor holds it; ``NoProcess`` for a dead
    pid. An actor holds at most one local name, and any number of ``Via``
    names.
    """
    check_name(name, "register")
    if type(pid) is not Pid:
        raise TypeError(f"register: expected a Pid, not {safe_repr(pid)}")
    check_thread(node_of(pid), "register")
    proc = process_of(pid)
    if proc is None:
        raise NoProcess(f"register({safe_repr(name)}): {pid!r} is not alive", pid)
    if type(name) is Via:
        if not claim_via(name, pid):
            holder = holder_of(name)
            raise NameTaken(
                f"the name {safe_repr(name)} is already registered to {holder!r}; choose "
                "another key, or unregister it first",
                name,
                holder,
            )
        add_on_exit(proc, lambda _reason: release_via(name, pid))
        return
    assert type(name) is str
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


def unregister(name: Name) -> None:
    """Free ``name`` (local or ``Via``); ``NoProcess`` if nobody holds it."""
    node = current_node("unregister")
    if type(name) is Via:
        if whereis_via(name) is None:
            raise NoProcess(f"unregister: no actor is registered as {safe_repr(name)}", name)
        name.registry.unregister_name(name.key)
        return
    pid = node.names.pop(name, None)
    if pid is None:
        raise NoProcess(f"unregister: no actor is registered as {safe_repr(name)}", name)
    proc = node.procs.get(pid)
    if proc is not None:
        proc.name = None


def whereis(name: Name) -> Pid | None:
    """The pid registered as ``name`` (local or ``Via``), or None."""
    node = current_node("whereis")
    if type(name) is Via:
        pid = whereis_via(name)
        if pid is None:
            return None
        return pid if pid in node.procs or remote_of(pid) is not None else None
    return node.names.get(name)


def registered() -> list[str]:
    """The local names registered in the node, sorted (``Via`` names live in
    their registries)."""
    return sorted(current_node("registered").names)
