"""``Pid``: the opaque reference to one actor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, Protocol, final

if TYPE_CHECKING:
    from typing_extensions import TypeVar
else:
    try:
        # PEP 696 defaults (typing's own from Python 3.13), so that ``Pid`` is
        # ``Pid[Any, Any]`` and ``Pid[Req]`` works at run time too.
        # typing_extensions comes with anyio below Python 3.15.
        from typing_extensions import TypeVar
    except ImportError:  # pragma: no cover - a Python whose typing has defaults
        from typing import TypeVar

Req = TypeVar("Req", default=Any)
"""What the actor behind a ``Pid`` accepts by ``call`` (``Any`` by default)."""
Rep = TypeVar("Rep", default=Any)
"""What it replies (``Any`` by default)."""


class Directory(Protocol):
    """What a pid needs of its node: the name its actor holds, for ``repr``."""

    def name_of(self, pid: Pid) -> str | None: ...


@final
class Pid(Generic[Req, Rep]):
    """An opaque, hashable, immutable reference to one actor.

    Pids are made by the node only, one per actor, and never reused within a
    node, so equality is identity (which keeps dictionary look-ups on the hot
    path at C speed). A pid of an actor on another node (``asyncotp.distribution``)
    is a ``Pid`` too, whose directory is that node's ``RemoteNode``: the
    distribution layer makes exactly one per remote actor while it is
    referenced. ``repr`` shows the pid's number and, while the actor holds
    one, its registered name: ``<Pid 7 'cache'>`` (a remote pid shows its
    node: ``<Pid 7 'on orders'>``).

    For the type checker a pid is generic in the requests its actor accepts
    by ``call`` and the replies it gives: ``GenServer[Req, Rep].start``
    returns a ``Pid[Req, Rep]``, and ``call(pid, request)`` then checks
    ``request`` against ``Req`` and returns a ``Rep``. A plain ``Pid`` is
    ``Pid[Any, Any]``: anything goes, as before. The parameters exist for
    the checker only; at run time every pid is the same ``Pid``.
    """

    __slots__ = ("__weakref__", "_node", "_number")

    _number: int
    _node: Directory

    def __init__(self, number: int, node: Directory) -> None:
        self._number = number
        self._node = node

    @property
    def number(self) -> int:
        """The pid's number, unique within its node."""
        return self._number

    def __repr__(self) -> str:
        name = self._node.name_of(self)
        if name is not None:
            return f"<Pid {self._number} {name!r}>"
        return f"<Pid {self._number}>"

    def __lt__(self, other: Pid) -> bool:
        if not isinstance(other, Pid):
            return NotImplemented
        return self._number < other._number

    def __copy__(self) -> Pid:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Pid:
        return self

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{self!r} cannot be pickled: a pid is only meaningful inside the node that made it"
        )
