"""Resilience: what real services need around a crash.

Retries with backoff, jitter and a deadline; circuit breakers; load
shedding by age and priority; idempotency keys; worker pools with a
dead-letter queue; observing undeliverable messages.
"""

from ._a import *  # noqa: F403 - thin public namespace
from ._b import *  # noqa: F403

__all__ = (
    "DEFAULT_RETRY_ON",
    "BreakerState",
    "BreakerStateChanged",
    "BreakerStats",
    "CircuitBreaker",
    "CircuitOpen",
    "DeadLetter",
    "DeadLetterNotFound",
    "DeadLetterQueue",
    "DeadLetterStats",
    "IdempotencyKeyReused",
    "IdempotencyStats",
    "IdempotencyStore",
    "JobFailed",
    "Overloaded",
    "PoolStats",
    "RequestEnvelope",
    "RetryAttempt",
    "RetryDeadlineExceeded",
    "RetryError",
    "RetryPolicy",
    "ShedReason",
    "SheddingServer",
    "SheddingStats",
    "Undeliverable",
    "UndeliverableObserver",
    "WorkerPool",
    "call_with_deadline",
    "observe_undeliverable",
    "retry",
    "retrying",
    "shedding_stats",
)
