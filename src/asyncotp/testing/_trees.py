"""Supervision trees and fault schedules as plain values.

``SupervisorSpec`` and ``WorkerSpec`` describe a tree of passive test
workers (they only crash when a fault is injected); ``Crash``, ``Kill``,
``FailInit`` and ``PassTime`` are the steps of a fault schedule. All are
frozen values whose repr is valid Python, so a shrunk counterexample reads
as code. The hypothesis strategies that generate them live in
``_strategies``; nothing here needs hypothesis.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any, TypeAlias

import attrs

from .._core import (
    INFINITY,
    Caller,
    ChildSpec,
    Pid,
    Restart,
    ShutdownSetting,
    Strategy,
)
from ..actors import (
    GenServer,
)
from ..supervision import (
    Supervisor,
)
from ._faults import InjectedFault, fail_init

Path: TypeAlias = tuple[Hashable, ...]
"""Where an actor sits in a tree: the child ids from the root down; ``()``
is the root itself."""


class TreeWorker(GenServer):
    """The passive worker of generated trees: answers ``"ping"`` with its
    path and never fails on its own."""

    path: Path

    async def init(self, path: Path) -> None:
        self.path = path

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "ping":
            return self.path
        raise ValueError(f"TreeWorker {self.path!r} does not understand {request!r}")


def _repr_fields(obj: Any, positional: tuple[str, ...]) -> str:
    parts: list[str] = []
    for field in attrs.fields(type(obj)):
        value = getattr(obj, field.name)
        if field.name in positional:
            parts.append(repr(value))
        elif field.default is attrs.NOTHING or value != field.default:
            parts.append(f"{field.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


@attrs.frozen(repr=False)
class WorkerSpec:
    """A passive worker (a ``TreeWorker``) in a generated tree."""

    id: str
    restart: Restart = Restart.PERMANENT
    shutdown: ShutdownSetting = 5.0

    def __repr__(self) -> str:
        return _repr_fields(self, ("id",))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints the repr
        printer.text(repr(self))

    def child_spec(self, path: Path = ()) -> ChildSpec:
        """The child spec; its start can fail on demand (see ``fail_init``)."""
        spec = TreeWorker.child_spec(
            (*path, self.id), id=self.id, restart=self.restart, shutdown=self.shutdown
        )
        return fail_init(spec, times=0)


@attrs.frozen(repr=False)
class SupervisorSpec:
    """A supervisor and its children in a generated tree.

    ``await spec.start()`` starts it as the root of a tree and returns its
    pid; ``spec.child_spec()`` nests it under another supervisor. Every
    child's start can be made to fail (see ``fail_init``).
    """

    id: str = "root"
    children: tuple[WorkerSpec | SupervisorSpec, ...] = ()
    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = 3
    max_seconds: float = 5.0
    restart: Restart = Restart.PERMANENT
    shutdown: ShutdownSetting = INFINITY

    def __repr__(self) -> str:
        return _repr_fields(self, ("id",))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis prints the repr
        printer.text(repr(self))

    def child_specs(
        self, path: Path = (), *, supervisor: type[Supervisor] = Supervisor
    ) -> list[ChildSpec]:
        """The child specs of this supervisor's children (``path`` is its own)."""
        specs: list[ChildSpec] = []
        for child in self.children:
            if isinstance(child, SupervisorSpec):
                specs.append(child.child_spec(path, supervisor=supervisor))
            else:
                specs.append(child.child_spec(path))
        return specs

    def child_spec(
        self, path: Path = (), *, supervisor: type[Supervisor] = Supervisor
    ) -> ChildSpec:
        """This supervisor as a child of another (its parent's ``path``)."""
        mine = (*path, self.id)
        spec = supervisor.child_spec(
            self.child_specs(mine, supervisor=supervisor),
            id=self.id,
            restart=self.restart,
            shutdown=self.shutdown,
            strategy=self.strategy,
            max_restarts=self.max_restarts,
            max_seconds=self.max_seconds,
        )
        return fail_init(spec, times=0)

    async def start(
        self, *, supervisor: type[Supervisor] = Supervisor, name: str | None = None
    ) -> Pid:
        """Start the tree with this supervisor at its root; return the root's pid.

        ``supervisor`` is the class used at every level (a subclass under
        test, for instance).
        """
        return await supervisor.start(
            self.child_specs((), supervisor=supervisor),
            strategy=self.strategy,
            max_restarts=self.max_restarts,
            max_seconds=self.max_seconds,
            name=name,
        )

    def paths(self) -> list[Path]:
        """Every actor's path, depth first, the root (``()``) last."""
        return [*self._descendants(()), ()]

    def _descendants(self, path: Path) -> Iterator[Path]:
        for child in self.children:
            mine = (*path, child.id)
            yield mine
            if isinstance(child, SupervisorSpec):
                yield from child._descendants(mine)  # noqa: SLF001 - same class, recursion


# -- fault schedules -------------------------------------------------------------


@attrs.frozen
class Crash:
    """Crash the actor at ``target`` with ``reason`` (see ``crash``)."""

    target: Path
    reason: object = attrs.field(factory=lambda: InjectedFault("injected"), eq=False)


@attrs.frozen
class Kill:
    """Kill the actor at ``target`` (see ``kill``)."""

    target: Path


@attrs.frozen
class FailInit:
    """Make the next ``times`` starts of the child at ``target`` fail."""

    target: Path
    times: int = 1


@attrs.frozen
class PassTime:
    """Let ``seconds`` of virtual time pass (restart windows expire)."""

    seconds: float


Fault: TypeAlias = Crash | Kill | FailInit | PassTime
"""One step of a fault schedule."""
