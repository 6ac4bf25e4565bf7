"""A stateful test of Supervisor against a small independent model.

Hypothesis draws a strategy and 2 to 5 children with random restart types,
then a schedule of crashes, normal stops and client calls (terminate_child,
restart_child, delete_child, start_child). After every step the real
supervisor is compared with the model:

* the children that started and terminated during the step, in order, and
  with which reason (each child appends to a shared list from ``init`` and
  ``terminate``);
* ``which_children`` and ``count_children``;
* which pids are alive: a restarted child has a new pid, a child that was not
  restarted keeps its pid, and every old incarnation is dead;
* whether the supervisor is alive: it must end with ``GAVE_UP`` exactly on
  the restart that exceeds ``max_restarts`` (``max_seconds`` is so large that
  the window never slides during a run).

Rules are synchronous, so one event loop runs in a thread for the whole run
(an anyio blocking portal) with one node in it; each step runs its async code
in a task inside that node's context.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import attrs
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
)

import asyncotp
from asyncotp import (
    GAVE_UP,
    NORMAL,
    SHUTDOWN,
    ActorError,
    Caller,
    ChildCounts,
    ChildInfo,
    ChildNotFound,
    DuplicateChild,
    GenServer,
    NoProcess,
    Pid,
    Restart,
    ServerExited,
    Stop,
    Strategy,
    Supervisor,
    call,
    cast,
    count_children,
    delete_child,
    is_alive,
    process_info,
    restart_child,
    start_child,
    terminate_child,
    which_children,
)
from tests.helpers import watch
from tests.strategies import restarts, supervisor_strategies

T = TypeVar("T")

MAX_RESTARTS = 3
MAX_SECONDS = 1000.0
IDS = ("c0", "c1", "c2", "c3", "c4", "c5", "c6")
STEP_TIMEOUT = 10.0

Event = tuple[str, ...]
"""``("start", id)`` or ``("terminate", id, reason)``, reason one of
``"crash"``, ``"NORMAL"``, ``"SHUTDOWN"``."""


# -- the children -----------------------------------------------------------------------


class Crash(Exception):
    """The error a child raises when told to crash."""


def describe(reason: object) -> str:
    if isinstance(reason, Crash):
        return "crash"
    if reason is NORMAL:
        return "NORMAL"
    if reason is SHUTDOWN:
        return "SHUTDOWN"
    return repr(reason)


class Member(GenServer):
    """A child that reports its start and its termination to a shared list."""

    async def init(self, child_id: str, events: list[Event]) -> None:
        self.child_id = child_id
        self.events = events
        events.append(("start", child_id))

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case "crash":
                raise Crash(f"{self.child_id} crashed")
            case "stop":
                raise Stop()  # NORMAL; the caller gets ServerExited
        return self.child_id

    async def handle_cast(self, request: Any) -> None:
        raise Crash(f"{self.child_id} crashed on a cast")

    async def terminate(self, reason: Any) -> None:
        self.events.append(("terminate", self.child_id, describe(reason)))


# -- one node in a thread for the whole run -------------------------------------------------


class NodeThread:
    """An event loop in a thread (an anyio blocking portal) running one node.

    ``run(fn, *args)`` runs ``await fn(*args)`` in a new task inside the node's
    context and returns its result (or raises its error) in the caller's thread.
    """

    def __init__(self) -> None:
        self._portal_cm: AbstractContextManager[anyio.from_thread.BlockingPortal] = (
            anyio.from_thread.start_blocking_portal()
        )
        self._portal = self._portal_cm.__enter__()
        try:
            self._served, (self._context, self._stop) = self._portal.start_task(self._serve)
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[Any]) -> None:
        async with asyncotp.node() as the_node:
            self.node = the_node
            stop = anyio.Event()
            task_status.started((contextvars.copy_context(), stop))
            await stop.wait()

    def run(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        result: T = self._portal.call(self._run, fn, args)  # mypy infers Any for the overload
        return result

    async def _run(self, fn: Callable[..., Coroutine[Any, Any, T]], args: tuple[Any, ...]) -> T:
        loop = asyncio.get_running_loop()
        task = loop.create_task(fn(*args), context=self._context.copy())
        with anyio.fail_after(STEP_TIMEOUT):
            return await task

    def close(self) -> None:
        """Leave the node (it shuts every actor down) and stop the loop."""
        try:
            self._portal.call(self._stop.set)
            self._served.result(timeout=STEP_TIMEOUT)
        finally:
            self._portal_cm.__exit__(None, None, None)
        assert not self.node.procs, f"actors left after the node stopped: {self.node.procs}"


# -- async helpers (run inside the node) -------------------------------------------------------


async def start_tree(
    specs: list[asyncotp.ChildSpec], strategy: Strategy
) -> tuple[Pid, asyncio.Future[object]]:
    sup = await Supervisor.start(
        specs, strategy=strategy, max_restarts=MAX_RESTARTS, max_seconds=MAX_SECONDS
    )
    return sup, await watch(sup)


async def crash_by_call(pid: Pid) -> object:
    try:
        await call(pid, "crash")
    except ServerExited as exc:
        return exc.reason
    raise AssertionError(f"{pid!r} answered a crash request")


async def crash_by_cast(pid: Pid) -> object:
    """Cast a crash; return the child's exit reason once it has ended."""
    exit_reason = await watch(pid)
    cast(pid, "crash")
    return await exit_reason


async def stop_normally(pid: Pid) -> object:
    try:
        await call(pid, "stop")
    except ServerExited as exc:
        return exc.reason
    raise AssertionError(f"{pid!r} answered a stop request")


async def outcome(operation: Awaitable[object]) -> object:
    """What a client call did: its result, or the kind of error it raised."""
    try:
        return await operation
    except ChildNotFound:
        return "ChildNotFound"
    except NoProcess:
        return "NoProcess"
    except DuplicateChild:
        return "DuplicateChild"
    except ActorError as exc:
        return f"refused: {exc}"


@attrs.frozen
class Observation:
    children: list[ChildInfo] | None
    """None when the supervisor no longer answers."""
    counts: ChildCounts | None
    sup_alive: bool
    sup_reason: object
    alive: frozenset[Pid]
    """The pids, among those asked about, that are alive."""
    parents: dict[Pid, Pid | None]


async def observe(sup: Pid, sup_down: asyncio.Future[object], pids: frozenset[Pid]) -> Observation:
    """The supervisor's state once it has handled every exit signal queued so far.

    ``which_children`` is a round trip through the supervisor's mailbox, which it
    handles in order: the exit signals of the step are ahead of it.
    """
    children: list[ChildInfo] | None
    counts: ChildCounts | None
    try:
        children = await which_children(sup)
        counts = await count_children(sup)
    except (NoProcess, ServerExited):
        children = counts = None
    sup_reason: object = None
    if children is None:
        sup_reason = await asyncio.shield(sup_down)
    current = {c.pid for c in children or () if c.pid is not None}
    parents = {}
    for pid in current:
        info = process_info(pid)
        parents[pid] = info.parent if info is not None else None
    return Observation(
        children=children,
        counts=counts,
        sup_alive=is_alive(sup),
        sup_reason=sup_reason,
        alive=frozenset(p for p in pids | current if is_alive(p)),
        parents=parents,
    )


# -- the model ------------------------------------------------------------------------------------


@attrs.define
class ModelChild:
    id: str
    restart: Restart
    running: bool = True
    incarnation: int = 1


@attrs.define
class Model:
    """What a supervisor must do, written independently of its implementation."""

    strategy: Strategy
    children: list[ModelChild]
    restarts_counted: int = 0
    alive: bool = True

    def find(self, child_id: str) -> ModelChild | None:
        return next((c for c in self.children if c.id == child_id), None)

    def running(self) -> list[str]:
        return [c.id for c in self.children if c.running]

    def child_ended(self, child_id: str, how: str) -> list[Event]:
        """Child ``child_id`` ended by itself with ``how`` ("crash" or "NORMAL")."""
        child = self.find(child_id)
        assert child is not None
        assert child.running
        events: list[Event] = [("terminate", child_id, how)]
        child.running = False
        restart = child.restart is Restart.PERMANENT or (
            child.restart is Restart.TRANSIENT and how == "crash"
        )
        if not restart:
            if child.restart is Restart.TEMPORARY:
                self.children.remove(child)
            return events
        self.restarts_counted += 1
        if self.restarts_counted > MAX_RESTARTS:
            # Give up: stop every running child, last started first.
            events += [
                ("terminate", c.id, "SHUTDOWN") for c in reversed(self.children) if c.running
            ]
            self.children = []
            self.alive = False
            return events
        position = self.children.index(child)
        affected = {
            Strategy.ONE_FOR_ONE: [child],
            Strategy.ONE_FOR_ALL: list(self.children),
            Strategy.REST_FOR_ONE: self.children[position:],
        }[self.strategy]
        for other in reversed(affected):
            if other is not child and other.running:
                events.append(("terminate", other.id, "SHUTDOWN"))
                other.running = False
        for other in affected:
            if other is not child and other.restart is Restart.TEMPORARY:
                self.children.remove(other)
        for other in affected:
            if other in self.children:
                events.append(("start", other.id))
                other.running = True
                other.incarnation += 1
        return events

    def terminate_child(self, child_id: str) -> tuple[object, list[Event]]:
        if not self.alive:
            return "NoProcess", []
        child = self.find(child_id)
        if child is None:
            return "ChildNotFound", []
        events: list[Event] = []
        if child.running:
            events.append(("terminate", child_id, "SHUTDOWN"))
            child.running = False
        if child.restart is Restart.TEMPORARY:
            self.children.remove(child)
        return None, events

    def restart_child(self, child_id: str) -> tuple[object, list[Event]]:
        if not self.alive:
            return "NoProcess", []
        child = self.find(child_id)
        if child is None:
            return "ChildNotFound", []
        if child.running:
            return "refused", []
        child.running = True
        child.incarnation += 1
        return "pid", [("start", child_id)]

    def delete_child(self, child_id: str) -> tuple[object, list[Event]]:
        if not self.alive:
            return "NoProcess", []
        child = self.find(child_id)
        if child is None:
            return "ChildNotFound", []
        if child.running:
            return "refused", []
        self.children.remove(child)
        return None, []

    def start_child(self, child_id: str, restart: Restart) -> tuple[object, list[Event]]:
        if not self.alive:
            return "NoProcess", []
        if self.find(child_id) is not None:
            return "DuplicateChild", []
        self.children.append(ModelChild(child_id, restart))
        return "pid", [("start", child_id)]


def kind(result: object) -> object:
    """A real client call's outcome, in the model's terms."""
    if type(result) is Pid:
        return "pid"
    if isinstance(result, str) and result.startswith("refused: "):
        return "refused"
    return result


# -- the state machine ---------------------------------------------------------------------------


class SupervisorMachine(RuleBasedStateMachine):
    """Drives one Supervisor through random crashes and client calls."""

    def __init__(self) -> None:
        super().__init__()
        self.node: NodeThread | None = None
        self.model: Model | None = None
        self.events: list[Event] = []
        self.sup: Pid | None = None
        self.sup_down: asyncio.Future[object] | None = None
        self.incarnations: dict[str, tuple[int, Pid]] = {}
        self.seen: set[Pid] = set()

    def __repr__(self) -> str:
        if self.model is None:
            return "SupervisorMachine(not started)"
        children = ", ".join(
            f"{c.id}:{c.restart.name}{'' if c.running else '(stopped)'}"
            for c in self.model.children
        )
        return (
            f"SupervisorMachine({self.model.strategy!r}, children=[{children}], "
            f"restarts_counted={self.model.restarts_counted}/{MAX_RESTARTS}, "
            f"alive={self.model.alive})"
        )

    def teardown(self) -> None:
        if self.node is not None:
            self.node.close()

    # -- setup -----------------------------------------------------------------

    @initialize(
        strategy=supervisor_strategies,
        restart_types=st.lists(restarts, min_size=2, max_size=5),
    )
    def start_supervisor(self, strategy: Strategy, restart_types: list[Restart]) -> None:
        self.node = NodeThread()
        ids = IDS[: len(restart_types)]
        self.model = Model(
            strategy, [ModelChild(i, r) for i, r in zip(ids, restart_types, strict=True)]
        )
        specs = [
            Member.child_spec(i, self.events, id=i, restart=r)
            for i, r in zip(ids, restart_types, strict=True)
        ]
        self.sup, self.sup_down = self.node.run(start_tree, specs, strategy)
        self._check([("start", i) for i in ids], since=0)

    # -- rules -----------------------------------------------------------------------

    def _has_running(self) -> bool:
        return self.model is not None and self.model.alive and bool(self.model.running())

    def _pick_running(self, data: st.DataObject) -> tuple[str, Pid]:
        assert self.model is not None
        child_id = data.draw(st.sampled_from(self.model.running()), label="child")
        return child_id, self.incarnations[child_id][1]

    def _crash(
        self, data: st.DataObject, crash: Callable[[Pid], Coroutine[Any, Any, object]]
    ) -> None:
        assert self.node is not None
        assert self.model is not None
        child_id, pid = self._pick_running(data)
        mark = len(self.events)
        reason = self.node.run(crash, pid)
        assert isinstance(reason, Crash)
        self._check(self.model.child_ended(child_id, "crash"), since=mark)

    @precondition(_has_running)
    @rule(data=st.data())
    def crash_child_in_a_call(self, data: st.DataObject) -> None:
        self._crash(data, crash_by_call)

    @precondition(_has_running)
    @rule(data=st.data())
    def crash_child_in_a_cast(self, data: st.DataObject) -> None:
        self._crash(data, crash_by_cast)

    @precondition(_has_running)
    @rule(data=st.data())
    def stop_child_normally(self, data: st.DataObject) -> None:
        assert self.node is not None
        assert self.model is not None
        child_id, pid = self._pick_running(data)
        mark = len(self.events)
        assert self.node.run(stop_normally, pid) is NORMAL
        self._check(self.model.child_ended(child_id, "NORMAL"), since=mark)

    @rule(child_id=st.sampled_from(IDS))
    def terminate_child(self, child_id: str) -> None:
        assert self.model is not None
        self._client_call(terminate_child, child_id, child_id, self.model.terminate_child(child_id))

    @rule(child_id=st.sampled_from(IDS))
    def restart_child(self, child_id: str) -> None:
        assert self.model is not None
        self._client_call(restart_child, child_id, child_id, self.model.restart_child(child_id))

    @rule(child_id=st.sampled_from(IDS))
    def delete_child(self, child_id: str) -> None:
        assert self.model is not None
        self._client_call(delete_child, child_id, child_id, self.model.delete_child(child_id))

    @rule(child_id=st.sampled_from(IDS), restart=restarts)
    def start_child(self, child_id: str, restart: Restart) -> None:
        assert self.model is not None
        spec = Member.child_spec(child_id, self.events, id=child_id, restart=restart)
        self._client_call(start_child, spec, child_id, self.model.start_child(child_id, restart))

    @rule()
    def observe(self) -> None:
        """Nothing happens: the supervisor stays as it is (alive or not)."""
        self._check([], since=len(self.events))

    # -- checks ---------------------------------------------------------------------

    def _client_call(
        self,
        fn: Callable[[Pid, Any], Awaitable[object]],
        argument: object,
        child_id: str,
        expected: tuple[object, list[Event]],
    ) -> None:
        """Make a client call; compare its outcome and its effects with the model's."""
        assert self.node is not None
        assert self.sup is not None
        mark = len(self.events)
        sup = self.sup

        async def attempt() -> object:
            return await outcome(fn(sup, argument))

        result = self.node.run(attempt)
        expected_result, expected_events = expected
        assert kind(result) == expected_result, f"{fn.__name__}({child_id!r}) gave {result!r}"
        pids = self._check(expected_events, since=mark)
        if type(result) is Pid:
            assert result is pids.get(child_id), "the pid returned is the child's"

    def _check(self, expected_events: list[Event], *, since: int) -> dict[str, Pid]:
        """Compare the real supervisor with the model; return the running pids by id."""
        assert self.node is not None
        assert self.model is not None
        assert self.sup is not None
        assert self.sup_down is not None
        seen = frozenset(self.seen)
        obs = self.node.run(observe, self.sup, self.sup_down, seen)
        model = self.model

        happened = self.events[since:]
        assert happened == expected_events, (
            f"starts and terminations of this step: {happened} instead of {expected_events}"
        )
        if not model.alive:
            event("the supervisor gave up")
        elif any(e[0] == "start" for e in happened) and any("SHUTDOWN" in e for e in happened):
            event(f"a {model.strategy.name} restart stopped other children")

        if not model.alive:
            assert obs.children is None, "the supervisor should have given up"
            assert not obs.sup_alive
            assert obs.sup_reason == GAVE_UP
            assert not obs.alive, f"children outlived their supervisor: {obs.alive}"
            return {}

        assert obs.sup_alive, f"the supervisor ended with {obs.sup_reason!r}"
        assert obs.children is not None
        assert [(c.id, c.restart, c.pid is not None) for c in obs.children] == [
            (c.id, c.restart, c.running) for c in model.children
        ], "which_children"
        n = len(model.children)
        running = len(model.running())
        assert obs.counts == ChildCounts(specs=n, active=running, supervisors=0, workers=n)

        pids: dict[str, Pid] = {}
        for info in obs.children:
            child = model.find(str(info.id))
            assert child is not None
            if info.pid is None:
                self.incarnations.pop(child.id, None)
                continue
            pids[child.id] = info.pid
            assert obs.parents[info.pid] is self.sup
            known = self.incarnations.get(child.id)
            if known is not None and known[0] == child.incarnation:
                assert info.pid is known[1], f"{child.id} was restarted but should not have been"
            else:
                assert info.pid not in self.seen, f"{child.id} runs under an old pid"
            self.incarnations[child.id] = (child.incarnation, info.pid)
        for child_id in list(self.incarnations):
            if child_id not in pids:
                del self.incarnations[child_id]
        self.seen.update(pids.values())
        assert obs.alive == frozenset(pids.values()), "exactly the current children are alive"
        return pids


SupervisorMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None
)
TestSupervisorAgainstModel = SupervisorMachine.TestCase


def test_model_restarts_rest_for_one_in_order() -> None:
    """The model itself, on one hand-checked case (it must not share the bugs it checks)."""
    model = Model(
        Strategy.REST_FOR_ONE,
        [
            ModelChild("a", Restart.PERMANENT),
            ModelChild("b", Restart.PERMANENT),
            ModelChild("c", Restart.TEMPORARY),
            ModelChild("d", Restart.TRANSIENT),
        ],
    )

    events = model.child_ended("b", "crash")

    assert events == [
        ("terminate", "b", "crash"),
        ("terminate", "d", "SHUTDOWN"),
        ("terminate", "c", "SHUTDOWN"),
        ("start", "b"),
        ("start", "d"),
    ]
    assert [(c.id, c.running) for c in model.children] == [("a", True), ("b", True), ("d", True)]


def test_model_gives_up_on_the_restart_beyond_max_restarts() -> None:
    model = Model(
        Strategy.ONE_FOR_ONE,
        [ModelChild("a", Restart.PERMANENT), ModelChild("b", Restart.PERMANENT)],
    )

    for _ in range(MAX_RESTARTS):
        assert model.child_ended("a", "crash")[-1] == ("start", "a")

    assert model.child_ended("a", "crash") == [
        ("terminate", "a", "crash"),
        ("terminate", "b", "SHUTDOWN"),
    ]
    assert not model.alive
