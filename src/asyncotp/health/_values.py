"""The values of a health report: what ``health_report`` returns.

All frozen, with a ``to_dict()`` that gives the JSON the ASGI app serves.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any, Final, Literal, Protocol, TypeAlias

import attrs

from .._core import ChildType, Pid, Restart, Strategy, safe_repr

ChildState: TypeAlias = Literal["running", "restarting", "stopped"]
SupervisorState: TypeAlias = Literal["running", "unresponsive", "gave_up", "down"]

TREE_CHECK: Final = "supervision_tree"
"""The name of the built-in readiness check on the tree itself."""


class StatusRecord(Protocol):
    """What a readiness reporter returns (a circuit breaker's statistics, for
    instance): listed in ``HealthReport.breakers``, served as its ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        ...


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
            "exit_reason": None if self.exit_reason is None else safe_repr(self.exit_reason),
            "children": [child.to_dict() for child in self.children],
        }


@attrs.frozen
class HealthReport:
    """What ``health_report`` found.

    ``live`` is true while the root supervisor runs. ``ready`` is true when
    the tree is live and every check passed; it is None when the report was
    made without checks (``health_report(root, checks=False)``, the liveness
    probe). ``breakers`` lists every circuit breaker of the node, as a
    ``BreakerStats`` each, in the order they started: what every readiness
    reporter of the node said. Its items are typed ``Any`` because health
    does not import the layers that report to it; each is a
    ``StatusRecord``, with a ``to_dict()``.
    """

    live: bool
    ready: bool | None
    root: SupervisorHealth
    checks: tuple[CheckResult, ...] = ()
    breakers: tuple[Any, ...] = ()

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
    return safe_repr(value)
