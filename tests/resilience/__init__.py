"""Tests of asyncotp.resilience: retry, breaker, shedding, idempotency, dead letters."""
