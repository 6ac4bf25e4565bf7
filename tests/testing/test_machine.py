"""asyncotp.testing state machines: random faults against a tree keep OTP's
rules, and a deliberately broken supervisor is caught and shrunk to a short
schedule."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, run_state_machine_as_test

from asyncotp import (
    Backoff,
    ChildSpec,
    DynamicSupervisor,
    Pid,
    Restart,
    Strategy,
    Supervisor,
    call,
    receive,
    spawn,
    start_child,
    unlink,
    which_children,
)
from asyncotp.testing import (
    Crash,
    Fault,
    Kill,
    RandomTreeMachine,
    SupervisionMachine,
    SupervisorSpec,
    TreeWorker,
    WorkerSpec,
    check_schedule,
    fail_init,
    fault_schedules,
    supervision_trees,
)

# Fast, reproducible searches: no database, a fixed seed, no explain phase
# (it traces every line, which is slow); the shrinker still runs in full.
SEARCH = settings(
    max_examples=150,
    stateful_step_count=10,
    deadline=None,
    database=None,
    derandomize=True,
    report_multiple_bugs=False,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow],
)


# -- deliberately broken supervisors --------------------------------------------


class ForgetfulSupervisor(Supervisor):
    """Restarts a child once; after that it forgets to (and to count it)."""

    async def _child_exited(self, child: Any, reason: object) -> None:
        if child.restarts >= 1:
            self._by_pid.pop(child.pid, None)
            child.pid = None
            return
        await super()._child_exited(child, reason)


class EagerSupervisor(Supervisor):
    """ONE_FOR_ONE in name, but restarts every child when one fails."""

    async def _child_exited(self, child: Any, reason: object) -> None:
        strategy = self.strategy
        self.strategy = Strategy.ONE_FOR_ALL
        try:
            await super()._child_exited(child, reason)
        finally:
            self.strategy = strategy


class CarelessSupervisor(Supervisor):
    """Gives up without stopping its children: they live on as orphans."""

    async def _give_up(self, child: Any, reason: object) -> None:
        for other in self._children:
            if other.pid is not None:
                unlink(other.pid)
                self._by_pid.pop(other.pid, None)
                other.pid = None
        await super()._give_up(child, reason)


def three_workers(supervisor: type[Supervisor]) -> type[SupervisionMachine]:
    class ThreeWorkers(SupervisionMachine):
        async def start_tree(self) -> Pid:
            return await SupervisorSpec(
                children=(WorkerSpec("w0"), WorkerSpec("w1"), WorkerSpec("w2")),
                max_restarts=2,
            ).start(supervisor=supervisor)

    ThreeWorkers.__name__ = ThreeWorkers.__qualname__ = f"ThreeWorkersUnder{supervisor.__name__}"
    return ThreeWorkers


def failing_steps(machine: type[RuleBasedStateMachine]) -> tuple[list[str], str]:
    """Run ``machine`` until it fails; return the shrunk steps (the rules
    called, without the start, the invariant and the teardown) and the
    failure's message."""
    with pytest.raises(AssertionError) as failure:
        run_state_machine_as_test(machine, settings=SEARCH)
    notes = "\n".join(getattr(failure.value, "__notes__", []))
    steps = [
        line
        for line in notes.splitlines()
        if line.startswith("state.")
        and not line.startswith(("state.start(", "state.teardown(", "state.otp_rules_hold("))
    ]
    return steps, str(failure.value)


# -- the machine finds what is wrong ---------------------------------------------------


def test_a_supervisor_that_forgets_to_restart_is_caught_and_shrunk_to_two_faults() -> None:
    steps, message = failing_steps(three_workers(ForgetfulSupervisor))
    assert len(steps) == 2, steps
    assert steps[0] == steps[1]
    assert steps[0].startswith(("state.crash(path=('w0',)", "state.kill(path=('w0',)"))
    assert "faults so far:" in message
    assert "the tree as OTP's rules say it should be:" in message


def test_a_supervisor_that_restarts_the_wrong_children_is_caught_in_one_fault() -> None:
    steps, message = failing_steps(three_workers(EagerSupervisor))
    assert len(steps) == 1, steps
    assert "it should have kept running untouched" in message


def test_a_supervisor_that_leaves_orphans_when_it_gives_up_is_caught() -> None:
    steps, message = failing_steps(three_workers(CarelessSupervisor))
    assert 1 <= len(steps) <= 3, steps
    assert "orphans" in message


def test_find_shrinks_a_failing_schedule_to_a_short_readable_one() -> None:
    def fails(case: tuple[SupervisorSpec, list[Fault]]) -> bool:
        tree, schedule = case
        try:
            check_schedule(tree, schedule, supervisor=ForgetfulSupervisor)
        except AssertionError:
            return True
        return False

    cases = supervision_trees(max_depth=1).flatmap(
        lambda tree: st.tuples(st.just(tree), fault_schedules(tree))
    )
    tree, schedule = find(cases, fails, settings=SEARCH)
    # The smallest tree: one worker; the shortest schedule: two faults on it
    # (the first restart goes through, the second is forgotten).
    assert tree.children == (WorkerSpec("w0"),)
    assert tree.max_restarts >= 1
    assert len(schedule) == 2
    assert all(isinstance(fault, (Crash, Kill)) for fault in schedule)
    assert all(fault.target == ("w0",) for fault in schedule)  # type: ignore[union-attr]
    assert (
        repr(schedule)
        in {
            "[Kill(target=('w0',)), Kill(target=('w0',))]",
            "[Crash(target=('w0',), reason=InjectedFault('injected')), "
            "Crash(target=('w0',), reason=InjectedFault('injected'))]",
        }
        or len(repr(schedule)) < 130
    )


# -- correct supervisors pass -------------------------------------------------------


@settings(max_examples=40, stateful_step_count=12, deadline=None, database=None)
class RandomTrees(RandomTreeMachine):
    """Random trees (two levels of supervisors) under random faults."""


TestRandomTrees = RandomTrees.TestCase


@settings(max_examples=25, stateful_step_count=12, deadline=None, database=None)
class PoolMachine(SupervisionMachine):
    """A tree with a dynamic pool, checked against the exact model too; its
    children's starts can fail on demand."""

    async def start_tree(self) -> Pid:
        root = await Supervisor.start(
            [
                fail_init(TreeWorker.child_spec(("w",), id="w"), times=0),
                fail_init(DynamicSupervisor.child_spec(id="pool", max_restarts=2), times=0),
            ],
            strategy=Strategy.ONE_FOR_ALL,
            max_restarts=2,
        )
        (pool,) = [c.pid for c in await which_children(root) if c.id == "pool"]
        assert pool is not None
        for index, restart in enumerate(Restart):
            spec = TreeWorker.child_spec(("pool", index), id=f"d{index}", restart=restart)
            await start_child(pool, fail_init(spec, times=0))
        return root

    @invariant()
    def workers_answer(self) -> None:
        tree = self.tree
        if tree is None:
            return
        for path, child in tree.walk():
            if child.pid is not None and child.supervisor is None and path[0] == "w":
                assert self.run(call, child.pid, "ping") == ("w",)


TestPoolMachine = PoolMachine.TestCase


@settings(max_examples=15, stateful_step_count=10, deadline=None, database=None)
class BackoffMachine(SupervisionMachine):
    """Delayed restarts are outside the exact model: the model-free checks
    (and ``pass_time``) still apply."""

    exact_model = False
    fault_root = False

    async def start_tree(self) -> Pid:
        backoff = Backoff(initial=1.0, max=4.0, jitter=0.5)
        return await Supervisor.start(
            [
                ChildSpec("a", TreeWorker.child_spec(("a",)).start, backoff=backoff),
                ChildSpec("b", TreeWorker.child_spec(("b",)).start, Restart.TRANSIENT),
            ],
            max_restarts=5,
        )


TestBackoffMachine = BackoffMachine.TestCase


def test_an_actor_left_outside_the_tree_is_an_orphan_unless_declared() -> None:
    class Leaky(SupervisionMachine):
        stray: Pid

        async def start_tree(self) -> Pid:
            self.stray = spawn(idle)
            return await SupervisorSpec(children=(WorkerSpec("w0"),)).start()

    class Declared(Leaky):
        def extra_actors(self) -> list[Pid]:
            return [self.stray]

    machine = Leaky()
    try:
        machine.start()
        with pytest.raises(AssertionError, match="orphans"):
            machine.otp_rules_hold()
    finally:
        machine.teardown()
    declared = Declared()
    try:
        declared.start()
        declared.otp_rules_hold()
    finally:
        declared.teardown()


async def idle() -> None:
    await receive()


def test_a_machine_without_start_tree_says_what_to_define() -> None:
    machine = SupervisionMachine()
    try:
        with pytest.raises(NotImplementedError, match="must define `async def start_tree"):
            machine.start()
    finally:
        machine.teardown()
