"""asyncotp.testing strategies, trees and schedules: generated trees are
bounded and print as Python; random schedules against random trees keep
OTP's rules."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asyncotp
import asyncotp.testing
from asyncotp import INFINITY, Node, Restart, Strategy
from asyncotp.testing import (
    Crash,
    FailInit,
    Fault,
    Kill,
    PassTime,
    SupervisorSpec,
    WorkerSpec,
    check_schedule,
    crash_reasons,
    fault_schedules,
    faults,
    settle,
    supervision_trees,
    tree_snapshot,
)

NAMESPACE = {**vars(asyncotp), **vars(asyncotp.testing)}


def depth(tree: SupervisorSpec) -> int:
    nested = [depth(c) for c in tree.children if isinstance(c, SupervisorSpec)]
    return 1 + max(nested, default=0)


@settings(max_examples=60, deadline=None)
@given(supervision_trees(max_depth=1, max_children=2))
def test_generated_trees_keep_within_their_depth_and_width(tree: SupervisorSpec) -> None:
    assert depth(tree) <= 2
    assert 1 <= len(tree.children) <= 2
    for sup in [tree, *(c for c in tree.children if isinstance(c, SupervisorSpec))]:
        assert len(sup.children) <= 2
        ids = [c.id for c in sup.children]
        assert ids == [
            f"{'s' if isinstance(c, SupervisorSpec) else 'w'}{i}"
            for i, c in enumerate(sup.children)
        ]
    assert tree.restart is Restart.PERMANENT


@settings(max_examples=60, deadline=None)
@given(st.data(), supervision_trees())
def test_trees_and_faults_print_as_python_that_rebuilds_them(
    data: st.DataObject, tree: SupervisorSpec
) -> None:
    assert eval(repr(tree), NAMESPACE) == tree
    fault: Fault = data.draw(faults(tree))
    rebuilt = eval(repr(fault), NAMESPACE)
    assert type(rebuilt) is type(fault)
    if isinstance(fault, Crash):
        assert isinstance(rebuilt, Crash)
        assert (rebuilt.target, repr(rebuilt.reason)) == (fault.target, repr(fault.reason))
    else:
        assert rebuilt == fault


@settings(max_examples=60, deadline=None)
@given(st.data(), supervision_trees())
def test_schedules_only_target_actors_of_their_tree(
    data: st.DataObject, tree: SupervisorSpec
) -> None:
    paths = tree.paths()
    for fault in data.draw(fault_schedules(tree, max_faults=5)):
        if isinstance(fault, (Crash, Kill)):
            assert fault.target in paths
        elif isinstance(fault, FailInit):
            assert fault.target in paths
            assert fault.target != ()
            assert 1 <= fault.times <= 3
        else:
            assert isinstance(fault, PassTime)
            assert fault.seconds > 0


@given(crash_reasons())
def test_crash_reasons_are_abnormal_or_clean_exits(reason: object) -> None:
    assert (
        repr(reason) in {"InjectedFault('injected')", "NORMAL", "SHUTDOWN"}
        or repr(reason) == "Shutdown(detail='injected')"
    )


def test_a_tree_prints_only_the_settings_that_differ_from_the_defaults() -> None:
    tree = SupervisorSpec(
        "root",
        (WorkerSpec("w0"), WorkerSpec("w1", restart=Restart.TEMPORARY)),
        strategy=Strategy.ONE_FOR_ALL,
    )
    assert repr(tree) == (
        "SupervisorSpec('root', children=(WorkerSpec('w0'), WorkerSpec('w1', "
        "restart=Restart.TEMPORARY)), strategy=Strategy.ONE_FOR_ALL)"
    )
    assert tree.paths() == [("w0",), ("w1",), ()]


async def test_a_supervisor_spec_starts_the_tree_it_describes(otp_node: Node) -> None:
    spec = SupervisorSpec(
        children=(
            WorkerSpec("w0"),
            SupervisorSpec("s1", (WorkerSpec("w0"),), strategy=Strategy.REST_FOR_ONE),
        ),
        max_restarts=2,
    )
    root = await spec.start(name="root")
    await settle()
    snap = await tree_snapshot("root")
    assert snap.pid is root
    assert (snap.max_restarts, snap.strategy, snap.dynamic) == (2, Strategy.ONE_FOR_ONE, False)
    assert [path for path, _ in snap.walk()] == [("w0",), ("s1",), ("s1", "w0")]
    nested = snap.find(("s1",))
    assert nested is not None
    assert nested.supervisor is not None
    assert nested.supervisor.strategy is Strategy.REST_FOR_ONE
    assert len(snap.pids()) == 4
    assert snap.pid_at(()) is root
    assert "s1" in snap.render()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.data(), supervision_trees())
def test_random_trees_recover_from_random_fault_schedules_as_otp_says(
    data: st.DataObject, tree: SupervisorSpec
) -> None:
    check_schedule(tree, data.draw(fault_schedules(tree, max_faults=10), label="schedule"))


def test_a_schedule_of_every_kind_of_fault_keeps_otps_rules() -> None:
    tree = SupervisorSpec(
        children=(
            WorkerSpec("w0"),
            SupervisorSpec(
                "s1",
                (WorkerSpec("w0"), WorkerSpec("w1", restart=Restart.TRANSIENT)),
                strategy=Strategy.ONE_FOR_ALL,
                max_restarts=1,
            ),
            WorkerSpec("w2", restart=Restart.TEMPORARY, shutdown=INFINITY),
        ),
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=2,
    )
    check_schedule(
        tree,
        [
            Crash(("w0",)),  # rest_for_one: everything restarts, 1st restart of the root
            Kill(("s1", "w0")),  # 1st restart of s1
            Crash(("s1", "w1"), asyncotp.NORMAL),  # transient, ended normally: stays down
            Kill(("s1", "w0")),  # 2nd restart of s1 within 5 s: it gives up, the root restarts it
            Kill(("s1", "w0")),  # the new s1 restarts it
            FailInit(("s1",), 2),
            Crash(("s1",)),  # a 3rd restart of the root within 5 s: it gives up
            PassTime(10.0),
            Crash(("w2",)),  # skipped: nothing runs any more
        ],
    )
