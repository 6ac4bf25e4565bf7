"""Supervision: child specs, Supervisor, DynamicSupervisor, Application."""

from .._core._childspec import (
    BRUTAL_KILL,
    INFINITY,
    Backoff,
    ChildSpec,
    ChildType,
    Restart,
    ShutdownMode,
    Strategy,
)
from .._core._errors import DuplicateChild, MaxChildren
from ._application import Application
from ._supervisor import (
    GAVE_UP,
    ChildCounts,
    ChildInfo,
    ChildNotFound,
    DynamicSupervisor,
    Supervisor,
    count_children,
    delete_child,
    restart_child,
    start_child,
    supervisor_health,
    terminate_child,
    which_children,
)

__all__ = (
    "BRUTAL_KILL",
    "GAVE_UP",
    "INFINITY",
    "Application",
    "Backoff",
    "ChildCounts",
    "ChildInfo",
    "ChildNotFound",
    "ChildSpec",
    "ChildType",
    "DuplicateChild",
    "DynamicSupervisor",
    "MaxChildren",
    "Restart",
    "ShutdownMode",
    "Strategy",
    "Supervisor",
    "count_children",
    "delete_child",
    "restart_child",
    "start_child",
    "supervisor_health",
    "terminate_child",
    "which_children",
)
