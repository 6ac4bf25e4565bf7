"""``via`` names: a name held in a registry other than the node's own table.

OTP lets a process be named ``{via, Module, Name}``: the runtime asks
``Module`` to register, find and forget ``Name``, and accepts that form
wherever a name goes. asyncotp does the same with ``Via(registry, key)``,
where ``registry`` is any object with the three methods of ``NameRegistry``
(``asyncotp.Registry`` gives one through ``asyncotp.via``).

What the runtime promises a registry:

* ``register_name(key, pid)`` is called once, by the start handshake (or
  ``register``), before the new actor runs; a False return (or an
  exception) means the name is taken: nothing is started and the caller
  gets ``NameTaken``.
* ``whereis_name(key)`` is asked on every ``send``/``call``/``cast``/
  ``stop``/``whereis`` by that name: keep it cheap (a dict look-up).
* ``unregister_name(key)`` is called when the actor ends (or a start is
  undone), but only while ``whereis_name(key)`` still answers that actor,
  so a registry that already forgot the name, or gave it to someone else,
  is left alone. A registry therefore needs no monitor of its own to stay
  correct; it may have one (``asyncotp.Registry`` does).

The three methods run on the node's event-loop thread, synchronously: they
must not block and cannot await.

A registry whose registration is a round trip (a name held across nodes)
may also define ``async def claim_name(key, pid) -> bool``. The start
handshake of every behaviour (``GenServer.start``, ``GenStatem.start``, a
child spec's ``name=``) then awaits it *inside the new actor, before
``init``*, instead of calling ``register_name``: a False return means the
name is taken (``start`` raises ``NameTaken``, ``init`` never ran), an
exception is raised from ``start`` as is. After a True return the registry
must answer the pid from ``whereis_name`` at once; ``unregister_name`` is
called at the actor's end as for any via name. ``spawn`` and ``register``
stay synchronous and call ``register_name``, which such a registry may
refuse with a ``TypeError`` that says to use a ``start``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, final, runtime_checkable

from ._pid import Pid
from ._safe import safe_repr

logger = logging.getLogger("asyncotp")


@runtime_checkable
class NameRegistry(Protocol):
    """The registry protocol behind ``via`` names (OTP's ``{via, Module, Name}``).

    Any object with these three methods can hold names for asyncotp:

    .. code-block:: python

        class Names:
            def __init__(self) -> None:
                self.table: dict[object, Pid] = {}

            def register_name(self, key: object, pid: Pid) -> bool:
                return self.table.setdefault(key, pid) is pid

            def unregister_name(self, key: object) -> None:
                self.table.pop(key, None)

            def whereis_name(self, key: object) -> Pid | None:
                return self.table.get(key)

        names = Names()
        await Worker.start(name=Via(names, "worker-1"))
        await call(Via(names, "worker-1"), "ping")

    The runtime calls ``unregister_name`` when the actor ends, so this dict
    never keeps a dead pid.
    """

    def register_name(self, key: object, pid: Pid) -> bool:
        """Record ``pid`` as ``key``; False if the key is taken."""
        ...

    def unregister_name(self, key: object) -> None:
        """Forget ``key`` (nothing if it is unknown)."""
        ...

    def whereis_name(self, key: object) -> Pid | None:
        """The pid recorded as ``key``, or None."""
        ...


@final
class Via:
    """A name held by ``registry`` under ``key``: ``Via(registry, key)``.

    Accepted wherever a name is: ``start(name=...)`` of every behaviour,
    ``spawn``, ``send``, ``call``, ``cast``, ``stop``, ``whereis``,
    ``register``, and the ``name=`` of child specs. ``registry`` implements
    ``NameRegistry``; for an ``asyncotp.Registry`` write
    ``asyncotp.via(registry, key)``. Two ``Via`` are equal when their
    registries and keys are (a registry object compares by identity unless
    it defines ``__eq__``), so a ``Via`` can be a dict key or a child id.
    """

    __slots__ = ("key", "registry")

    registry: NameRegistry
    key: object

    def __init__(self, registry: NameRegistry, key: object) -> None:
        missing = [
            method
            for method in ("register_name", "unregister_name", "whereis_name")
            if not callable(getattr(registry, method, None))
        ]
        if missing:
            raise TypeError(
                f"Via: the registry {safe_repr(registry)} lacks {', '.join(missing)}; a via "
                "name's registry implements register_name(key, pid) -> bool, "
                "unregister_name(key) and whereis_name(key) -> Pid | None (see NameRegistry)"
            )
        object.__setattr__(self, "registry", registry)
        object.__setattr__(self, "key", key)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Via is immutable; cannot set {name}")

    def __repr__(self) -> str:
        return f"Via({safe_repr(self.registry)}, {safe_repr(self.key)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Via:
            return NotImplemented
        return bool(self.registry == other.registry and self.key == other.key)

    def __hash__(self) -> int:
        return hash((self.registry, self.key))


Name = str | Via
"""What a name may be: a local name (``str``) or a ``Via``."""


def whereis_via(name: Via) -> Pid | None:
    """The pid ``name``'s registry holds for it, or None.

    A registry that answers something other than a ``Pid`` or None is a
    bug in that registry: ``TypeError`` naming it."""
    pid = name.registry.whereis_name(name.key)
    if pid is None or type(pid) is Pid:
        return pid
    raise TypeError(
        f"{safe_repr(name.registry)}.whereis_name({safe_repr(name.key)}) returned "
        f"{safe_repr(pid)}; a NameRegistry answers a Pid or None"
    )


def claim_via(name: Via, pid: Pid) -> bool:
    """Ask ``name``'s registry to record ``pid``; whether it did."""
    return name.registry.register_name(name.key, pid) is True


def async_claim(name: Via) -> Callable[[object, Pid], Awaitable[object]] | None:
    """The registry's optional ``claim_name`` coroutine function, or None."""
    claim = getattr(name.registry, "claim_name", None)
    return claim if callable(claim) else None


def release_via(name: Via, pid: Pid) -> None:
    """Forget ``name`` if its registry still holds it for ``pid``.

    Runs at an actor's end: an error in the registry is logged, never raised
    (an exit always completes)."""
    try:
        if name.registry.whereis_name(name.key) is pid:
            name.registry.unregister_name(name.key)
    except Exception:
        logger.exception(
            "the registry of %s failed to release it for %r; the name may be stale",
            safe_repr(name),
            pid,
        )


def holder_of(name: Via) -> Pid | None:
    """Who holds ``name``; None if nobody does, or if its registry fails
    (for a ``NameTaken`` message, and for a timer firing, which has nobody
    to raise to)."""
    try:
        return whereis_via(name)
    except Exception:  # noqa: BLE001 - only for an error message
        return None
