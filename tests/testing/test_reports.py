"""asyncotp.testing reports: crash and supervisor reports captured as values."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from asyncotp import GenServer, Node, Supervisor, which_children
from asyncotp.testing import (
    Report,
    ReportCapture,
    VirtualClock,
    WaitTimeout,
    capture_reports,
    crash,
    wait_for_exit,
    wait_for_restart,
)


class Worker(GenServer):
    async def handle_cast(self, request: Any) -> None:
        raise ValueError(request)


async def test_an_unsupervised_crash_is_captured_as_a_crash_report(
    otp_node: Node, crash_reports: ReportCapture
) -> None:
    worker = await Worker.start(name="worker")
    reason = await crash(worker, "bad state")
    assert reason == "bad state"
    (report,) = crash_reports.crashes
    assert (report.event, report.pid, report.name, report.reason) == (
        "actor_crashed",
        worker,
        "worker",
        "bad state",
    )


async def test_supervisor_decisions_are_captured_in_order(
    otp_node: Node, crash_reports: ReportCapture
) -> None:
    sup = await Supervisor.start([Worker.child_spec(id="w")], name="sup")
    (child,) = await which_children(sup)
    assert child.pid is not None
    await crash(child.pid, "boom")
    new = await wait_for_restart(sup, "w", child.pid)
    events = [(r.event, r.child_id, r.supervisor_name) for r in crash_reports.supervisor_reports]
    assert events == [("child_terminated", "w", "sup"), ("child_restarted", "w", "sup")]
    terminated, restarted = crash_reports.supervisor_reports
    assert (terminated.pid, terminated.reason, terminated.restarts_in_window) == (
        child.pid,
        "boom",
        1,
    )
    assert restarted.pid is new
    assert crash_reports.crashes == []  # the supervisor reports its children's crashes


async def test_wait_for_returns_a_report_already_made_or_still_to_come(
    otp_node: Node, crash_reports: ReportCapture
) -> None:
    sup = await Supervisor.start([Worker.child_spec(id="w")], max_restarts=0)
    (child,) = await which_children(sup)
    assert child.pid is not None
    await crash(child.pid)
    gave_up = await crash_reports.wait_for("supervisor_gave_up", supervisor=sup)
    assert gave_up.child_id == "w"
    await wait_for_exit(sup)
    assert await crash_reports.wait_for(child_id="w") is crash_reports.reports[0]


async def test_a_report_that_never_comes_fails_with_the_reports_seen(
    virtual_clock: VirtualClock, otp_node: Node, crash_reports: ReportCapture
) -> None:
    worker = await Worker.start()
    await crash(worker, "boom")
    with pytest.raises(WaitTimeout) as failure:
        await crash_reports.wait_for("supervisor_gave_up", timeout=1.0)
    assert "no report ('supervisor_gave_up') within 1.0 s" in str(failure.value)
    assert "actor_crashed pid=<Pid 1> reason='boom'" in str(failure.value)


def test_filters_name_only_report_fields() -> None:
    reports = ReportCapture()
    with pytest.raises(TypeError, match="Report has no field"):
        reports.events(child="w")


async def test_wait_for_needs_an_active_capture() -> None:
    with pytest.raises(RuntimeError, match="not active"):
        await ReportCapture().wait_for("child_restarted")


def test_capturing_lowers_the_log_level_and_restores_it() -> None:
    log = logging.getLogger("asyncotp")
    before = log.level
    log.setLevel(logging.WARNING)
    try:
        with capture_reports() as outer:
            assert log.level == logging.DEBUG
            with capture_reports():
                assert log.level == logging.DEBUG
            assert log.level == logging.DEBUG
            record = log.makeRecord("asyncotp", logging.INFO, __file__, 1, "m", (), None)
            record.event = "child_restarted"
            record.supervisor = None
            log.handle(record)
        assert log.level == logging.WARNING
        assert outer.reports == [Report("child_restarted", "m", level=logging.INFO)]
        outer.clear()
        assert outer.reports == []
        assert outer.records == []
    finally:
        log.setLevel(before)
