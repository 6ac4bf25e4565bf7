"""Capturing crash and supervisor reports.

asyncotp reports crashes and every supervisor decision on the logger
``asyncotp`` with structured ``extra`` fields. The kit listens there: one
handler, attached while somebody listens, turns each record into a
``Report`` and hands it to the listeners (a ``ReportCapture``, or a helper
such as ``wait_for_restart`` that waits for one event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from types import TracebackType
from typing import Any, Final

import attrs

from .._core import (
    Pid,
    WaitTimeout,
)

_LOGGER: Final = logging.getLogger("asyncotp")

ACTOR_CRASHED: Final = "actor_crashed"
"""The ``event`` of a crash report (an actor that ended abnormally, unsupervised)."""


@attrs.frozen
class Report:
    """One crash or supervisor report, from the ``asyncotp`` logger.

    ``event`` is the supervisor's event (``child_terminated``,
    ``child_restarted``, ``child_start_failed``, ``child_killed``,
    ``supervisor_gave_up``) or ``"actor_crashed"`` for the crash report of an
    unsupervised actor. ``pid`` is the actor concerned: the crashed actor, or
    the supervisor's child (None when it is not running).
    """

    event: str
    message: str
    level: int = logging.ERROR
    pid: Pid | None = None
    name: str | None = None
    reason: object = None
    supervisor: Pid | None = None
    supervisor_name: str | None = None
    child_id: Hashable | None = None
    restart_count: int | None = None
    restarts_in_window: int | None = None

    @classmethod
    def from_record(cls, record: logging.LogRecord) -> Report | None:
        """The report a log record carries, or None for other records."""
        fields = vars(record)
        event = fields.get("event")
        if isinstance(event, str) and "supervisor" in fields:
            return cls(
                event=event,
                message=record.getMessage(),
                level=record.levelno,
                pid=fields.get("child_pid"),
                reason=fields.get("reason"),
                supervisor=fields.get("supervisor"),
                supervisor_name=fields.get("supervisor_name"),
                child_id=fields.get("child_id"),
                restart_count=fields.get("restart_count"),
                restarts_in_window=fields.get("restarts_in_window"),
            )
        if "actor_pid" in fields and record.levelno >= logging.ERROR and "reason" in fields:
            return cls(
                event=ACTOR_CRASHED,
                message=record.getMessage(),
                level=record.levelno,
                pid=fields.get("actor_pid"),
                name=fields.get("actor_name"),
                reason=fields.get("reason"),
            )
        return None

    def matches(self, event: str | None, fields: dict[str, object]) -> bool:
        if event is not None and self.event != event:
            return False
        for key, value in fields.items():
            mine = getattr(self, key)
            if not (mine is value or mine == value):
                return False
        return True


class _Bus(logging.Handler):
    """The one handler on the ``asyncotp`` logger, while anybody listens."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.listeners: list[Callable[[Report, logging.LogRecord], None]] = []
        self.saved_level: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        report = Report.from_record(record)
        if report is None:
            return
        for listener in list(self.listeners):
            listener(report, record)


_bus = _Bus()
_bus_lock = threading.Lock()


@contextlib.contextmanager
def listen(listener: Callable[[Report, logging.LogRecord], None]) -> Iterator[None]:
    """Call ``listener(report, record)`` for every report while inside.

    The ``asyncotp`` logger is lowered to DEBUG meanwhile if it was above, so
    that ``child_restarted`` (INFO) reports and the ``child_terminated``
    reports of children that ended cleanly and are not restarted (DEBUG)
    are made at all.
    """
    with _bus_lock:
        if not _bus.listeners:
            _LOGGER.addHandler(_bus)
            if _LOGGER.getEffectiveLevel() > logging.DEBUG:
                _bus.saved_level = _LOGGER.level
                _LOGGER.setLevel(logging.DEBUG)
        _bus.listeners.append(listener)
    try:
        yield
    finally:
        with _bus_lock:
            _bus.listeners.remove(listener)
            if not _bus.listeners:
                _LOGGER.removeHandler(_bus)
                if _bus.saved_level is not None:
                    _LOGGER.setLevel(_bus.saved_level)
                    _bus.saved_level = None


class ReportCapture:
    """Crash and supervisor reports, captured while the capture is active.

    Example::

        with capture_reports() as reports:
            ...
            report = await reports.wait_for("child_restarted", child_id="ledger")
            assert [r.child_id for r in reports.events("child_terminated")] == ["gateway"]

    The ``crash_reports`` pytest fixture gives each test one.
    """

    def __init__(self) -> None:
        self.reports: list[Report] = []
        """Every report captured, in order."""
        self.records: list[logging.LogRecord] = []
        """The log records they came from (with tracebacks)."""
        self._waiters: list[tuple[str | None, dict[str, object], asyncio.Future[Report]]] = []
        self._stack: contextlib.ExitStack | None = None

    def __repr__(self) -> str:
        return f"<ReportCapture {len(self.reports)} reports>"

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> ReportCapture:
        if self._stack is None:
            self._stack = contextlib.ExitStack()
            self._stack.enter_context(listen(self._receive))
        return self

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def __enter__(self) -> ReportCapture:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _receive(self, report: Report, record: logging.LogRecord) -> None:
        self.reports.append(report)
        self.records.append(record)
        for waiter in list(self._waiters):
            event, fields, fut = waiter
            if report.matches(event, fields):
                self._waiters.remove(waiter)
                _resolve(fut, report)

    # -- reading -----------------------------------------------------------------

    @property
    def crashes(self) -> list[Report]:
        """Crash reports of unsupervised actors (``event == "actor_crashed"``)."""
        return [r for r in self.reports if r.event == ACTOR_CRASHED]

    @property
    def supervisor_reports(self) -> list[Report]:
        """Every supervisor report, in order."""
        return [r for r in self.reports if r.supervisor is not None]

    def events(self, event: str | None = None, **fields: object) -> list[Report]:
        """The reports of ``event`` (any event if None) whose fields equal ``fields``."""
        _check_fields(fields)
        return [r for r in self.reports if r.matches(event, fields)]

    def clear(self) -> None:
        """Forget what was captured so far."""
        self.reports.clear()
        self.records.clear()

    async def wait_for(
        self, event: str | None = None, *, timeout: float = 5.0, **fields: object
    ) -> Report:
        """The first report (already captured, or still to come) of ``event``
        whose fields equal ``fields``; ``WaitTimeout`` past ``timeout``
        seconds of loop time (virtual time if a clock is installed)."""
        _check_fields(fields)
        for report in self.reports:
            if report.matches(event, fields):
                return report
        if self._stack is None:
            raise RuntimeError("ReportCapture.wait_for: the capture is not active; start() it")
        fut: asyncio.Future[Report] = asyncio.get_running_loop().create_future()
        waiter = (event, fields, fut)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            wanted = ", ".join(
                [repr(event) if event is not None else "any event"]
                + [f"{k}={v!r}" for k, v in fields.items()]
            )
            seen = "\n".join(f"  {r.event} {_brief(r)}" for r in self.reports) or "  (none)"
            raise WaitTimeout(
                f"no report ({wanted}) within {timeout} s; the reports captured so far:\n{seen}"
            ) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)


def capture_reports() -> ReportCapture:
    """A ``ReportCapture`` to use as a context manager: ``with capture_reports() as r:``."""
    return ReportCapture()


_FIELDS: Final = frozenset(attrs.fields_dict(Report))


def _check_fields(fields: dict[str, object]) -> None:
    unknown = set(fields) - _FIELDS
    if unknown:
        raise TypeError(
            f"Report has no field(s) {sorted(unknown)!r}; the fields are {sorted(_FIELDS)!r}"
        )


def _brief(report: Report) -> str:
    parts: list[str] = []
    if report.supervisor is not None:
        parts.append(f"supervisor={report.supervisor_name or report.supervisor!r}")
        parts.append(f"child_id={report.child_id!r}")
    if report.pid is not None:
        parts.append(f"pid={report.pid!r}")
    if report.reason is not None:
        parts.append(f"reason={report.reason!r}")
    return " ".join(parts)


def _resolve(fut: asyncio.Future[Any], value: object) -> None:
    loop = fut.get_loop()

    def set_it() -> None:
        if not fut.done():
            fut.set_result(value)

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        set_it()
    else:
        loop.call_soon_threadsafe(set_it)
