"""Child specs and backoff: pure values, validated at construction.

No event loop here: a ``ChildSpec`` and a ``Backoff`` are plain frozen values.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable
from fractions import Fraction
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncotp import (
    BRUTAL_KILL,
    INFINITY,
    Agent,
    Backoff,
    ChildSpec,
    ChildType,
    GenServer,
    Pid,
    Restart,
    Supervisor,
)
from tests.strategies import backoffs, child_ids, restarts


async def _start() -> Pid:
    raise AssertionError("never started in these tests")


class Worker(GenServer):
    pass


def _assert_names(error: BaseException, field: str, value: object) -> None:
    message = str(error)
    assert field in message, message
    assert repr(value) in message, message


# -- ChildSpec ------------------------------------------------------------------


def test_child_spec_is_frozen() -> None:
    spec = ChildSpec("a", _start)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.id = "b"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.shutdown = 1.0  # type: ignore[misc]
    assert spec.id == "a"


def test_child_spec_defaults_are_permanent_worker_with_five_seconds_shutdown() -> None:
    spec = ChildSpec("a", _start)
    assert spec.restart is Restart.PERMANENT
    assert spec.type is ChildType.WORKER
    assert spec.shutdown == 5.0
    assert spec.backoff is None


def test_child_spec_of_a_supervisor_waits_for_it_by_default() -> None:
    spec = ChildSpec("sup", _start, type=ChildType.SUPERVISOR)
    assert spec.shutdown is INFINITY


def test_child_spec_keeps_an_explicit_shutdown_of_a_supervisor() -> None:
    assert ChildSpec("sup", _start, shutdown=2.5, type=ChildType.SUPERVISOR).shutdown == 2.5


@given(child_id=child_ids, restart=restarts)
def test_child_spec_accepts_any_hashable_id_and_restart(
    child_id: Hashable, restart: Restart
) -> None:
    spec = ChildSpec(child_id, _start, restart)
    assert spec.id == child_id
    assert spec.restart is restart


@pytest.mark.parametrize("shutdown", [BRUTAL_KILL, INFINITY, 0, 0.0, 0.001, 1, 5.0, 3600])
def test_child_spec_accepts_seconds_from_zero_brutal_kill_and_infinity(shutdown: object) -> None:
    assert ChildSpec("a", _start, shutdown=shutdown).shutdown == shutdown  # type: ignore[arg-type]


@pytest.mark.parametrize("bad_id", [None, ["a"], {"a": 1}, {1, 2}])
def test_child_spec_rejects_a_missing_or_unhashable_id_naming_it(bad_id: object) -> None:
    with pytest.raises(TypeError) as info:
        ChildSpec(bad_id, _start)
    _assert_names(info.value, "ChildSpec.id", bad_id)


@pytest.mark.parametrize("bad_start", [None, "start", 42, Worker()])
def test_child_spec_rejects_a_start_that_is_not_callable_naming_it(bad_start: object) -> None:
    with pytest.raises(TypeError) as info:
        ChildSpec("a", bad_start)  # type: ignore[arg-type]
    _assert_names(info.value, "ChildSpec.start", bad_start)


@pytest.mark.parametrize("bad_restart", ["permanent", None, 1, ChildType.WORKER])
def test_child_spec_rejects_a_restart_that_is_not_a_restart_member(bad_restart: object) -> None:
    with pytest.raises(TypeError) as info:
        ChildSpec("a", _start, bad_restart)  # type: ignore[arg-type]
    _assert_names(info.value, "ChildSpec.restart", bad_restart)


@pytest.mark.parametrize("bad_type", ["worker", None, Restart.PERMANENT])
def test_child_spec_rejects_a_type_that_is_not_a_child_type_member(bad_type: object) -> None:
    with pytest.raises(TypeError) as info:
        ChildSpec("a", _start, type=bad_type)  # type: ignore[arg-type]
    _assert_names(info.value, "ChildSpec.type", bad_type)


@pytest.mark.parametrize("bad_shutdown", [-1, -0.5, math.nan, -math.inf])
def test_child_spec_rejects_a_negative_or_nan_shutdown_with_value_error(
    bad_shutdown: float,
) -> None:
    with pytest.raises(ValueError) as info:
        ChildSpec("a", _start, shutdown=bad_shutdown)
    _assert_names(info.value, "ChildSpec.shutdown", bad_shutdown)


@pytest.mark.parametrize("bad_shutdown", ["5", None, True, [1.0], "brutal_kill"])
def test_child_spec_rejects_a_shutdown_that_is_not_a_number_with_type_error(
    bad_shutdown: object,
) -> None:
    with pytest.raises(TypeError) as info:
        ChildSpec("a", _start, shutdown=bad_shutdown)  # type: ignore[arg-type]
    _assert_names(info.value, "ChildSpec.shutdown", bad_shutdown)


@pytest.mark.parametrize("bad_backoff", [1.0, "exponential", {"initial": 1.0}])
def test_child_spec_rejects_a_backoff_that_is_not_a_backoff(bad_backoff: object) -> None:
    with pytest.raises(TypeError) as info:
        ChildSpec("a", _start, backoff=bad_backoff)  # type: ignore[arg-type]
    _assert_names(info.value, "ChildSpec.backoff", bad_backoff)


def test_child_spec_takes_backoff_only_by_keyword() -> None:
    backoff = Backoff()
    assert ChildSpec("a", _start, backoff=backoff).backoff is backoff
    with pytest.raises(TypeError):
        # backoff is keyword-only: passing it by position is the error under test.
        ChildSpec("a", _start, Restart.PERMANENT, 5.0, ChildType.WORKER, backoff)  # type: ignore[call-arg]


def test_child_specs_with_the_same_fields_are_equal() -> None:
    assert ChildSpec("a", _start, shutdown=1.0) == ChildSpec("a", _start, shutdown=1.0)
    assert ChildSpec("a", _start) != ChildSpec("b", _start)


# -- behaviours' child_spec ---------------------------------------------------------


def _partial(spec: ChildSpec) -> functools.partial[Any]:
    assert isinstance(spec.start, functools.partial)
    return spec.start


def test_genserver_child_spec_defaults_to_the_class_name_and_a_linked_start() -> None:
    spec = Worker.child_spec()
    assert spec.id == "Worker"
    assert spec.restart is Restart.PERMANENT
    assert spec.type is ChildType.WORKER
    assert spec.shutdown == 5.0
    assert spec.backoff is None
    start = _partial(spec)
    assert start.func == Worker.start
    assert start.args == ()
    assert start.keywords == {"link": True}


def test_genserver_child_spec_passes_init_and_start_arguments_to_every_start() -> None:
    backoff = Backoff(initial=0.5)
    spec = Worker.child_spec(
        1,
        2,
        id="w",
        restart=Restart.TRANSIENT,
        shutdown=BRUTAL_KILL,
        name="worker",
        mailbox_size=10,
        backoff=backoff,
        flag=True,
    )
    assert (spec.id, spec.restart, spec.shutdown) == ("w", Restart.TRANSIENT, BRUTAL_KILL)
    assert spec.backoff is backoff
    start = _partial(spec)
    assert start.args == (1, 2)
    assert start.keywords == {"link": True, "name": "worker", "mailbox_size": 10, "flag": True}


def test_genserver_child_spec_validates_like_child_spec() -> None:
    with pytest.raises(ValueError, match="shutdown"):
        Worker.child_spec(shutdown=-1)
    with pytest.raises(TypeError, match="restart"):
        Worker.child_spec(restart="transient")  # an init that takes anything: unchecked


def test_agent_child_spec_defaults_to_id_agent_and_passes_initial() -> None:
    initial = dict
    spec = Agent.child_spec(initial)
    assert spec.id == "Agent"
    assert spec.type is ChildType.WORKER
    assert spec.shutdown == 5.0
    assert spec.restart is Restart.PERMANENT
    start = _partial(spec)
    assert start.args == (initial,)
    assert start.keywords["link"] is True


def test_agent_child_spec_takes_id_restart_and_shutdown() -> None:
    spec = Agent.child_spec(dict, id="cache", restart=Restart.TEMPORARY, shutdown=1.5)
    assert (spec.id, spec.restart, spec.shutdown) == ("cache", Restart.TEMPORARY, 1.5)


def test_supervisor_child_spec_is_a_supervisor_with_infinite_shutdown() -> None:
    children = [Worker.child_spec()]
    spec = Supervisor.child_spec(children)
    assert spec.id == "Supervisor"
    assert spec.type is ChildType.SUPERVISOR
    assert spec.shutdown is INFINITY
    assert spec.restart is Restart.PERMANENT
    start = _partial(spec)
    assert start.args == (children,)
    assert start.keywords["link"] is True


def test_supervisor_child_spec_passes_its_options_to_start() -> None:
    spec = Supervisor.child_spec([], id="inner", shutdown=10.0, max_restarts=7, name="inner")
    assert (spec.id, spec.shutdown, spec.type) == ("inner", 10.0, ChildType.SUPERVISOR)
    assert _partial(spec).keywords == {"link": True, "max_restarts": 7, "name": "inner"}


# -- Backoff --------------------------------------------------------------------------


def test_backoff_defaults() -> None:
    backoff = Backoff()
    assert (backoff.initial, backoff.max, backoff.multiplier) == (0.1, 30.0, 2.0)
    assert (backoff.jitter, backoff.reset_after) == (0.1, 60.0)


def test_backoff_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Backoff().initial = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("initial", -0.1),
        ("max", -1.0),
        ("multiplier", -2.0),
        ("jitter", -0.5),
        ("reset_after", -1),
        ("initial", "0.1"),
        ("reset_after", None),
        ("jitter", True),
        ("initial", math.nan),
        ("reset_after", math.nan),
    ],
)
def test_backoff_rejects_a_field_that_is_not_a_number_at_least_zero(
    field: str, value: object
) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        Backoff(**{field: value})  # type: ignore[arg-type]  # a wrong value on purpose
    _assert_names(info.value, f"Backoff.{field}", value)


def test_backoff_rejects_a_multiplier_below_one() -> None:
    with pytest.raises(ValueError) as info:
        Backoff(multiplier=0.5)
    _assert_names(info.value, "Backoff.multiplier", 0.5)


def test_backoff_rejects_a_jitter_above_one() -> None:
    with pytest.raises(ValueError) as info:
        Backoff(jitter=1.5)
    _assert_names(info.value, "Backoff.jitter", 1.5)


def test_backoff_rejects_a_max_below_initial() -> None:
    with pytest.raises(ValueError) as info:
        Backoff(initial=2.0, max=1.0)
    assert "Backoff.max" in str(info.value)
    assert "Backoff.initial" in str(info.value)


def test_backoff_without_jitter_doubles_from_initial_up_to_max() -> None:
    backoff = Backoff(initial=0.1, max=1.0, multiplier=2.0, jitter=0.0)
    delays = [backoff.delay(attempt, 0.5) for attempt in range(6)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


units = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
attempts = st.integers(min_value=0, max_value=10_000)


@settings(max_examples=150)
@given(backoff=backoffs(), attempt=attempts, unit=units)
def test_backoff_delay_is_never_negative_nor_above_max(
    backoff: Backoff, attempt: int, unit: float
) -> None:
    delay = backoff.delay(attempt, unit)
    assert 0.0 <= delay <= backoff.max


@settings(max_examples=150)
@given(backoff=backoffs(), attempt=attempts)
def test_backoff_delay_without_jitter_is_initial_times_multiplier_powers_capped_at_max(
    backoff: Backoff, attempt: int
) -> None:
    backoff = attrs.evolve(backoff, jitter=0.0)
    # Exact rationals, so a huge power does not overflow the model itself.
    expected = min(
        Fraction(backoff.max), Fraction(backoff.initial) * Fraction(backoff.multiplier) ** attempt
    )
    assert backoff.delay(attempt, 0.25) == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


@settings(max_examples=150)
@given(backoff=backoffs(), attempt=st.integers(0, 200), unit=units)
def test_backoff_delay_grows_with_each_attempt_for_the_same_draw(
    backoff: Backoff, attempt: int, unit: float
) -> None:
    assert backoff.delay(attempt + 1, unit) >= backoff.delay(attempt, unit) - 1e-12


@settings(max_examples=150)
@given(backoff=backoffs(), attempt=st.integers(0, 200), unit=units)
def test_backoff_jitter_spreads_the_delay_by_at_most_its_fraction(
    backoff: Backoff, attempt: int, unit: float
) -> None:
    base = attrs.evolve(backoff, jitter=0.0).delay(attempt, 0.5)
    delay = backoff.delay(attempt, unit)
    tolerance = 1e-9 * max(1.0, base)
    assert base * (1 - backoff.jitter) - tolerance <= delay
    assert delay <= min(backoff.max, base * (1 + backoff.jitter)) + tolerance


def test_backoff_jitter_reaches_both_ends_of_its_spread() -> None:
    backoff = Backoff(initial=1.0, max=10.0, jitter=0.5)
    assert backoff.delay(0, 0.0) == pytest.approx(0.5)
    assert backoff.delay(0, 0.5) == pytest.approx(1.0)
    assert backoff.delay(0, 0.999999) == pytest.approx(1.5, rel=1e-5)
