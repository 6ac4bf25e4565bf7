"""The kit's exact model restarts a group the way the runtime does: a group
restart (ONE_FOR_ALL, REST_FOR_ONE) whose start fails part way stops the
children it restarted already and restarts the group of the child that
failed again, each failure counting toward the intensity (OTP's
``try_again``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from asyncotp import Restart, Strategy, Supervisor
from asyncotp.testing import (
    Crash,
    FailInit,
    Kill,
    RandomTreeMachine,
    SupervisorSpec,
    WorkerSpec,
    check_schedule,
    fault_schedules,
    supervision_trees,
)


class RetryAloneSupervisor(Supervisor):
    """The old behaviour: after a failed start within a group restart, it
    retries the waiting children only, leaving the ones it restarted
    already running."""

    async def _retry(self, failed: Any, token: int, reason: object) -> None:
        if failed.pending != token or failed.pid is not None or not self._has(failed):
            return
        waiting = [c for c in self._children if c.pending == token]
        await self._start_group(waiting, None, reason)


ONE_FOR_ALL_PAIR = SupervisorSpec(
    children=(WorkerSpec("w0"), WorkerSpec("w1")),
    strategy=Strategy.ONE_FOR_ALL,
    max_restarts=3,
)


def test_a_failed_start_in_a_one_for_all_restart_restarts_the_whole_group_again() -> None:
    # w0 crashes: w1 is stopped, w0 starts, w1 fails (2nd restart), then the
    # whole group restarts again: w0 is started a third time in all.
    check_schedule(ONE_FOR_ALL_PAIR, [FailInit(("w1",), 1), Crash(("w0",))])


def test_the_model_catches_a_supervisor_that_retries_the_failed_child_alone() -> None:
    with pytest.raises(AssertionError, match=r"'w0'.* started 2 time\(s\).*3 time\(s\)"):
        check_schedule(
            ONE_FOR_ALL_PAIR,
            [FailInit(("w1",), 1), Crash(("w0",))],
            supervisor=RetryAloneSupervisor,
        )


def test_a_rest_for_one_retry_restarts_from_the_child_that_failed_to_start() -> None:
    tree = SupervisorSpec(
        children=(WorkerSpec("w0"), WorkerSpec("w1"), WorkerSpec("w2")),
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=4,
    )
    # w0 crashes: w0, w1, w2 restart; w2 fails twice; each retry restarts
    # w2 alone (its rest), and w0 and w1 keep running untouched.
    check_schedule(tree, [FailInit(("w2",), 2), Crash(("w0",)), Kill(("w1",))])


def test_failed_starts_past_the_intensity_make_the_group_supervisor_give_up() -> None:
    tree = SupervisorSpec(
        children=(
            WorkerSpec("w0"),
            SupervisorSpec(
                "s1",
                (WorkerSpec("w0"), WorkerSpec("w1", restart=Restart.TRANSIENT)),
                strategy=Strategy.ONE_FOR_ALL,
                max_restarts=1,
            ),
        ),
        strategy=Strategy.ONE_FOR_ALL,
        max_restarts=3,
    )
    check_schedule(tree, [FailInit(("s1", "w1"), 2), Crash(("s1", "w0")), Crash(("w0",))])


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.data(),
    supervision_trees(
        max_depth=1,
        strategies=st.sampled_from([Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE]),
        max_restarts=st.integers(1, 6),
    ),
)
def test_group_restarts_with_failing_starts_match_the_model_under_random_crashes(
    data: st.DataObject, tree: SupervisorSpec
) -> None:
    # Arm start failures first, so the crashes after them hit group
    # restarts that fail part way.
    paths = [p for p in tree.paths() if p != ()]
    arm = data.draw(
        st.lists(st.builds(FailInit, st.sampled_from(paths), st.integers(1, 3)), max_size=3),
        label="armed",
    )
    schedule = data.draw(fault_schedules(tree, max_faults=6), label="schedule")
    check_schedule(tree, [*arm, *schedule])


GROUP_TREES = supervision_trees(
    max_depth=1,
    strategies=st.sampled_from([Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE]),
    max_restarts=st.integers(2, 6),
)


@settings(max_examples=30, stateful_step_count=12, deadline=None, database=None)
class GroupRestartTrees(RandomTreeMachine):
    """Random group-strategy trees under random crashes, kills and start
    failures, step by step against the exact model."""

    tree_strategy = GROUP_TREES


TestGroupRestartTrees = GroupRestartTrees.TestCase


class RetryAloneTrees(RandomTreeMachine):
    tree_strategy = supervision_trees(
        max_depth=0,
        strategies=st.just(Strategy.ONE_FOR_ALL),
        restarts=st.just(Restart.PERMANENT),
        max_restarts=st.integers(3, 6),
    )
    supervisor_class = RetryAloneSupervisor


def test_the_state_machine_finds_a_supervisor_that_retries_the_failed_child_alone() -> None:
    search = settings(
        max_examples=100,
        stateful_step_count=8,
        deadline=None,
        database=None,
        derandomize=True,
        report_multiple_bugs=False,
        phases=[Phase.generate],  # finding it is the point; shrinking would take seconds
        suppress_health_check=[HealthCheck.too_slow],
    )
    with pytest.raises(AssertionError, match=r"started \d+ time\(s\) in all"):
        run_state_machine_as_test(RetryAloneTrees, settings=search)
