"""The OpenTelemetry adapter, against the real SDK and its in-memory reader."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip(
    "opentelemetry.sdk.metrics",
    reason="the otel extra is not installed (pip install opentelemetry-api opentelemetry-sdk)",
)

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import asyncotp
from asyncotp import Caller, GenServer, Supervisor, call, spawn, stop, telemetry
from asyncotp.metrics.otel import CALL_DURATION, OTelMetrics
from asyncotp.resilience import CircuitBreaker
from asyncotp.testing import wait_for_exit

pytestmark = pytest.mark.timeout(10)


class Crashy(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "crash":
            raise RuntimeError("asked to")
        return request


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Every data point collected now, by instrument name."""
    data = reader.get_metrics_data()
    found: dict[str, list[Any]] = {}
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


async def test_calls_are_recorded_as_rpc_client_call_duration_with_error_type(
    node: asyncotp.Node,
) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    with OTelMetrics(provider):
        server = await Crashy.start(name="echo")
        await call(server, "a")
        await call(server, "b")
        with pytest.raises(asyncotp.ServerExited):
            await call(server, "crash")
        await wait_for_exit(server)
        found = points(reader)
    provider.shutdown()
    by_error = {p.attributes.get("error.type"): p for p in found[CALL_DURATION]}
    ok = by_error[None]
    assert ok.count == 2
    assert ok.attributes["rpc.system.name"] == "asyncotp"
    assert ok.attributes["rpc.service"] == "echo"
    assert ok.sum > 0
    assert by_error["ServerExited"].count == 1


async def test_restarts_give_ups_and_the_actor_count_are_recorded(
    node: asyncotp.Node, crash_reports: Any
) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    before = len(asyncotp.processes())
    with OTelMetrics(provider, node=node):
        sup = await Supervisor.start(
            [Crashy.child_spec(id="w", name="w")], max_restarts=1, name="root"
        )
        for attempt in range(2):
            pid = asyncotp.whereis("w")
            assert pid is not None
            with pytest.raises(asyncotp.ServerExited):
                await call(pid, "crash")
            await wait_for_exit(pid)
            if attempt == 0:
                await asyncotp.which_children(sup)  # restarted before this answer
        await wait_for_exit(sup)
        found = points(reader)
    provider.shutdown()
    [restarts] = found["asyncotp.supervisor.restarts"]
    assert restarts.value == 1
    assert dict(restarts.attributes) == {"asyncotp.supervisor": "root", "asyncotp.child": "w"}
    [give_ups] = found["asyncotp.supervisor.give_ups"]
    assert give_ups.value == 1
    [count] = found["asyncotp.actor.count"]
    assert count.value == len(asyncotp.processes()) == before  # seeded, then +spawns -exits
    exits = {p.attributes["asyncotp.outcome"]: p.value for p in found["asyncotp.actor.exits"]}
    assert exits["crash"] == 2


async def test_the_breaker_state_is_an_observable_gauge(node: asyncotp.Node) -> None:
    async def failing() -> None:
        raise ConnectionError("down")

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    with OTelMetrics(provider):
        breaker = await CircuitBreaker.start(name="payments", failure_threshold=1)
        with pytest.raises(ConnectionError):
            await CircuitBreaker.call(breaker, failing)
        await CircuitBreaker.statistics(breaker)
        found = points(reader)
        await stop(breaker)
    provider.shutdown()
    states = {
        p.attributes["asyncotp.breaker.state"]: p.value for p in found["asyncotp.breaker.state"]
    }
    assert states == {"closed": 0, "open": 1, "half_open": 0}


def test_close_detaches_and_slow_callbacks_are_opt_in() -> None:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    metrics = OTelMetrics(provider)
    names = {h.event_name for h in telemetry.list_handlers()}
    assert ("asyncotp", "callback", "slow") not in names  # off by default: it has a price
    assert ("asyncotp", "call", "stop") in names
    metrics.close()
    metrics.close()
    assert telemetry.list_handlers() == []
    with OTelMetrics(provider, slow_callbacks=True):
        names = {h.event_name for h in telemetry.list_handlers()}
        assert ("asyncotp", "callback", "slow") in names
    provider.shutdown()


async def test_spawned_actors_are_counted(node: asyncotp.Node) -> None:
    async def quick() -> None:
        return None

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    with OTelMetrics(provider):
        for _ in range(3):
            await wait_for_exit(spawn(quick))
        found = points(reader)
    provider.shutdown()
    assert found["asyncotp.actor.spawns"][0].value == 3


async def test_mailbox_gauges_show_the_last_sample_taken_by_the_sampler_child(
    node: asyncotp.Node,
) -> None:
    async def parked() -> None:
        await asyncotp.receive(lambda message: message == "never")

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    with OTelMetrics(provider) as metrics:
        inbox = spawn(parked, name="inbox")
        for n in range(4):
            asyncotp.send(inbox, n)
        sup = await Supervisor.start([metrics.sampler_spec(60.0)])  # samples once at start
        # The sampler's first step (a sample, then its sleep) was scheduled
        # before the supervisor could answer this request.
        [child] = await asyncotp.which_children(sup)
        assert child.id == "otel_sampler"
        found = points(reader)
        await stop(sup)
        await stop(inbox, asyncotp.KILL)
    provider.shutdown()
    depths = {p.attributes["asyncotp.actor"]: p.value for p in found["asyncotp.mailbox.depth"]}
    assert depths["inbox"] == 4
    assert found["asyncotp.mailbox.messages"][0].value >= 4


def test_sampler_spec_refuses_a_bad_interval() -> None:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    with OTelMetrics(provider) as metrics, pytest.raises(ValueError, match="interval"):
        metrics.sampler_spec(0)
    provider.shutdown()
