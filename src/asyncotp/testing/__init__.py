"""asyncotp.testing: property-test how a system recovers from crashes.

* **pytest fixtures** (the ``pytest11`` plugin ``asyncotp.testing.plugin``):
  ``otp_node`` (an isolated node that fails the test if actors or tasks
  outlive it), ``virtual_clock`` and ``crash_reports``.
* **Waiting on events, never on sleeps**: ``Probe`` (an actor that collects
  messages; ``await probe.expect(match)``), ``wait_for_exit``,
  ``wait_for_restart``, ``settle``.
* **Virtual time**: ``VirtualClock`` (restart windows, backoff, timers and
  call timeouts in milliseconds of real time).
* **Fault injection**: ``crash``, ``kill``, ``fail_init``, ``MessageFaults``.
* **Reports**: ``capture_reports`` (crash and supervisor reports).
* **Trees and schedules**: ``SupervisorSpec``, ``WorkerSpec``, the faults
  ``Crash``, ``Kill``, ``FailInit``, ``PassTime``, ``check_schedule``,
  ``TreeHarness``, ``tree_snapshot``.
* **Hypothesis** (imported on first use, so this package works without
  hypothesis): ``supervision_trees``, ``faults``, ``fault_schedules``,
  ``crash_reasons``, ``SupervisionMachine``, ``RandomTreeMachine``.

The guide is ``docs/testing.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._clock import VirtualClock, current_clock
from ._faults import (
    FailingStart,
    InjectedFault,
    MessageFaults,
    MessageRule,
    crash,
    fail_init,
    kill,
)
from ._model import TreeHarness, check_schedule
from ._probe import Probe
from ._reports import Report, ReportCapture, capture_reports
from ._snapshot import ChildState, SupervisorState, tree_snapshot
from ._trees import (
    Crash,
    FailInit,
    Fault,
    Kill,
    PassTime,
    Path,
    SupervisorSpec,
    TreeWorker,
    WorkerSpec,
)
from ._waits import SettleTimeout, WaitTimeout, settle, wait_for_exit, wait_for_restart

if TYPE_CHECKING:
    from ._machine import RandomTreeMachine, SupervisionMachine
    from ._strategies import crash_reasons, fault_schedules, faults, supervision_trees

__all__ = (
    "ChildState",
    "Crash",
    "FailInit",
    "FailingStart",
    "Fault",
    "InjectedFault",
    "Kill",
    "MessageFaults",
    "MessageRule",
    "PassTime",
    "Path",
    "Probe",
    "RandomTreeMachine",
    "Report",
    "ReportCapture",
    "SettleTimeout",
    "SupervisionMachine",
    "SupervisorSpec",
    "SupervisorState",
    "TreeHarness",
    "TreeWorker",
    "VirtualClock",
    "WaitTimeout",
    "WorkerSpec",
    "capture_reports",
    "check_schedule",
    "crash",
    "crash_reasons",
    "current_clock",
    "fail_init",
    "fault_schedules",
    "faults",
    "kill",
    "settle",
    "supervision_trees",
    "tree_snapshot",
    "wait_for_exit",
    "wait_for_restart",
)

# The names that need hypothesis, and the private module of each.
_LAZY = {
    "RandomTreeMachine": "_machine",
    "SupervisionMachine": "_machine",
    "crash_reasons": "_strategies",
    "fault_schedules": "_strategies",
    "faults": "_strategies",
    "supervision_trees": "_strategies",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    except ImportError as exc:
        raise ImportError(
            f"asyncotp.testing.{name} needs hypothesis: pip install hypothesis"
        ) from exc
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
