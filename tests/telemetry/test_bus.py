"""The event bus: attach, detach, execute, span, and what a failing handler does."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from asyncotp import telemetry
from asyncotp._core import telemetry as core_telemetry

from .conftest import Recorder


def noop(name: Any, measurements: Any, metadata: Any, config: Any) -> None:
    return None


def test_execute_runs_the_handler_with_measurements_metadata_and_config() -> None:
    seen: list[tuple[Any, ...]] = []
    telemetry.attach(
        "h", ("shop", "order"), lambda *args: seen.append(args), config={"unit": "EUR"}
    )
    try:
        telemetry.execute(("shop", "order"), {"amount": 12.5}, {"customer": "ada"})
        telemetry.execute(("shop", "refund"), {"amount": 1.0}, {})
    finally:
        telemetry.detach("h")
    assert seen == [(("shop", "order"), {"amount": 12.5}, {"customer": "ada"}, {"unit": "EUR"})]


async def test_a_handler_runs_synchronously_in_the_emitting_task() -> None:
    tasks: list[asyncio.Task[Any] | None] = []
    telemetry.attach("h", ("x",), lambda *_: tasks.append(asyncio.current_task()))
    try:
        telemetry.execute(("x",), {}, {})
        assert tasks == [asyncio.current_task()]  # already ran, before execute returned
    finally:
        telemetry.detach("h")


def test_handlers_of_one_event_run_in_attach_order() -> None:
    order: list[str] = []
    telemetry.attach("first", ("x",), lambda *_: order.append("first"))
    telemetry.attach("second", ("x",), lambda *_: order.append("second"))
    try:
        telemetry.execute(("x",))
    finally:
        telemetry.detach("first")
        telemetry.detach("second")
    assert order == ["first", "second"]


def test_attaching_a_taken_id_raises_handler_exists_and_keeps_the_first() -> None:
    telemetry.attach("h", ("x",), noop)
    try:
        with pytest.raises(telemetry.HandlerExists, match="'h' is attached already") as info:
            telemetry.attach("h", ("y",), noop)
        assert isinstance(info.value, ValueError)
        assert info.value.handler_id == "h"
        assert [h.event_name for h in telemetry.list_handlers()] == [("x",)]
    finally:
        telemetry.detach("h")


def test_detach_removes_the_handler_from_all_its_events_and_says_whether_it_was_there() -> None:
    recorder = Recorder()
    telemetry.attach_many("h", [("a",), ("b",)], recorder)
    assert telemetry.detach("h") is True
    assert telemetry.detach("h") is False
    telemetry.execute(("a",))
    telemetry.execute(("b",))
    assert recorder.events == []


def test_list_handlers_filters_by_event_name_prefix() -> None:
    telemetry.attach_many(
        "calls", [("asyncotp", "call", "stop"), ("asyncotp", "actor", "spawn")], noop
    )
    telemetry.attach("mine", ("shop", "order"), noop, config=3)
    try:
        found = {(h.id, h.event_name) for h in telemetry.list_handlers(("asyncotp", "call"))}
        assert found == {("calls", ("asyncotp", "call", "stop"))}
        assert len(telemetry.list_handlers()) == 3
        assert telemetry.list_handlers(("shop",))[0].config == 3
    finally:
        telemetry.detach("calls")
        telemetry.detach("mine")


def test_a_handler_that_raises_is_detached_and_logged_once_and_the_emitter_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("boom")

    recorder = Recorder()
    telemetry.attach_many("broken", [("x",), ("y",)], broken)
    telemetry.attach("good", ("x",), recorder)
    try:
        with caplog.at_level(logging.ERROR, logger="asyncotp"):
            telemetry.execute(("x",), {"n": 1})  # does not raise
            telemetry.execute(("x",), {"n": 2})
            telemetry.execute(("y",), {"n": 3})
    finally:
        telemetry.detach("good")
    assert [e.measurements["n"] for e in recorder.events] == [1, 2]  # the other handler ran
    assert [h.id for h in telemetry.list_handlers()] == []
    records = [r for r in caplog.records if "telemetry handler" in r.getMessage()]
    assert len(records) == 1
    assert "'broken'" in records[0].getMessage()
    assert "('x',)" in records[0].getMessage()
    assert records[0].exc_info is not None


@pytest.mark.parametrize(
    ("name", "handler", "error"),
    [
        (["x"], noop, "non-empty tuple of strings"),
        ((), noop, "non-empty tuple of strings"),
        (("x", 1), noop, "non-empty tuple of strings"),
        (("x",), "not callable", "must be a function"),
    ],
)
def test_attach_refuses_bad_event_names_and_handlers(name: Any, handler: Any, error: str) -> None:
    with pytest.raises(TypeError, match=error):
        telemetry.attach("h", name, handler)
    assert telemetry.list_handlers() == []


def test_attach_refuses_an_async_handler_and_says_why() -> None:
    async def handler(*_: Any) -> None:
        return None

    with pytest.raises(TypeError, match="run synchronously"):
        telemetry.attach("h", ("x",), handler)  # type: ignore[arg-type]


def test_attach_refuses_a_non_string_id() -> None:
    with pytest.raises(TypeError, match="handler_id must be a str"):
        telemetry.attach(1, ("x",), noop)  # type: ignore[arg-type]


def test_execute_with_an_unhashable_name_says_what_an_event_name_is() -> None:
    with pytest.raises(TypeError, match="non-empty tuple of strings"):
        telemetry.execute(["x"])  # type: ignore[arg-type]


def test_span_emits_start_then_stop_with_a_duration_and_the_blocks_metadata() -> None:
    recorder = Recorder()
    prefix = ("shop", "db")
    telemetry.attach_many(
        "h", [(*prefix, "start"), (*prefix, "stop"), (*prefix, "exception")], recorder
    )
    try:
        with telemetry.span(prefix, {"table": "orders"}) as meta:
            meta["rows"] = 3
    finally:
        telemetry.detach("h")
    start, stop = recorder.events
    assert start.name == ("shop", "db", "start")
    assert "monotonic_time" in start.measurements
    assert stop.name == ("shop", "db", "stop")
    assert stop.measurements["duration"] >= 0
    assert stop.metadata["table"] == "orders"
    assert stop.metadata["rows"] == 3
    assert start.metadata["telemetry_span_context"] == stop.metadata["telemetry_span_context"]


def test_span_emits_exception_and_lets_the_error_through() -> None:
    recorder = Recorder()
    telemetry.attach_many("h", [("s", "start"), ("s", "stop"), ("s", "exception")], recorder)
    error = KeyError("gone")
    try:
        with pytest.raises(KeyError), telemetry.span(("s",)):
            raise error
    finally:
        telemetry.detach("h")
    assert [e.name for e in recorder.events] == [("s", "start"), ("s", "exception")]
    assert recorder.events[1].metadata["kind"] is KeyError
    assert recorder.events[1].metadata["reason"] is error


def guards() -> dict[str, bool]:
    """The runtime's guards, read afresh (a function: no narrowing by mypy)."""
    return {
        "ANY": core_telemetry.ANY,
        "CALLS": core_telemetry.CALLS,
        "ACTORS": core_telemetry.ACTORS,
        "SLOW": core_telemetry.SLOW,
    }


def test_the_runtime_guards_are_off_with_nothing_attached_and_follow_attach() -> None:
    off = {"ANY": False, "CALLS": False, "ACTORS": False, "SLOW": False}
    assert guards() == off
    telemetry.attach("h", ("asyncotp", "call", "stop"), noop)
    try:
        assert guards() == {**off, "ANY": True, "CALLS": True}
    finally:
        telemetry.detach("h")
    telemetry.attach("h", ("asyncotp", "callback", "slow"), noop)
    try:
        assert guards() == {**off, "ANY": True, "SLOW": True}
    finally:
        telemetry.detach("h")
    assert guards() == off


def test_the_slow_callback_threshold_is_validated_and_returns_the_previous_one() -> None:
    previous = telemetry.set_slow_callback_threshold(0.25)
    try:
        assert telemetry.slow_callback_threshold() == 0.25
        with pytest.raises(ValueError, match="seconds"):
            telemetry.set_slow_callback_threshold(float("nan"))
        with pytest.raises(ValueError, match="seconds"):
            telemetry.set_slow_callback_threshold(-1)
    finally:
        telemetry.set_slow_callback_threshold(previous)
