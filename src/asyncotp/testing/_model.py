"""Checking a supervision tree against OTP's rules after each fault.

``TreeModel`` is an exact, independent model of what OTP supervisors do
(restart types, strategies, restart intensity, nested supervisors giving up,
failing starts), built from a snapshot of the live tree. ``TreeHarness``
applies faults to the real tree and to the model, lets the system settle on
frozen virtual time, and compares: the same children running, restarted
(a new pid) exactly when the model restarted them, the same restart counts
in each window, and the right supervisor gone when one gave up. Model-free
checks come on top: no orphan actors, every child linked to its
supervisor, no supervisor beyond its restart intensity.

The model assumes the tree's workers only fail when a fault is injected,
and no ``Backoff`` (a delayed restart needs time to pass); with
``exact_model=False`` only the model-free checks run.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence

import anyio
import attrs

from .._core import (
    KILLED,
    ActorError,
    Pid,
    Restart,
    Strategy,
    current_node,
    exit_future,
    is_alive,
    live_pids,
    process_info,
)
from .._core import (
    node as node_context,
)
from ..supervision import (
    GAVE_UP,
    Supervisor,
)
from ..supervision._rules import needs_restart
from ._clock import VirtualClock, current_clock
from ._faults import FailingStart, crash, failing_start_of, kill
from ._snapshot import SupervisorState, snapshot
from ._trees import Crash, FailInit, Fault, Kill, PassTime, Path, SupervisorSpec
from ._waits import settle


@attrs.define(eq=False)
class _TSup:
    """What a supervisor starts with (its children's templates)."""

    strategy: Strategy
    max_restarts: int
    max_seconds: float
    dynamic: bool
    children: list[_TChild]


@attrs.define(eq=False)
class _TChild:
    id: Hashable
    restart: Restart
    flaky: FailingStart | None
    sup: _TSup | None


@attrs.define(eq=False)
class _MSup:
    """One running instance of a supervisor in the model."""

    t: _TSup
    owner: _MChild
    children: list[_MChild] = attrs.field(factory=list)
    history: list[float] = attrs.field(factory=list)


@attrs.define(eq=False)
class _MChild:
    t: _TChild
    parent: _MSup | None
    gen: int | None = None
    """Which start of the child runs (None: not running); a restart makes a new one."""
    sup: _MSup | None = None


class TreeModel:
    """An exact model of a supervision tree under injected faults."""

    def __init__(self, tree: SupervisorState, now: float) -> None:
        self._gens = itertools.count(1)
        self.pending: dict[FailingStart, int] = {}
        """Failures still armed in each FailingStart, as the model counts them."""
        self.starts: dict[FailingStart, int] = {}
        """Calls that reached each FailingStart's wrapped start, as the model
        counts them: a group restart that starts a child twice shows here."""
        self.pid_of_gen: dict[int, Pid] = {}
        self.seen_pids: set[Pid] = set()
        self.root_reason: object = None
        root_t = _TChild(None, Restart.PERMANENT, None, None)
        self.root = _MChild(root_t, None, gen=next(self._gens))
        sup = self._discover(tree, self.root, now)
        root_t.sup = sup.t
        self.root.sup = sup
        self.pid_of_gen[self.root.gen] = tree.pid  # type: ignore[index]
        self.seen_pids.add(tree.pid)

    def _discover(self, state: SupervisorState, owner: _MChild, now: float) -> _MSup:
        templates: list[_TChild] = []
        children: list[_MChild] = []
        inst = _MSup(
            _TSup(state.strategy, state.max_restarts, state.max_seconds, state.dynamic, []), owner
        )
        for child in state.children:
            flaky = failing_start_of(child.pid) if child.pid is not None else None
            if flaky is not None:
                self.pending.setdefault(flaky, flaky.remaining)
                self.starts.setdefault(flaky, flaky.starts)
            template = _TChild(child.id, child.restart, flaky, None)
            mine = _MChild(template, inst)
            if child.supervisor is not None:
                sub = self._discover(child.supervisor, mine, now)
                template.sup = sub.t
                mine.sup = sub
            if child.pid is not None:
                mine.gen = next(self._gens)
                self.pid_of_gen[mine.gen] = child.pid
                self.seen_pids.add(child.pid)
            templates.append(template)
            children.append(mine)
        if not state.dynamic:  # a restarted DynamicSupervisor starts empty
            inst.t.children = templates
        inst.children = children
        inst.history = [now] * state.restarts_in_window
        return inst

    # -- finding -------------------------------------------------------------

    def find(self, path: Path) -> _MChild | None:
        """The model's child at ``path`` (``()``: the root), running or not."""
        here = self.root
        for key in path:
            if here.sup is None:
                return None
            for child in here.sup.children:
                if child.t.id == key:
                    here = child
                    break
            else:
                return None
        return here

    def failing_starts(self) -> list[FailingStart]:
        return list(self.pending)

    # -- events --------------------------------------------------------------

    def exit(self, child: _MChild, reason: object, now: float) -> None:
        """The actor ``child`` ended with ``reason``: what the tree does."""
        child.gen = None
        child.sup = None
        if child.parent is None:
            self.root_reason = reason
            return
        self._child_exited(child.parent, child, reason, now)

    def arm(self, start: FailingStart, times: int) -> None:
        self.pending[start] = self.pending.get(start, 0) + times

    def _count(self, sup: _MSup, now: float) -> bool:
        window = sup.t.max_seconds
        sup.history = [t for t in sup.history if now - t < window]
        sup.history.append(now)
        return len(sup.history) <= sup.t.max_restarts

    def window(self, sup: _MSup, now: float) -> int:
        return sum(1 for t in sup.history if now - t < sup.t.max_seconds)

    def _give_up(self, sup: _MSup, now: float) -> None:
        for child in sup.children:
            child.gen = None
            child.sup = None
        self.exit(sup.owner, GAVE_UP, now)

    def _child_exited(self, sup: _MSup, child: _MChild, reason: object, now: float) -> None:
        restart = needs_restart(child.t.restart, reason)
        if sup.t.dynamic:
            if not restart:
                sup.children.remove(child)
                return
            if not self._count(sup, now):
                self._give_up(sup, now)
                return
            # A DynamicSupervisor retries a child that failed to start alone.
            while self._start_each(sup, [child]) is not None:
                if not self._count(sup, now):
                    self._give_up(sup, now)
                    return
            return
        if not restart:
            if child.t.restart is Restart.TEMPORARY:
                sup.children.remove(child)
            return
        if not self._count(sup, now):
            self._give_up(sup, now)
            return
        self._restart_group(sup, child, now)

    def _restart_group(self, sup: _MSup, failed: _MChild, now: float) -> None:
        """Restart ``failed``'s group as the strategy says (the restart was
        counted already): stop the running children of the group in reverse
        order, forget its temporary ones, start the rest in order.

        If a start fails part way, the failure counts as one more restart
        and, within the intensity, the group *of the child that failed to
        start* is restarted as a whole again (OTP's ``try_again``): under
        ONE_FOR_ALL every child, those restarted already included; under
        REST_FOR_ONE that child and those after it.
        """
        while True:
            if sup.t.strategy is Strategy.ONE_FOR_ONE:
                affected = [failed]
            elif sup.t.strategy is Strategy.ONE_FOR_ALL:
                affected = list(sup.children)
            else:
                affected = sup.children[sup.children.index(failed) :]
            for other in reversed(affected):
                if other is not failed and other.gen is not None:
                    other.gen = None
                    other.sup = None
            for other in affected:
                if other is not failed and other.t.restart is Restart.TEMPORARY:
                    sup.children.remove(other)
            broken = self._start_each(sup, [c for c in affected if c in sup.children])
            if broken is None:
                return
            if not self._count(sup, now):
                self._give_up(sup, now)
                return
            failed = broken

    def _start_each(self, sup: _MSup, children: list[_MChild]) -> _MChild | None:
        """Start the children of ``children`` that do not run, in order;
        return the first whose start failed (the rest are left alone)."""
        for child in children:
            if child.gen is not None or child not in sup.children:
                continue
            if not self._try_start(child):
                return child
        return None

    def _try_start(self, child: _MChild) -> bool:
        """One start of ``child`` (and, for a supervisor, of its children in
        order, as its init does); False if it failed."""
        flaky = child.t.flaky
        if flaky is not None and self.pending.get(flaky, 0) > 0:
            self.pending[flaky] -= 1
            return False
        if flaky is not None:
            self.starts[flaky] = self.starts.get(flaky, flaky.starts) + 1
        template = child.t.sup
        if template is not None:
            inst = _MSup(template, child)
            inst.children = [_MChild(t, inst) for t in template.children]
            for grandchild in inst.children:
                if not self._try_start(grandchild):
                    return False  # its init fails; it stops what it started
            child.sup = inst
        child.gen = next(self._gens)
        return True

    # -- comparing -----------------------------------------------------------

    def compare(self, tree: SupervisorState | None, root_reason: object, now: float) -> list[str]:
        """How the real tree differs from the model (empty: it does not)."""
        problems: list[str] = []
        if self.root.gen is None:
            if tree is not None:
                problems.append(
                    f"the root supervisor {tree.pid!r} is running; it should have ended with "
                    f"{self.root_reason!r}"
                )
            elif not (root_reason is self.root_reason or root_reason == self.root_reason):
                problems.append(
                    f"the root supervisor ended with {root_reason!r}; it should have ended "
                    f"with {self.root_reason!r}"
                )
            return problems
        if tree is None:
            problems.append(f"the root supervisor ended with {root_reason!r}; it should still run")
            return problems
        self._bind(self.root, tree.pid, (), problems)
        assert self.root.sup is not None
        self._compare_sup(self.root.sup, tree, (), now, problems)
        for start, count in self.pending.items():
            if start.remaining != count:
                problems.append(
                    f"{start!r} has {start.remaining} start failure(s) still armed; it should "
                    f"have {count}"
                )
        for start, count in self.starts.items():
            if start.starts != count:
                problems.append(
                    f"{start!r} was started {start.starts} time(s) in all; it should have been "
                    f"started {count} time(s)"
                )
        return problems

    def _bind(self, child: _MChild, pid: Pid, path: Path, problems: list[str]) -> None:
        assert child.gen is not None
        known = self.pid_of_gen.get(child.gen)
        if known is None:
            if pid in self.seen_pids:
                problems.append(
                    f"{_where(path)} still runs as {pid!r}; it should have been restarted "
                    "(a new pid)"
                )
            else:
                self.pid_of_gen[child.gen] = pid
                self.seen_pids.add(pid)
        elif known is not pid:
            problems.append(
                f"{_where(path)} was restarted (now {pid!r}, before {known!r}); it should "
                "have kept running untouched"
            )

    def _compare_sup(
        self,
        sup: _MSup,
        state: SupervisorState,
        path: Path,
        now: float,
        problems: list[str],
    ) -> None:
        expected = self.window(sup, now)
        if state.restarts_in_window != expected:
            problems.append(
                f"{_where(path)} counts {state.restarts_in_window} restart(s) in its window "
                f"of {state.max_seconds} s; it should count {expected}"
            )
        want = [c.t.id for c in sup.children]
        have = [c.id for c in state.children]
        if want != have:
            problems.append(f"{_where(path)} has the children {have!r}; it should have {want!r}")
            return
        for mine, real in zip(sup.children, state.children, strict=True):
            child_path = (*path, mine.t.id)
            if (mine.gen is not None) != (real.pid is not None):
                if mine.gen is not None:
                    hint = (
                        " (it waits for a delayed restart: the exact model does not cover "
                        "Backoff; use exact_model=False)"
                        if real.state == "restarting"
                        else ""
                    )
                    problems.append(
                        f"{_where(child_path)} [{real.restart.name}] is {real.state}; it should "
                        f"be running{hint}"
                    )
                else:
                    problems.append(
                        f"{_where(child_path)} [{real.restart.name}] runs as {real.pid!r}; it "
                        "should not be running"
                    )
                continue
            if real.pid is not None:
                self._bind(mine, real.pid, child_path, problems)
            if mine.sup is not None and real.supervisor is not None:
                self._compare_sup(mine.sup, real.supervisor, child_path, now, problems)

    def render(self, now: float) -> str:
        """The tree the model expects, indented."""
        if self.root.gen is None or self.root.sup is None:
            return f"(no tree: the root ended with {self.root_reason!r})"
        return _render(self.root.sup, "root", now, self, "")


def _render(sup: _MSup, label: str, now: float, model: TreeModel, indent: str) -> str:
    kind = "dynamic supervisor" if sup.t.dynamic else sup.t.strategy.name
    lines = [
        f"{indent}{label} ({kind}, max {sup.t.max_restarts} restart(s) in "
        f"{sup.t.max_seconds} s): {model.window(sup, now)} restart(s) in the window"
    ]
    for child in sup.children:
        state = "running" if child.gen is not None else "not running"
        lines.append(f"{indent}  {child.t.id!r} [{child.t.restart.name}] {state}")
        if child.sup is not None:
            lines.append(_render(child.sup, repr(child.t.id), now, model, indent + "    "))
    return "\n".join(lines)


def _where(path: Path) -> str:
    return "the root supervisor" if path == () else f"child {path!r}"


# -- the harness ----------------------------------------------------------------


class TreeHarness:
    """Applies faults to a live tree and checks it against OTP's rules.

    Used by ``SupervisionMachine`` and ``check_schedule``; use it directly in
    an async test that runs on a ``VirtualClock(autojump=False)``::

        harness = TreeHarness(lambda: Supervisor.start(children))
        await harness.start()
        await harness.apply(Crash(("cache",)))
        harness.assert_ok()

    After each step, ``problems`` lists what is wrong, in three groups:
    ``tree_problems`` (the model, links and parents), ``orphan_problems``
    and ``intensity_problems``.
    """

    def __init__(
        self,
        start_tree: Callable[[], Awaitable[Pid]],
        *,
        exact_model: bool = True,
        extra_actors: Callable[[], Iterable[Pid]] = tuple,
    ) -> None:
        self._start_tree = start_tree
        self.exact_model = exact_model
        self._extra_actors = extra_actors
        self.root: Pid | None = None
        self.tree: SupervisorState | None = None
        self.model: TreeModel | None = None
        self.log: list[str] = []
        """One line per fault applied, saying what it did."""
        self.tree_problems: list[str] = []
        self.orphan_problems: list[str] = []
        self.intensity_problems: list[str] = []
        self._baseline: set[Pid] = set()
        self._root_exit: asyncio.Future[object] | None = None
        self._kinds: dict[Pid, bool] = {}
        self._root_faulted = False

    @property
    def problems(self) -> list[str]:
        return [*self.tree_problems, *self.orphan_problems, *self.intensity_problems]

    @property
    def root_alive(self) -> bool:
        return self._root_exit is not None and not self._root_exit.done()

    def live_paths(self) -> list[Path]:
        """The paths of the tree's running actors (children first, root last)."""
        if self.tree is None:
            return []
        return [path for path, child in self.tree.walk() if child.pid is not None] + [()]

    def failing_paths(self) -> list[Path]:
        """The paths of children whose start can be made to fail."""
        if self.model is None or self.model.root.sup is None:
            return []
        found: list[Path] = []

        def visit(sup: _MSup, path: Path) -> None:
            for child in sup.children:
                mine = (*path, child.t.id)
                if child.t.flaky is not None:
                    found.append(mine)
                if child.sup is not None:
                    visit(child.sup, mine)

        visit(self.model.root.sup, ())
        return found

    async def start(self) -> Pid:
        """Start the tree (again, after its root ended) and build the model."""
        node = current_node()
        if self.model is not None:
            for start in self.model.failing_starts():
                start.remaining = 0  # a fresh tree starts clean
        self._baseline = set(live_pids(node))
        root = await self._start_tree()
        if type(root) is not Pid:
            raise TypeError(f"start_tree must return the root supervisor's Pid, not {root!r}")
        if not is_alive(root):
            raise AssertionError(f"the root supervisor {root!r} ended as soon as it started")
        self.root = root
        self._root_faulted = False
        self._root_exit = exit_future(root)
        self._kinds = {}
        await settle()
        self.tree = await snapshot(root, 5.0, self._kinds)
        self.model = TreeModel(self.tree, asyncio.get_running_loop().time())
        self.log.append(f"started the tree: root {root!r}")
        self._check()
        return root

    async def apply(self, fault: Fault) -> str:
        """Apply one fault to the tree and to the model, settle, and check."""
        model = self.model
        if model is None:
            raise RuntimeError("TreeHarness.apply: start() the tree first")
        now = asyncio.get_running_loop().time()
        if isinstance(fault, PassTime):
            clock = current_clock()
            if clock is None:
                raise RuntimeError("PassTime needs a VirtualClock installed on the loop")
            await clock.advance(fault.seconds)
            note = f"{fault.seconds} s passed"
        elif isinstance(fault, FailInit):
            child = model.find(fault.target) if fault.target else None
            start = child.t.flaky if child is not None else None
            if start is None:
                note = "skipped: no start there that can fail (wrap its spec with fail_init)"
            else:
                start.fail_next(fault.times)
                model.arm(start, fault.times)
                note = f"the next {fault.times} start(s) of {fault.target!r} will fail"
        elif isinstance(fault, (Crash, Kill)):
            child = model.find(fault.target)
            pid = self.tree.pid_at(fault.target) if self.tree is not None else None
            if child is None or child.gen is None or pid is None:
                note = "skipped: nothing runs there"
            else:
                if isinstance(fault, Kill):
                    reason = await kill(pid)
                else:
                    reason = await crash(pid, fault.reason)
                model.exit(child, reason, now)
                self._root_faulted = self._root_faulted or fault.target == ()
                note = f"killed {pid!r}" if reason is KILLED else f"crashed {pid!r} with {reason!r}"
        else:
            raise TypeError(f"TreeHarness.apply: not a fault: {fault!r}")
        await settle()
        await self._refresh()
        line = f"{len(self.log)}. {fault!r}: {note}"
        self.log.append(line)
        self._check()
        return note

    async def refresh(self) -> None:
        """Settle and check again (after a step of your own)."""
        await settle()
        await self._refresh()
        self._check()

    async def _refresh(self) -> None:
        if self.root is None or not self.root_alive:
            self.tree = None
            return
        try:
            self.tree = await snapshot(self.root, 5.0, self._kinds)
        except ActorError:
            self.tree = None

    def _check(self) -> None:
        model = self.model
        assert model is not None
        now = asyncio.get_running_loop().time()
        tree = self.tree
        root_reason = (
            self._root_exit.result()
            if self._root_exit is not None and self._root_exit.done()
            else None
        )
        tree_problems: list[str] = []
        intensity: list[str] = []
        if self.exact_model:
            tree_problems.extend(model.compare(tree, root_reason, now))
        elif (
            tree is None
            and root_reason is not None
            and root_reason != GAVE_UP
            and not self._root_faulted
        ):
            tree_problems.append(
                f"the root supervisor ended with {root_reason!r}, without giving up"
            )
        if tree is not None:
            for path, sup in tree.supervisors():
                if sup.restarts_in_window > sup.max_restarts:
                    intensity.append(
                        f"{_where(path)} counts {sup.restarts_in_window} restart(s) in "
                        f"{sup.max_seconds} s and still runs; its limit is {sup.max_restarts}"
                    )
                for child in sup.children:
                    child_path = (*path, child.id)
                    if child.pid is None:
                        if not self.exact_model and (
                            child.restart is Restart.PERMANENT and child.state == "stopped"
                        ):
                            tree_problems.append(
                                f"{_where(child_path)} is PERMANENT but stopped: its "
                                "supervisor did not restart it"
                            )
                        continue
                    info = process_info(child.pid)
                    if info is None:
                        tree_problems.append(
                            f"{_where(child_path)}: its supervisor lists {child.pid!r} as "
                            "running, but that actor is dead"
                        )
                    elif info.parent is not sup.pid or sup.pid not in info.links:
                        tree_problems.append(
                            f"{_where(child_path)} {child.pid!r} is not linked to its "
                            f"supervisor {sup.pid!r} as its child (parent {info.parent!r})"
                        )
        node = current_node()
        allowed = set(self._baseline) | set(self._extra_actors())
        if tree is not None:
            allowed |= tree.pids()
        orphans = [pid for pid in live_pids(node) if pid not in allowed]
        self.orphan_problems = (
            [
                "actors outside the tree are still running (orphans): "
                + ", ".join(_describe_orphan(pid) for pid in orphans)
            ]
            if orphans
            else []
        )
        self.tree_problems = tree_problems
        self.intensity_problems = intensity

    def report(self, problems: Sequence[str] | None = None) -> str:
        """A readable account: the problems, the faults so far, and the trees."""
        problems = self.problems if problems is None else problems
        now = asyncio.get_running_loop().time()
        parts = ["OTP invariant violated:"]
        parts.extend(f"  - {p}" for p in problems)
        parts.append("faults so far:")
        parts.extend(f"  {line}" for line in self.log)
        if self.exact_model and self.model is not None:
            parts.append("the tree as OTP's rules say it should be:")
            parts.append(_indent(self.model.render(now)))
        parts.append("the tree as it is:")
        parts.append(
            _indent(self.tree.render()) if self.tree is not None else "  (no tree: the root ended)"
        )
        return "\n".join(parts)

    def assert_ok(self) -> None:
        """Raise ``AssertionError`` with ``report()`` if anything is wrong."""
        if self.problems:
            raise AssertionError(self.report())


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _describe_orphan(pid: Pid) -> str:
    info = process_info(pid)
    if info is None:
        return repr(pid)
    return f"{pid!r} (parent {info.parent!r}, {info.status})"


# -- one schedule, as a plain test ---------------------------------------------


def check_schedule(
    tree: SupervisorSpec,
    schedule: Sequence[Fault],
    *,
    supervisor: type[Supervisor] = Supervisor,
    exact_model: bool = True,
) -> None:
    """Start ``tree`` on a fresh node and virtual clock, apply ``schedule``
    one fault at a time, and raise ``AssertionError`` (with the faults so far
    and the expected and actual trees) at the first violation of OTP's rules.

    Synchronous (it runs its own event loop), for ``@given`` tests::

        @given(data=st.data(), tree=supervision_trees())
        def test_trees_recover(data, tree):
            check_schedule(tree, data.draw(fault_schedules(tree)))
    """

    async def run() -> None:
        with VirtualClock(autojump=False) as clock:
            try:
                async with node_context():
                    harness = TreeHarness(
                        lambda: tree.start(supervisor=supervisor), exact_model=exact_model
                    )
                    await harness.start()
                    harness.assert_ok()
                    for fault in schedule:
                        await harness.apply(fault)
                        harness.assert_ok()
                    clock.autojump = True  # the shutdown may wait on deadlines
            finally:
                clock.autojump = True

    anyio.run(run)
