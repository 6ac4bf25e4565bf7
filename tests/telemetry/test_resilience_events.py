"""The resilience layer's events: breaker state changes, shed requests, retries."""

from __future__ import annotations

from typing import Any

import pytest

import asyncotp
from asyncotp import Caller, call, stop
from asyncotp.resilience import (
    BreakerState,
    CircuitBreaker,
    Overloaded,
    RetryError,
    RetryPolicy,
    SheddingServer,
    ShedReason,
    call_with_deadline,
    retry,
)
from tests.helpers import Gate, started

from .conftest import record

pytestmark = pytest.mark.timeout(10)


async def test_a_breaker_emits_each_state_change(node: asyncotp.Node) -> None:
    async def failing() -> None:
        raise ConnectionError("down")

    with record(("asyncotp", "breaker", "state_change")) as rec:
        breaker = await CircuitBreaker.start(name="payments", failure_threshold=1)
        with pytest.raises(ConnectionError):
            await CircuitBreaker.call(breaker, failing)
        await CircuitBreaker.reset(breaker)
        await CircuitBreaker.statistics(breaker)  # both handled by now
    changes = [(e.metadata["previous_state"], e.metadata["state"]) for e in rec.events]
    assert changes == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.CLOSED),
    ]
    assert rec.events[0].metadata["name"] == "payments"
    assert rec.events[0].metadata["breaker"] == breaker
    assert rec.events[0].measurements["failures"] == 1
    await stop(breaker)


class Worker(SheddingServer):
    async def init(self) -> None:
        self.max_queue = 1

    async def handle_request(self, request: Any, caller: Caller) -> Any:
        if isinstance(request, Gate):
            await request.pass_through()
        return request


async def test_a_shed_request_emits_with_its_reason(node: asyncotp.Node) -> None:
    server = await Worker.start(name="busy")
    gate = Gate()
    held = await started(call(server, gate))
    await gate.entered.wait()
    with record(("asyncotp", "shedding", "shed")) as rec:
        kept = await started(call_with_deadline(server, "kept", None))
        refused = await started(call_with_deadline(server, "refused", None))
        gate.open()
        with pytest.raises(Overloaded):
            await refused
        assert await kept == "kept"
        await held
    [event] = rec.events
    assert event.metadata["reason"] is ShedReason.QUEUE_FULL
    assert event.metadata["name"] == "busy"
    assert event.measurements["waited"] >= 0
    await stop(server)


async def test_retry_emits_each_retry_and_the_give_up(node: asyncotp.Node) -> None:
    async def always_down() -> None:
        raise ConnectionError("down")

    policy = RetryPolicy(max_attempts=3, initial=0.001, jitter=0.0, retry_on=(ConnectionError,))
    names = [("asyncotp", "retry", "retry"), ("asyncotp", "retry", "gave_up")]
    with record(*names) as rec, pytest.raises(RetryError):
        await retry(always_down, policy=policy)
    retries = rec.named("asyncotp", "retry", "retry")
    assert [e.measurements["attempt"] for e in retries] == [1, 2]
    assert all(e.measurements["delay"] > 0 for e in retries)
    assert isinstance(retries[0].metadata["error"], ConnectionError)
    [gave_up] = rec.named("asyncotp", "retry", "gave_up")
    assert gave_up.measurements["attempts"] == 3
    assert gave_up.metadata["reason"] == "attempts"
    assert "always_down" in gave_up.metadata["operation"]
