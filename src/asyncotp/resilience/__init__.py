"""Resilience: what real services need around a crash.

Retries with backoff, jitter and a deadline; circuit breakers; load
shedding by age and priority; idempotency keys; worker pools with a
dead-letter queue; observing undeliverable messages.
"""

from .._resilience_a import *  # noqa: F403 - thin public namespace
from .._resilience_a import __all__ as _a_all
from .._resilience_b import *  # noqa: F403
from .._resilience_b import __all__ as _b_all

__all__ = tuple(sorted({*_a_all, *_b_all}))
