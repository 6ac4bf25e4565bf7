"""A snapshot of a running supervision tree, taken through supervisor calls."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Final

import attrs

from .._core import (
    ActorError,
    ChildType,
    Pid,
    Restart,
    Strategy,
)
from ..supervision import (
    ChildNotFound,
    restart_child,
    supervisor_health,
)
from ._trees import Path


@attrs.frozen
class ChildState:
    """One child in a ``SupervisorState``.

    ``state`` is ``"running"``, ``"restarting"`` (waiting for a delayed
    restart or a retry) or ``"stopped"``; ``supervisor`` is the snapshot of a
    running child supervisor.
    """

    id: Hashable
    pid: Pid | None
    type: ChildType
    restart: Restart
    state: str
    restarts: int = 0
    supervisor: SupervisorState | None = None


@attrs.frozen
class SupervisorState:
    """A supervisor and its children, recursively, at one moment."""

    pid: Pid
    name: str | None
    strategy: Strategy
    dynamic: bool
    max_restarts: int
    max_seconds: float
    restarts_in_window: int
    children: tuple[ChildState, ...]

    def walk(self, path: Path = ()) -> Iterator[tuple[Path, ChildState]]:
        """Every child below this supervisor, depth first, with its path."""
        for child in self.children:
            mine = (*path, child.id)
            yield mine, child
            if child.supervisor is not None:
                yield from child.supervisor.walk(mine)

    def supervisors(self, path: Path = ()) -> Iterator[tuple[Path, SupervisorState]]:
        """This supervisor and every running supervisor below it, with paths."""
        yield path, self
        for child in self.children:
            if child.supervisor is not None:
                yield from child.supervisor.supervisors((*path, child.id))

    def find(self, path: Path) -> ChildState | None:
        """The child at ``path`` (relative to this supervisor), or None."""
        for child_path, child in self.walk():
            if child_path == path:
                return child
        return None

    def pid_at(self, path: Path) -> Pid | None:
        """The pid of the running actor at ``path`` (``()``: this supervisor)."""
        if path == ():
            return self.pid
        child = self.find(path)
        return child.pid if child is not None else None

    def pids(self) -> set[Pid]:
        """Every running actor of the tree, this supervisor included."""
        found = {self.pid}
        for _, child in self.walk():
            if child.pid is not None:
                found.add(child.pid)
        return found

    def render(self, indent: str = "") -> str:
        """A readable, indented picture of the tree."""
        kind = "dynamic supervisor" if self.dynamic else self.strategy.name
        lines = [
            f"{indent}{self.name or 'supervisor'} {self.pid!r} ({kind}, max "
            f"{self.max_restarts} restart(s) in {self.max_seconds} s): "
            f"{self.restarts_in_window} restart(s) in the window"
        ]
        for child in self.children:
            lines.append(
                f"{indent}  {child.id!r} [{child.restart.name}] {child.state}"
                + (f" {child.pid!r}" if child.pid is not None else "")
            )
            if child.supervisor is not None:
                lines.append(child.supervisor.render(indent + "    "))
        return "\n".join(lines)


class _DynamicProbe:
    """A child id no supervisor has: asking to restart it tells the kinds apart."""

    def __repr__(self) -> str:
        return "<probe>"


_PROBE: Final = _DynamicProbe()


async def is_dynamic(sup: Pid) -> bool:
    """Whether ``sup`` is a DynamicSupervisor (it refuses restart_child by id)."""
    try:
        await restart_child(sup, _PROBE)
    except ChildNotFound:
        return False
    except ValueError:
        return True
    return False  # pragma: no cover - no child has the probe's id


async def tree_snapshot(root: Pid | str, *, timeout: float = 5.0) -> SupervisorState:
    """A snapshot of the tree under supervisor ``root``, through
    ``supervisor_health`` calls (each bounded by ``timeout``).

    Take it when the tree is at rest (after ``settle()``): a child that
    ends while the snapshot is taken shows as it was.
    """
    return await snapshot(root, timeout, {})


async def snapshot(root: Pid | str, timeout: float, kinds: dict[Pid, bool]) -> SupervisorState:
    """``tree_snapshot``, remembering in ``kinds`` which supervisors are dynamic."""
    health = await supervisor_health(root, timeout)
    pid: Pid = health["pid"]
    dynamic = kinds.get(pid)
    if dynamic is None:
        dynamic = kinds[pid] = await is_dynamic(pid)
    children: list[ChildState] = []
    for entry in health["children"]:
        sub: SupervisorState | None = None
        child_pid = entry["pid"]
        if child_pid is not None and entry["type"] is ChildType.SUPERVISOR:
            try:
                sub = await snapshot(child_pid, timeout, kinds)
            except ActorError:
                sub = None  # it ended meanwhile
        children.append(
            ChildState(
                id=entry["id"],
                pid=child_pid,
                type=entry["type"],
                restart=entry["restart"],
                state=entry["state"],
                restarts=entry["restarts"],
                supervisor=sub,
            )
        )
    return SupervisorState(
        pid=pid,
        name=health["name"],
        strategy=health["strategy"],
        dynamic=dynamic,
        max_restarts=health["max_restarts"],
        max_seconds=health["max_seconds"],
        restarts_in_window=health["restarts_in_window"],
        children=tuple(children),
    )
