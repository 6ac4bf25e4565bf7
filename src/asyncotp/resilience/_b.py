"""Public names of load shedding, idempotency keys and dead letters, for
``asyncotp.resilience``."""

from ._deadletter import (
    DeadLetter,
    DeadLetterNotFound,
    DeadLetterQueue,
    DeadLetterStats,
    JobFailed,
    PoolStats,
    Undeliverable,
    UndeliverableObserver,
    WorkerPool,
    observe_undeliverable,
)
from ._idempotency import IdempotencyKeyReused, IdempotencyStats, IdempotencyStore
from ._shedding import (
    Overloaded,
    RequestEnvelope,
    SheddingServer,
    SheddingStats,
    ShedReason,
    call_with_deadline,
    shedding_stats,
)

__all__ = (
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
    "ShedReason",
    "SheddingServer",
    "SheddingStats",
    "Undeliverable",
    "UndeliverableObserver",
    "WorkerPool",
    "call_with_deadline",
    "observe_undeliverable",
    "shedding_stats",
)
