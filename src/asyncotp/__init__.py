"""asyncotp: Erlang/OTP's actors and supervision trees on asyncio.

The public API lives in thin namespaces, all re-exported here:
``asyncotp.actors`` (processes, GenServer, Agent), ``asyncotp.supervision``
(child specs, supervisors, applications), ``asyncotp.health`` (health and
readiness, ASGI endpoints) and ``asyncotp.resilience`` (retries, circuit
breakers, load shedding, idempotency, dead letters). ``asyncotp.testing``
(the kit to property-test crash recovery) is imported on demand.
"""

from . import actors, health, resilience, supervision
from .actors import *  # noqa: F403 - the top level re-exports the public namespaces
from .health import *  # noqa: F403
from .resilience import *  # noqa: F403
from .supervision import *  # noqa: F403

__all__ = tuple(
    sorted({*actors.__all__, *supervision.__all__, *health.__all__, *resilience.__all__})
)
__version__ = "0.1.0"
