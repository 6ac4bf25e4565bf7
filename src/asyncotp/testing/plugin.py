"""The asyncotp pytest plugin (entry point ``pytest11``: ``asyncotp``).

It only defines fixtures, so it does nothing until a test asks for one:

* ``otp_node``: a fresh node for the test; when the test ends, every actor
  is shut down (supervisors in reverse start order) and the test fails if an
  actor had to be killed because it would not stop, if an actor survived,
  or if a task the test started is still running.
* ``virtual_clock``: a ``VirtualClock`` (autojump on) installed on the
  test's loop; with ``otp_node`` it is installed first and removed last, so
  the node's shutdown runs on virtual time too.
* ``crash_reports``: a ``ReportCapture`` of the crash and supervisor
  reports made during the test.

Async fixtures are pytest-asyncio fixtures when pytest-asyncio is
installed (strict or auto mode), plain async fixtures otherwise (for
anyio's pytest plugin). The plugin imports neither hypothesis nor anything
slow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from .._core import (
    Node,
    live_pids,
    node,
)
from ._clock import VirtualClock
from ._reports import ReportCapture

_async_fixture: Callable[..., Any]
try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - anyio's plugin runs plain async fixtures
    _async_fixture = pytest.fixture
else:
    _async_fixture = pytest_asyncio.fixture


class _ShutdownWatch(logging.Handler):
    """Collects the node's complaints while it shuts down."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.complaints: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "actor_pid" in vars(record) and "event" not in vars(record):
            self.complaints.append(record.getMessage())


@pytest.fixture
def _asyncotp_clock_first(request: pytest.FixtureRequest) -> None:
    """Set ``virtual_clock`` up before ``otp_node`` (and so tear it down after)."""
    if "virtual_clock" in request.fixturenames:
        request.getfixturevalue("virtual_clock")


@_async_fixture(name="virtual_clock")  # type: ignore[untyped-decorator]
async def virtual_clock() -> AsyncIterator[VirtualClock]:
    """A ``VirtualClock`` (autojump on) on the test's event loop."""
    with VirtualClock() as clock:
        yield clock


@_async_fixture(name="otp_node")  # type: ignore[untyped-decorator]
async def otp_node(_asyncotp_clock_first: None) -> AsyncIterator[Node]:
    """A fresh node for the test; fails the test if anything outlives it."""
    before = asyncio.all_tasks()
    watch = _ShutdownWatch()
    log = logging.getLogger("asyncotp")
    async with node() as the_node:
        yield the_node
        log.addHandler(watch)
    log.removeHandler(watch)
    problems = [f"at shutdown: {complaint}" for complaint in watch.complaints]
    if live_pids(the_node):
        problems.append(f"actors outlived the node: {live_pids(the_node)!r}")
    for _ in range(3):
        await asyncio.sleep(0)
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() - before if not t.done() and t is not me]
    if left:
        problems.append(
            "tasks still running after the node stopped (start work as actors, or await "
            f"or cancel these tasks before the test ends): {left!r}"
        )
    if problems:
        pytest.fail("otp_node: the test left work behind:\n  " + "\n  ".join(problems))


@pytest.fixture(name="crash_reports")
def crash_reports() -> Iterator[ReportCapture]:
    """The crash and supervisor reports made during the test."""
    with ReportCapture() as reports:
        yield reports
