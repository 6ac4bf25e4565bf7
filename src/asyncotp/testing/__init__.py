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

from .._core import SettleTimeout as SettleTimeout
from .._core import WaitTimeout as WaitTimeout
from .._core import publish
from ._clock import VirtualClock as VirtualClock
from ._clock import current_clock as current_clock
from ._faults import FailingStart as FailingStart
from ._faults import InjectedFault as InjectedFault
from ._faults import MessageFaults as MessageFaults
from ._faults import MessageRule as MessageRule
from ._faults import crash as crash
from ._faults import fail_init as fail_init
from ._faults import kill as kill
from ._model import TreeHarness as TreeHarness
from ._model import check_schedule as check_schedule
from ._probe import Probe as Probe
from ._reports import Report as Report
from ._reports import ReportCapture as ReportCapture
from ._reports import capture_reports as capture_reports
from ._snapshot import ChildState as ChildState
from ._snapshot import SupervisorState as SupervisorState
from ._snapshot import tree_snapshot as tree_snapshot
from ._trees import Crash as Crash
from ._trees import FailInit as FailInit
from ._trees import Fault as Fault
from ._trees import Kill as Kill
from ._trees import PassTime as PassTime
from ._trees import Path as Path
from ._trees import SupervisorSpec as SupervisorSpec
from ._trees import TreeWorker as TreeWorker
from ._trees import WorkerSpec as WorkerSpec
from ._waits import settle as settle
from ._waits import wait_for_exit as wait_for_exit
from ._waits import wait_for_restart as wait_for_restart

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
    publish((value,), __name__)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


publish((globals()[name] for name in __all__ if name in globals()), __name__)
