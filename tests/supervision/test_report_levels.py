"""Supervisor reports: a transient or temporary child that ends cleanly and
is not restarted is routine (DEBUG); crashes, restarts and give-ups keep
their levels; Supervisor and DynamicSupervisor report alike (issue 12).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from asyncotp import (
    NORMAL,
    SHUTDOWN,
    Caller,
    DynamicSupervisor,
    GenServer,
    Node,
    Pid,
    Restart,
    ServerExited,
    Shutdown,
    Stop,
    Supervisor,
    call,
    start_child,
    which_children,
)
from tests.helpers import wait, watch


class Ender(GenServer):
    """Ends with the reason it is sent."""

    async def init(self) -> None:
        pass

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        raise Stop(request)


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "asyncotp" and getattr(r, "event", None) == event
    ]


async def end(sup: Pid, pid: Pid, reason: object) -> None:
    with pytest.raises(ServerExited):
        await call(pid, reason)
    await which_children(sup)  # answered once the supervisor has handled the exit


async def under(kind: str, restart: Restart) -> tuple[Pid, Pid]:
    """A supervisor of ``kind`` with one Ender child; (supervisor, child)."""
    spec = Ender.child_spec(id="e", restart=restart)
    sup = await (Supervisor.start([]) if kind == "static" else DynamicSupervisor.start())
    child = await start_child(sup, spec)
    return sup, child


KINDS = ["static", "dynamic"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("restart", "reason"),
    [
        (Restart.TRANSIENT, NORMAL),
        (Restart.TRANSIENT, SHUTDOWN),
        (Restart.TRANSIENT, Shutdown("done")),
        (Restart.TEMPORARY, NORMAL),
    ],
)
async def test_a_child_that_ends_cleanly_and_is_not_restarted_is_reported_at_debug(
    node: Node, caplog: pytest.LogCaptureFixture, kind: str, restart: Restart, reason: object
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    sup, child = await under(kind, restart)
    await end(sup, child, reason)
    [record] = records(caplog, "child_terminated")
    assert record.levelno == logging.DEBUG
    assert record.getMessage().endswith(f"; {restart!r}, not restarted")
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]


@pytest.mark.parametrize("kind", KINDS)
async def test_at_info_a_clean_end_of_a_transient_child_logs_nothing(
    node: Node, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.INFO, logger="asyncotp")
    sup, child = await under(kind, Restart.TRANSIENT)
    await end(sup, child, NORMAL)
    assert records(caplog, "child_terminated") == []


@pytest.mark.parametrize("kind", KINDS)
async def test_a_temporary_child_that_crashes_is_an_error_though_not_restarted(
    node: Node, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    sup, child = await under(kind, Restart.TEMPORARY)
    await end(sup, child, RuntimeError("boom"))
    [record] = records(caplog, "child_terminated")
    assert record.levelno == logging.ERROR


@pytest.mark.parametrize("kind", KINDS)
async def test_a_restart_is_an_error_report_then_an_info_report(
    node: Node, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    sup, child = await under(kind, Restart.PERMANENT)
    await end(sup, child, NORMAL)  # a permanent child is restarted even after NORMAL
    [ended] = records(caplog, "child_terminated")
    [restarted] = records(caplog, "child_restarted")
    assert (ended.levelno, restarted.levelno) == (logging.ERROR, logging.INFO)


@pytest.mark.parametrize("kind", KINDS)
async def test_giving_up_is_an_error_report(
    node: Node, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    spec = Ender.child_spec(id="e")
    sup = await (
        Supervisor.start([], max_restarts=0)
        if kind == "static"
        else DynamicSupervisor.start(max_restarts=0)
    )
    child = await start_child(sup, spec)
    exited = await watch(sup)
    with pytest.raises(ServerExited):
        await call(child, RuntimeError("boom"))
    await wait(exited)
    [gave_up] = records(caplog, "supervisor_gave_up")
    assert gave_up.levelno == logging.ERROR


async def test_both_supervisors_word_a_childs_end_alike(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncotp")
    messages = []
    for kind in KINDS:
        sup, child = await under(kind, Restart.TRANSIENT)
        await end(sup, child, NORMAL)
        [record] = records(caplog, "child_terminated")
        caplog.clear()
        messages.append(
            record.getMessage().replace(repr(sup), "<sup>").replace(repr(child), "<child>")
        )
    static, dynamic = messages
    assert static == "supervisor <sup>: child 'e' (<child>) ended with NORMAL; " + (
        "Restart.TRANSIENT, not restarted"
    )
    assert dynamic == "dynamic " + static
