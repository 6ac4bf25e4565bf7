"""Health and readiness: the report on a supervision tree, readiness checks,
and the ASGI application that serves them as ``/health`` and ``/ready``."""

from ._asgi import HealthApp as HealthApp
from ._asgi import serve_health as serve_health
from ._readiness import ReadinessServer as ReadinessServer
from ._readiness import ready_when as ready_when
from ._readiness import remove_ready_check as remove_ready_check
from ._report import health_report as health_report
from ._values import TREE_CHECK as TREE_CHECK
from ._values import CheckResult as CheckResult
from ._values import ChildHealth as ChildHealth
from ._values import HealthReport as HealthReport
from ._values import SupervisorHealth as SupervisorHealth
