"""asyncotp: Erlang/OTP's actors and supervision trees on asyncio.

The public API lives in two namespaces, re-exported here:
``asyncotp.actors`` (processes, GenServer, Agent) and
``asyncotp.supervision`` (child specs, supervisors, applications).
"""

from . import actors, supervision
from .actors import *  # noqa: F403 - the top level re-exports the public namespaces
from .supervision import *  # noqa: F403

__all__ = tuple(sorted({*actors.__all__, *supervision.__all__}))
__version__ = "0.1.0"
