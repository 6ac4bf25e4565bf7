"""Hearing supervisor reports as they are made, to push a fresh snapshot.

Supervisors report every decision on the logger ``asyncotp`` with
structured ``extra`` fields (``event``, ``supervisor``, ``child_id``, ...;
see ``asyncotp.Supervisor``). While somebody listens (an open dashboard
stream), one handler sits on that logger and calls the listeners for the
records whose ``event`` is one of ``SUPERVISOR_EVENTS``.

The handler never changes the logger's level: it hears the records the
logger makes. ``child_terminated`` (a crash, at ERROR) is always made, and
a supervisor restarts the child in the same step, so a snapshot asked for
on that report already shows the restart; ``child_restarted`` (INFO) is
heard too when the program logs at INFO. A child that ends cleanly and is
not restarted is reported at DEBUG, usually not made: the dashboard's
periodic refresh shows it gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Final

SUPERVISOR_EVENTS: Final = frozenset(
    {
        "child_terminated",
        "child_restarted",
        "child_start_failed",
        "child_killed",
        "supervisor_gave_up",
        "supervisor_auto_shutdown",
    }
)
"""The report events that change what a snapshot of the tree shows."""

_LOGGER: Final = logging.getLogger("asyncotp")


class _Hook(logging.Handler):
    """The one handler on the ``asyncotp`` logger while anybody listens."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.listeners: list[Callable[[], None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = vars(record)
        if fields.get("event") not in SUPERVISOR_EVENTS or "supervisor" not in fields:
            return
        for listener in list(self.listeners):
            listener()


_hook = _Hook()
_lock = threading.Lock()


@contextlib.contextmanager
def on_supervisor_report(listener: Callable[[], None]) -> Iterator[None]:
    """Call ``listener()`` on every supervisor report while inside (from the
    thread that logs it: see ``waker``)."""
    with _lock:
        if not _hook.listeners:
            _LOGGER.addHandler(_hook)
        _hook.listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _hook.listeners.remove(listener)
            if not _hook.listeners:
                _LOGGER.removeHandler(_hook)


def waker(event: asyncio.Event) -> Callable[[], None]:
    """A listener that sets ``event`` on the running loop, from any thread."""
    loop = asyncio.get_running_loop()

    def wake() -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            event.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    return wake
