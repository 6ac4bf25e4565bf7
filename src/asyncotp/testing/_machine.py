"""``SupervisionMachine``: a hypothesis state machine that injects random
faults into a supervision tree and checks OTP's invariants after each.

Hypothesis rules are synchronous, so the machine owns one event loop for
its whole run (an ``asyncio.Runner``) and runs each step on it to
completion, in the calling thread. A node and a ``VirtualClock(autojump=
False)`` stay alive for the run; between steps the loop does not run, so
nothing moves, and time passes only when the ``pass_time`` rule says so:
every run is deterministic. (A loop in a second thread, behind
``anyio.from_thread.start_blocking_portal``, works too but costs a thread
hand-off per step and lets the loop run between steps.)
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from .._core import (
    Node,
    Pid,
)
from .._core import (
    node as node_context,
)
from ..supervision import (
    Supervisor,
)
from ._clock import VirtualClock
from ._model import TreeHarness
from ._snapshot import SupervisorState
from ._strategies import crash_reasons, supervision_trees
from ._trees import Crash, FailInit, Kill, PassTime, Path, SupervisorSpec

T = TypeVar("T")


def _live_targets(machine: SupervisionMachine) -> st.SearchStrategy[Path]:
    return st.sampled_from(machine._targets())  # noqa: SLF001 - the machine's own strategy


def _failing_targets(machine: SupervisionMachine) -> st.SearchStrategy[Path]:
    return st.sampled_from(machine.harness.failing_paths())


def _time_steps(machine: SupervisionMachine) -> st.SearchStrategy[float]:
    return machine.time_steps


class SupervisionMachine(RuleBasedStateMachine):
    """Random faults against your supervision tree, with OTP's invariants
    checked after every step.

    Subclass it, say how to start your tree, add your own invariants (and
    rules, if you like), and expose its ``TestCase`` to pytest::

        class ShopMachine(SupervisionMachine):
            async def start_tree(self) -> Pid:
                return await Supervisor.start(build_shop(), name="shop")

            @invariant()
            def prices_are_intact(self) -> None:
                if self.tree is not None:
                    assert self.run(Agent.get, "prices") == {"apple": 3}

        TestShop = ShopMachine.TestCase

    The rules: ``crash`` (a running actor of the tree, the root included,
    with an abnormal or a clean reason), ``kill``, ``fail_init`` (the next
    1 to 3 starts of a child whose spec went through ``fail_init``),
    ``pass_time`` (virtual seconds: restart windows expire) and
    ``restart_tree`` (after the root ended). After each, the system settles
    and one invariant, ``otp_rules_hold``, checks that:

    * the tree is what OTP's rules say (an exact model of restart types,
      strategies, restart intensity and supervisors giving up): the same
      children run, those restarted have new pids, the others the same
      ones, the restart counts match, and when a supervisor gave up it is
      the right one; every child is linked to its supervisor;
    * no actor is an orphan: every live actor belongs to the tree (or was
      alive before it started, or is in ``extra_actors()``);
    * no running supervisor counts more restarts in its window than it
      allows.

    The exact model assumes your workers fail only when a fault is
    injected, and no ``Backoff``; set ``exact_model = False`` otherwise
    (the model-free checks remain). A failure prints the shrunk steps, and
    its message lists the faults applied and the expected and actual trees.

    ``self.run(fn, *args)`` runs ``await fn(*args)`` inside the node (from a
    rule or an invariant) and returns its result. ``self.tree`` is the
    latest snapshot of the tree (None while the root is down), ``self.clock``
    the virtual clock.
    """

    exact_model: ClassVar[bool] = True
    """Compare the tree with the exact model (False: model-free checks only)."""
    fault_root: ClassVar[bool] = True
    """Whether ``crash`` and ``kill`` may hit the root supervisor."""
    time_steps: ClassVar[st.SearchStrategy[float]] = st.sampled_from([1.0, 0.5, 5.0, 60.0])
    """How much virtual time one ``pass_time`` step lets pass."""

    clock: VirtualClock
    """The run's virtual clock (autojump off: time moves in ``pass_time``)."""
    node: Node
    """The run's node."""

    def __init__(self) -> None:
        super().__init__()
        self._runner = asyncio.Runner()
        self._stop: asyncio.Event | None = None
        self._host: asyncio.Task[None] | None = None
        try:
            self._runner.run(self._start_host())
        except BaseException:
            self._runner.close()
            raise
        self.harness = TreeHarness(
            self.start_tree, exact_model=self.exact_model, extra_actors=self.extra_actors
        )

    async def _start_host(self) -> None:
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()
        self._host = loop.create_task(self._host_node(started))
        await started

    async def _host_node(self, started: asyncio.Future[None]) -> None:
        with VirtualClock(autojump=False) as clock:
            try:
                async with node_context() as the_node:
                    self.clock = clock
                    self.node = the_node
                    self._ctx = contextvars.copy_context()
                    self._stop = asyncio.Event()
                    started.set_result(None)
                    await self._stop.wait()
                    clock.autojump = True  # the shutdown may wait on deadlines
            finally:
                clock.autojump = True

    # -- for subclasses ------------------------------------------------------------

    async def start_tree(self) -> Pid:
        """Start the tree under test and return its root supervisor's pid."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must define `async def start_tree(self) -> Pid` "
            "that starts the supervision tree under test"
        )

    def extra_actors(self) -> Iterable[Pid]:
        """Actors that may run outside the tree without being orphans."""
        return ()

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` inside the node, on the machine's loop.

        The loop runs only during such calls: between two steps, everything
        in the node stands still, virtual time included.
        """

        async def body() -> T:
            return await fn(*args)

        return self._runner.run(body(), context=self._ctx.copy())

    @property
    def tree(self) -> SupervisorState | None:
        """The latest snapshot of the tree; None while its root is down."""
        return self.harness.tree

    @property
    def root(self) -> Pid | None:
        """The root supervisor's pid (None before the tree started)."""
        return self.harness.root

    # -- rules ---------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        """Start the tree and build the model from it."""
        self.run(self.harness.start)

    def _targets(self) -> list[Path]:
        paths = self.harness.live_paths() if self.harness.root_alive else []
        return paths if self.fault_root else [p for p in paths if p != ()]

    @precondition(lambda self: bool(self._targets()))
    @rule(path=st.runner().flatmap(_live_targets), reason=crash_reasons())
    def crash(self, path: Path, reason: object) -> None:
        """Crash the actor at ``path`` with ``reason``."""
        self.run(self.harness.apply, Crash(path, reason))

    @precondition(lambda self: bool(self._targets()))
    @rule(path=st.runner().flatmap(_live_targets))
    def kill(self, path: Path) -> None:
        """Kill the actor at ``path``."""
        self.run(self.harness.apply, Kill(path))

    @precondition(lambda self: self.harness.root_alive and bool(self.harness.failing_paths()))
    @rule(path=st.runner().flatmap(_failing_targets), times=st.integers(1, 3))
    def fail_init(self, path: Path, times: int) -> None:
        """Make the next ``times`` starts of the child at ``path`` fail."""
        self.run(self.harness.apply, FailInit(path, times))

    @rule(seconds=st.runner().flatmap(_time_steps))
    def pass_time(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass."""
        self.run(self.harness.apply, PassTime(seconds))

    @precondition(lambda self: self.harness.root is not None and not self.harness.root_alive)
    @rule()
    def restart_tree(self) -> None:
        """Start the tree again after its root ended."""
        self.run(self.harness.start)

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def otp_rules_hold(self) -> None:
        """The tree is back to what OTP's rules say (or the right supervisor
        gave up), no actor is an orphan, no supervisor is beyond its restart
        intensity."""
        if self.harness.problems:
            raise AssertionError(self._report(self.harness.problems))

    def _report(self, problems: list[str]) -> str:
        async def report() -> str:
            return self.harness.report(problems)

        return self.run(report)

    def teardown(self) -> None:
        """Stop the node (every actor), restore the loop and close it."""
        try:
            if self._stop is not None and self._host is not None:
                self._stop.set()
                self._runner.run(_wait_for(self._host))
        finally:
            self._runner.close()


async def _wait_for(task: asyncio.Task[None]) -> None:
    await task


class RandomTreeMachine(SupervisionMachine):
    """A ``SupervisionMachine`` over generated trees of passive workers.

    Each run draws a tree from ``tree_strategy`` (a ``supervision_trees()``
    strategy), starts it with ``supervisor_class`` at every level, and
    injects random faults. Subclass it to change either: a deliberately
    broken ``Supervisor`` subclass is caught and shrunk to a short schedule.
    """

    tree_strategy: ClassVar[st.SearchStrategy[SupervisorSpec]] = supervision_trees()
    supervisor_class: ClassVar[type[Supervisor]] = Supervisor

    spec: SupervisorSpec

    @initialize(tree=st.runner().flatmap(lambda machine: machine.tree_strategy))
    def start(self, tree: SupervisorSpec) -> None:
        """Start the drawn tree."""
        self.spec = tree
        self.run(self.harness.start)

    async def start_tree(self) -> Pid:
        return await self.spec.start(supervisor=self.supervisor_class)
