"""Resilience: what real services need around a crash.

Retries with backoff, jitter and a deadline; circuit breakers; load
shedding by age and priority; idempotency keys; worker pools with a
dead-letter queue; observing undeliverable messages.
"""

from .._core import BreakerState as BreakerState
from .._core import CircuitOpen as CircuitOpen
from .._core import DeadLetterNotFound as DeadLetterNotFound
from .._core import IdempotencyKeyReused as IdempotencyKeyReused
from .._core import JobFailed as JobFailed
from .._core import Overloaded as Overloaded
from .._core import RetryDeadlineExceeded as RetryDeadlineExceeded
from .._core import RetryError as RetryError
from .._core import ShedReason as ShedReason
from ._breaker import BreakerStateChanged as BreakerStateChanged
from ._breaker import BreakerStats as BreakerStats
from ._breaker import CircuitBreaker as CircuitBreaker
from ._deadletters import DeadLetter as DeadLetter
from ._deadletters import DeadLetterQueue as DeadLetterQueue
from ._deadletters import DeadLetterStats as DeadLetterStats
from ._idempotency import IdempotencyStats as IdempotencyStats
from ._idempotency import IdempotencyStore as IdempotencyStore
from ._retry import DEFAULT_RETRY_ON as DEFAULT_RETRY_ON
from ._retry import RetryAttempt as RetryAttempt
from ._retry import RetryPolicy as RetryPolicy
from ._retry import retry as retry
from ._retry import retrying as retrying
from ._shedding import RequestEnvelope as RequestEnvelope
from ._shedding import SheddingServer as SheddingServer
from ._shedding import SheddingStats as SheddingStats
from ._shedding import call_with_deadline as call_with_deadline
from ._undeliverable import Undeliverable as Undeliverable
from ._undeliverable import UndeliverableObserver as UndeliverableObserver
from ._undeliverable import observe_undeliverable as observe_undeliverable
from ._workerpool import PoolStats as PoolStats
from ._workerpool import WorkerPool as WorkerPool
