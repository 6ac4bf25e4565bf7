"""Public names of retries and circuit breakers, for ``asyncotp.resilience``."""

from ._breaker import (
    BreakerState,
    BreakerStateChanged,
    BreakerStats,
    CircuitBreaker,
    CircuitOpen,
)
from ._retry import (
    DEFAULT_RETRY_ON,
    RetryAttempt,
    RetryDeadlineExceeded,
    RetryError,
    RetryPolicy,
    retry,
    retrying,
)

__all__ = (
    "DEFAULT_RETRY_ON",
    "BreakerState",
    "BreakerStateChanged",
    "BreakerStats",
    "CircuitBreaker",
    "CircuitOpen",
    "RetryAttempt",
    "RetryDeadlineExceeded",
    "RetryError",
    "RetryPolicy",
    "retry",
    "retrying",
)
