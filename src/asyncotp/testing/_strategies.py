"""Hypothesis strategies for supervision trees and fault schedules.

Every strategy shrinks toward the simple case: fewer children, workers
rather than supervisors, ``ONE_FOR_ONE``, ``PERMANENT``, fewer faults, and
crashes rather than kills. Child ids are ``"w<i>"`` (workers) and
``"s<i>"`` (supervisors), ``i`` the position, so paths read well.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .._core import (
    BRUTAL_KILL,
    INFINITY,
    NORMAL,
    SHUTDOWN,
    Restart,
    Shutdown,
    ShutdownSetting,
    Strategy,
)
from ._faults import InjectedFault
from ._trees import Crash, FailInit, Fault, Kill, PassTime, Path, SupervisorSpec, WorkerSpec


def crash_reasons() -> st.SearchStrategy[object]:
    """Exit reasons for ``crash``: mostly abnormal (``InjectedFault``), and
    the clean ones (``NORMAL``, ``SHUTDOWN``, ``Shutdown(...)``) that
    transient children are not restarted after."""
    return st.one_of(
        st.builds(InjectedFault, st.just("injected")),
        st.sampled_from([NORMAL, SHUTDOWN]),
        st.builds(Shutdown, st.just("injected")),
    )


def supervision_trees(
    *,
    max_depth: int = 2,
    max_children: int = 3,
    strategies: st.SearchStrategy[Strategy] | None = None,
    restarts: st.SearchStrategy[Restart] | None = None,
    max_restarts: st.SearchStrategy[int] | None = None,
    max_seconds: st.SearchStrategy[float] | None = None,
    worker_shutdowns: st.SearchStrategy[ShutdownSetting] | None = None,
) -> st.SearchStrategy[SupervisorSpec]:
    """Supervision trees of passive workers, as ``SupervisorSpec`` values.

    ``max_depth`` counts supervisor levels below the root; each supervisor
    has up to ``max_children`` children (the root at least one). The other
    arguments replace the strategies for each setting (defaults: every
    ``Strategy`` and ``Restart``; ``max_restarts`` 0 to 3; windows of 1, 5
    or 30 s; worker shutdown 5 s, ``BRUTAL_KILL`` or ``INFINITY``;
    supervisors keep ``INFINITY``).
    """
    if max_depth < 0 or max_children < 1:
        raise ValueError(
            f"supervision_trees: max_depth must be >= 0 and max_children >= 1, not "
            f"{max_depth!r} and {max_children!r}"
        )
    strategy_st = strategies if strategies is not None else st.sampled_from(Strategy)
    restart_st = restarts if restarts is not None else st.sampled_from(Restart)
    intensity_st = max_restarts if max_restarts is not None else st.integers(0, 3)
    window_st = max_seconds if max_seconds is not None else st.sampled_from([5.0, 1.0, 30.0])
    shutdown_st: st.SearchStrategy[ShutdownSetting] = (
        worker_shutdowns
        if worker_shutdowns is not None
        else st.sampled_from([5.0, BRUTAL_KILL, INFINITY])
    )

    @st.composite
    def supervisor(draw: st.DrawFn, ident: str, depth: int, root: bool) -> SupervisorSpec:
        count = draw(st.integers(1 if root else 0, max_children))
        children: list[WorkerSpec | SupervisorSpec] = []
        for index in range(count):
            if depth > 0 and draw(st.booleans()):
                children.append(draw(supervisor(f"s{index}", depth - 1, False)))
            else:
                children.append(
                    WorkerSpec(f"w{index}", restart=draw(restart_st), shutdown=draw(shutdown_st))
                )
        return SupervisorSpec(
            ident,
            tuple(children),
            strategy=draw(strategy_st),
            max_restarts=draw(intensity_st),
            max_seconds=draw(window_st),
            restart=Restart.PERMANENT if root else draw(restart_st),
        )

    return supervisor("root", max_depth, True)


def faults(
    tree: SupervisorSpec, *, seconds: st.SearchStrategy[float] | None = None
) -> st.SearchStrategy[Fault]:
    """One fault for ``tree``: crash or kill any actor (the root included),
    make a child's next 1 to 3 starts fail, or let time pass (``seconds``:
    0.5 to 60 s by default)."""
    paths = tree.paths()
    children: list[Path] = [p for p in paths if p != ()]
    targets = st.sampled_from(paths)
    time_st = seconds if seconds is not None else st.sampled_from([1.0, 0.5, 5.0, 60.0])
    options: list[st.SearchStrategy[Fault]] = [
        st.builds(Crash, targets, crash_reasons()),
        st.builds(Kill, targets),
    ]
    if children:
        options.append(st.builds(FailInit, st.sampled_from(children), st.integers(1, 3)))
    options.append(st.builds(PassTime, time_st))
    return st.one_of(options)


def fault_schedules(
    tree: SupervisorSpec, *, max_faults: int = 8, seconds: st.SearchStrategy[float] | None = None
) -> st.SearchStrategy[list[Fault]]:
    """Lists of up to ``max_faults`` faults for ``tree`` (see ``faults``),
    for ``check_schedule``."""
    return st.lists(faults(tree, seconds=seconds), max_size=max_faults)
