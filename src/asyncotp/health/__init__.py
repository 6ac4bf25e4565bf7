"""Health and readiness: the report on a supervision tree, readiness checks,
and the ASGI application that serves them as ``/health`` and ``/ready``."""

from ._asgi import HealthApp, serve_health
from ._health import (
    TREE_CHECK,
    CheckResult,
    ChildHealth,
    HealthReport,
    ReadinessServer,
    SupervisorHealth,
    health_report,
    ready_when,
    remove_ready_check,
)

__all__ = (
    "TREE_CHECK",
    "CheckResult",
    "ChildHealth",
    "HealthApp",
    "HealthReport",
    "ReadinessServer",
    "SupervisorHealth",
    "health_report",
    "ready_when",
    "remove_ready_check",
    "serve_health",
)
