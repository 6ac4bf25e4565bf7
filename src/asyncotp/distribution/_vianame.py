"""``via_global(name)``: a global name wherever a name goes.

``GenServer.start(name=via_global("orders"))`` registers the new server in
the cluster's global registry before its ``init`` runs (the start handshake
awaits ``claim_name``, one atomic create in JetStream: of nodes racing,
exactly one starts, the others get ``NameTaken``); ``call``, ``cast``,
``send``, ``stop`` and ``whereis`` by ``via_global("orders")`` find the
holder on any node of the cluster without a round trip, in the node's
mirror of the registry (kept by a JetStream watch). The name is freed when
the server ends and reaped when its node is lost, as for
``register_global``.
"""

from __future__ import annotations

from typing import Final, final

from .._core import Pid, Via, safe_repr
from ._api import connected_registry, current_registry

_MIRROR_LOAD_TIMEOUT: Final = 5.0
"""Seconds a start by ``via_global`` waits for the node's mirror to load
(once, after ``connect``), so that the name it gets is answered at once."""


def _name(key: object, operation: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"{operation}: a global name is a non-empty str, not {safe_repr(key)}")
    return key


@final
class GlobalNames:
    """The ``NameRegistry`` behind ``via_global``: the global registry of
    the calling node's cluster. One instance serves every node, so
    ``via_global("x") == via_global("x")``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "GLOBAL_NAMES"

    def register_name(self, key: object, pid: Pid) -> bool:
        """Refused: a global registration is a round trip. ``spawn`` and
        ``register`` cannot await it; starts can (``claim_name``)."""
        raise TypeError(
            f"via_global({safe_repr(key)}): a global name is registered by a round trip to "
            "the cluster, which spawn and register cannot wait for; start a behaviour "
            "(GenServer.start(name=via_global(...))) or call register_global(name, pid)"
        )

    async def claim_name(self, key: object, pid: Pid) -> bool:
        """Register ``pid`` as ``key`` across the cluster (atomic); whether it did."""
        name = _name(key, "via_global")
        registry = current_registry("via_global")
        await registry.mirror_ready(_MIRROR_LOAD_TIMEOUT)
        return await registry.register(name, pid)

    def unregister_name(self, key: object) -> None:
        """Forget ``key`` here and delete it from the cluster's registry."""
        registry = connected_registry("via_global")
        if registry is not None:
            registry.forget(_name(key, "via_global"))

    def whereis_name(self, key: object) -> Pid | None:
        """The holder of ``key`` in this node's mirror of the registry; None
        on a node that is not connected (it sees no global names: after
        ``connect``'s block its actors still end cleanly, and the other
        nodes reap its names)."""
        registry = connected_registry("via_global")
        if registry is None:
            return None
        return registry.lookup(_name(key, "via_global"))


GLOBAL_NAMES: Final = GlobalNames()
"""The one registry object of every ``via_global`` name."""


def via_global(name: str) -> Via:
    """A name held in the cluster's global registry, for ``start(name=...)``,
    ``call``, ``cast``, ``send``, ``stop``, ``whereis`` and child specs.

    ``GenServer.start(name=via_global("orders"))`` raises ``NameTaken`` if a
    live actor anywhere holds ``"orders"``. Look-ups read this node's mirror
    of the registry: a name registered on another node is seen there one
    message later (not at once), and a name of a lost node is None at once.
    ``spawn(..., name=via_global(...))`` and ``register(via_global(...),
    pid)`` raise ``TypeError``: use a start, or ``register_global``."""
    return Via(GLOBAL_NAMES, _name(name, "via_global"))
