"""The pure rules of supervision: restart intensity, who restarts, in what order.

No event loop and no clock: each expected value comes from a small model
written here, independently of ``asyncotp.supervision._rules``.
"""

from __future__ import annotations

from collections.abc import Hashable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from asyncotp import KILLED, NOPROC, NORMAL, SHUTDOWN, Restart, Shutdown, Stop, Strategy
from asyncotp.supervision._rules import (
    RestartPlan,
    RestartWindow,
    add_restart,
    needs_restart,
    plan_restart,
)
from tests.strategies import child_ids, restarts, supervisor_strategies

Child = tuple[Hashable, bool, Restart]

# -- add_restart: restart intensity ----------------------------------------------------


def _run(
    times: list[float], max_restarts: int, max_seconds: float
) -> list[tuple[tuple[float, ...], bool]]:
    """Feed ``times`` to add_restart one after another; every answer, in order."""
    history: tuple[float, ...] = ()
    answers = []
    for t in times:
        history, ok = add_restart(history, t, max_restarts, max_seconds)
        answers.append((history, ok))
    return answers


def test_add_restart_allows_max_restarts_within_the_window_and_gives_up_on_one_more() -> None:
    answers = _run([0.0, 1.0, 2.0, 3.0], max_restarts=3, max_seconds=5.0)
    assert [ok for _, ok in answers] == [True, True, True, False]


def test_add_restart_with_zero_max_restarts_gives_up_on_the_first_restart() -> None:
    assert add_restart((), 10.0, 0, 5.0) == ((10.0,), False)


def test_add_restart_forgets_a_restart_exactly_max_seconds_old() -> None:
    history, ok = add_restart((0.0, 1.0, 2.0), 5.0, 3, 5.0)
    assert ok
    assert history == (1.0, 2.0, 5.0)


def test_add_restart_keeps_a_restart_just_inside_the_window() -> None:
    history, ok = add_restart((0.0, 1.0, 2.0), 4.999, 3, 5.0)
    assert not ok
    assert history == (0.0, 1.0, 2.0, 4.999)


def test_add_restart_lets_a_steady_trickle_of_restarts_go_on_forever() -> None:
    # One restart every 3 s: never more than 2 of them in a 5 s window.
    answers = _run([3.0 * i for i in range(50)], max_restarts=2, max_seconds=5.0)
    assert all(ok for _, ok in answers)


# Integer times and windows keep the model's arithmetic exact.
times_lists = st.lists(st.integers(0, 40), min_size=1, max_size=25).map(sorted)
max_restarts_values = st.integers(0, 6)
windows = st.integers(1, 15)


@settings(max_examples=100)
@given(times=times_lists, max_restarts=max_restarts_values, max_seconds=windows)
def test_add_restart_gives_up_exactly_when_more_than_max_restarts_fall_in_the_window(
    times: list[int], max_restarts: int, max_seconds: int
) -> None:
    answers = _run([float(t) for t in times], max_restarts, float(max_seconds))
    for i, (_, ok) in enumerate(answers):
        # Restarts at or before this one, less than max_seconds old.
        in_window = [t for t in times[: i + 1] if times[i] - t < max_seconds]
        assert ok == (len(in_window) <= max_restarts), (times[: i + 1], in_window)


@settings(max_examples=100)
@given(times=times_lists, max_restarts=max_restarts_values, max_seconds=windows)
def test_add_restart_history_holds_only_the_window_plus_the_new_restart(
    times: list[int], max_restarts: int, max_seconds: int
) -> None:
    history: tuple[float, ...] = ()
    for t in map(float, times):
        before = history
        history, _ = add_restart(history, t, max_restarts, max_seconds)
        assert history[-1] == t
        assert len(history) <= len(before) + 1
        assert all(t - old < max_seconds for old in history)
        # Nothing invented, order kept: a subsequence of the old history, then t.
        assert list(history[:-1]) == [old for old in before if t - old < max_seconds]


@settings(max_examples=100)
@given(times=times_lists, max_restarts=max_restarts_values, max_seconds=windows)
def test_add_restart_history_of_a_supervisor_that_goes_on_never_exceeds_max_restarts(
    times: list[int], max_restarts: int, max_seconds: int
) -> None:
    history: tuple[float, ...] = ()
    for t in map(float, times):
        history, ok = add_restart(history, t, max_restarts, max_seconds)
        if not ok:
            assert len(history) == max_restarts + 1
            break
        assert len(history) <= max_restarts


@given(
    history=st.lists(st.floats(0, 100), max_size=10).map(lambda xs: tuple(sorted(xs))),
    gap=st.floats(0, 100),
    max_restarts=max_restarts_values,
    max_seconds=st.floats(0.001, 50),
)
def test_add_restart_never_mutates_nor_reorders_its_input(
    history: tuple[float, ...], gap: float, max_restarts: int, max_seconds: float
) -> None:
    now = (history[-1] if history else 0.0) + gap
    copy = tuple(history)
    new, _ = add_restart(history, now, max_restarts, max_seconds)
    assert history == copy
    assert list(new) == sorted(new)


# -- needs_restart -------------------------------------------------------------------

CLEAN = [NORMAL, SHUTDOWN, Shutdown("reconfigured"), Shutdown(None)]
ABNORMAL = [RuntimeError("boom"), ValueError(), KILLED, NOPROC, "bad_config", Stop("x"), None]


@pytest.mark.parametrize("reason", CLEAN + ABNORMAL, ids=repr)
def test_permanent_child_is_restarted_whatever_the_reason(reason: object) -> None:
    assert needs_restart(Restart.PERMANENT, reason) is True


@pytest.mark.parametrize("reason", CLEAN, ids=repr)
def test_transient_child_is_not_restarted_after_normal_or_shutdown(reason: object) -> None:
    assert needs_restart(Restart.TRANSIENT, reason) is False


@pytest.mark.parametrize("reason", ABNORMAL, ids=repr)
def test_transient_child_is_restarted_after_an_abnormal_end(reason: object) -> None:
    assert needs_restart(Restart.TRANSIENT, reason) is True


@pytest.mark.parametrize("reason", CLEAN + ABNORMAL, ids=repr)
def test_temporary_child_is_never_restarted(reason: object) -> None:
    assert needs_restart(Restart.TEMPORARY, reason) is False


def test_transient_shutdown_is_recognised_by_type_not_by_equality() -> None:
    # A string that looks like a reason is an abnormal end.
    assert needs_restart(Restart.TRANSIENT, "shutdown") is True
    assert needs_restart(Restart.TRANSIENT, "normal") is True


# -- plan_restart ----------------------------------------------------------------------


@st.composite
def child_lists(draw: st.DrawFn) -> tuple[list[Child], Hashable]:
    """Children in start order (unique ids) and the id of the one that failed
    (no longer running)."""
    ids = draw(st.lists(child_ids, min_size=1, max_size=8, unique=True))
    children: list[Child] = [(i, draw(st.booleans()), draw(restarts)) for i in ids]
    at = draw(st.integers(0, len(ids) - 1))
    failed_id, _, failed_restart = children[at]
    children[at] = (failed_id, False, failed_restart)
    return children, failed_id


def _model(strategy: Strategy, children: list[Child], failed: Hashable) -> RestartPlan[Hashable]:
    """OTP's restart, by hand: pick the affected positions, then walk them."""
    position = next(n for n, (i, _, _) in enumerate(children) if i == failed)
    if strategy is Strategy.ONE_FOR_ONE:
        affected_positions = [position]
    elif strategy is Strategy.ONE_FOR_ALL:
        affected_positions = list(range(len(children)))
    else:
        affected_positions = list(range(position, len(children)))
    stop: list[Hashable] = []
    remove: list[Hashable] = []
    start: list[Hashable] = []
    for n in sorted(affected_positions, reverse=True):  # stopping: last started first
        child_id, running, _ = children[n]
        if running and n != position:
            stop.append(child_id)
    for n in sorted(affected_positions):  # starting: first started first
        child_id, _, restart = children[n]
        if restart is Restart.TEMPORARY and n != position:
            remove.append(child_id)
        else:
            start.append(child_id)
    return RestartPlan(stop=tuple(stop), remove=tuple(remove), start=tuple(start))


@settings(max_examples=100)
@given(case=child_lists(), strategy=supervisor_strategies)
def test_plan_restart_matches_the_model(
    case: tuple[list[Child], Hashable], strategy: Strategy
) -> None:
    children, failed = case
    assert plan_restart(strategy, children, failed) == _model(strategy, children, failed)


@given(case=child_lists())
def test_one_for_one_restarts_only_the_failed_child(case: tuple[list[Child], Hashable]) -> None:
    children, failed = case
    assert plan_restart(Strategy.ONE_FOR_ONE, children, failed) == RestartPlan(
        stop=(), remove=(), start=(failed,)
    )


@given(case=child_lists(), strategy=supervisor_strategies)
def test_plan_restart_always_starts_the_failed_child_and_never_stops_or_removes_it(
    case: tuple[list[Child], Hashable], strategy: Strategy
) -> None:
    children, failed = case
    plan = plan_restart(strategy, children, failed)
    assert failed in plan.start
    assert failed not in plan.stop
    assert failed not in plan.remove


@settings(max_examples=100)
@given(case=child_lists())
def test_one_for_all_stops_every_other_running_child_in_reverse_and_starts_all_in_order(
    case: tuple[list[Child], Hashable],
) -> None:
    children, failed = case
    plan = plan_restart(Strategy.ONE_FOR_ALL, children, failed)
    order = [i for i, _, _ in children]
    assert set(plan.stop) == {i for i, running, _ in children if running}
    assert [order.index(i) for i in plan.stop] == sorted(
        (order.index(i) for i in plan.stop), reverse=True
    )
    temporary_others = {i for i, _, r in children if r is Restart.TEMPORARY and i != failed}
    assert set(plan.remove) == temporary_others
    assert list(plan.start) == [i for i in order if i not in temporary_others]


@settings(max_examples=100)
@given(case=child_lists())
def test_rest_for_one_leaves_the_children_started_before_the_failed_one_alone(
    case: tuple[list[Child], Hashable],
) -> None:
    children, failed = case
    plan = plan_restart(Strategy.REST_FOR_ONE, children, failed)
    order = [i for i, _, _ in children]
    before = set(order[: order.index(failed)])
    rest = children[order.index(failed) :]
    assert before.isdisjoint({*plan.stop, *plan.remove, *plan.start})
    assert set(plan.stop) == {i for i, running, _ in rest if running}
    assert [order.index(i) for i in plan.stop] == sorted(
        (order.index(i) for i in plan.stop), reverse=True
    )
    assert plan.start[0] == failed
    assert list(plan.start) == [i for i, _, _ in rest if i not in plan.remove]


@given(case=child_lists(), strategy=supervisor_strategies)
def test_plan_restart_forgets_every_affected_temporary_child_and_starts_none(
    case: tuple[list[Child], Hashable], strategy: Strategy
) -> None:
    children, failed = case
    plan = plan_restart(strategy, children, failed)
    kinds = {i: r for i, _, r in children}
    assert all(kinds[i] is Restart.TEMPORARY for i in plan.remove)
    assert not {i for i in plan.start if kinds[i] is Restart.TEMPORARY} - {failed}
    # A temporary child that runs is both stopped and forgotten.
    running = {i for i, up, _ in children if up}
    assert {i for i in plan.remove if i in running} <= set(plan.stop)


def test_rest_for_one_example() -> None:
    children: list[Child] = [
        ("db", True, Restart.PERMANENT),
        ("cache", False, Restart.PERMANENT),
        ("job", True, Restart.TEMPORARY),
        ("api", True, Restart.TRANSIENT),
        ("idle", False, Restart.TRANSIENT),
    ]
    assert plan_restart(Strategy.REST_FOR_ONE, children, "cache") == RestartPlan(
        stop=("api", "job"), remove=("job",), start=("cache", "api", "idle")
    )


def test_one_for_all_example() -> None:
    children: list[Child] = [
        ("a", True, Restart.PERMANENT),
        ("b", True, Restart.TEMPORARY),
        ("c", False, Restart.TRANSIENT),
        ("d", True, Restart.PERMANENT),
    ]
    assert plan_restart(Strategy.ONE_FOR_ALL, children, "c") == RestartPlan(
        stop=("d", "b", "a"), remove=("b",), start=("a", "c", "d")
    )


@given(case=child_lists(), strategy=supervisor_strategies, stranger=child_ids)
def test_plan_restart_refuses_an_id_that_is_not_a_child(
    case: tuple[list[Child], Hashable], strategy: Strategy, stranger: Hashable
) -> None:
    children, _ = case
    assume(all(stranger != i for i, _, _ in children))
    with pytest.raises(ValueError, match="not one of the children"):
        plan_restart(strategy, children, stranger)


@settings(max_examples=200)
@given(
    times=st.lists(
        st.floats(0, 100, allow_nan=False, allow_infinity=False), min_size=1, max_size=40
    ).map(sorted),
    max_restarts=max_restarts_values,
    max_seconds=st.floats(0.01, 20, allow_nan=False),
)
def test_restart_window_answers_exactly_as_add_restart(
    times: list[float], max_restarts: int, max_seconds: float
) -> None:
    window = RestartWindow(max_restarts, max_seconds)
    history: tuple[float, ...] = ()
    for t in times:
        history, expected = add_restart(history, t, max_restarts, max_seconds)
        assert window.add(t) == expected
        assert window.history() == history
        assert window.count(t) == len(history)
