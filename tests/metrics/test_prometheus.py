"""The Prometheus adapter, against the real prometheus-client: every scrape
is parsed back with prometheus-client's own text parser."""

from __future__ import annotations

import functools
import time
from typing import Any

import anyio
import httpx
import pytest

pytest.importorskip(
    "prometheus_client",
    reason="the prometheus extra is not installed (pip install prometheus-client)",
)

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import asyncotp
from asyncotp import Caller, GenServer, Overflow, Supervisor, call, spawn, stop, telemetry
from asyncotp.metrics.prometheus import MetricsApp, PrometheusMetrics, serve_metrics
from asyncotp.resilience import CircuitBreaker, RetryPolicy, retry
from asyncotp.testing import wait_for_exit

pytestmark = pytest.mark.timeout(10)


class Crashy(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "crash":
            raise RuntimeError("asked to")
        return request


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def metrics() -> Any:
    with PrometheusMetrics(CollectorRegistry()) as the_metrics:
        yield the_metrics


async def scrape(app: MetricsApp) -> str:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_restarts_are_counted_per_supervisor_and_child(
    node: asyncotp.Node, metrics: PrometheusMetrics, crash_reports: Any
) -> None:
    await Supervisor.start([Crashy.child_spec(id="worker", name="worker")], name="root")
    for _ in range(2):
        old = asyncotp.whereis("worker")
        assert old is not None
        with pytest.raises(asyncotp.ServerExited):
            await call(old, "crash")
        await wait_for_exit(old)
        await asyncotp.which_children("root")  # the restart happened before this answer
    found = samples(await scrape(MetricsApp(metrics, node=node)))
    child = (("child", "worker"), ("supervisor", "root"))
    assert found[("asyncotp_supervisor_restarts_total", child)] == 2
    crashed = (("child", "worker"), ("outcome", "crash"), ("supervisor", "root"))
    assert found[("asyncotp_supervisor_child_exits_total", crashed)] == 2
    assert ("asyncotp_supervisor_give_ups_total", (("supervisor", "root"),)) not in found
    errors = (("error", "ServerExited"), ("server", "worker"))
    assert found[("asyncotp_call_exceptions_total", errors)] == 2


async def test_a_supervisor_that_gives_up_is_counted(
    node: asyncotp.Node, metrics: PrometheusMetrics, crash_reports: Any
) -> None:
    sup = await Supervisor.start(
        [Crashy.child_spec(id="w", name="w")], max_restarts=0, name="fragile"
    )
    pid = asyncotp.whereis("w")
    assert pid is not None
    with pytest.raises(asyncotp.ServerExited):
        await call(pid, "crash")
    await wait_for_exit(sup)
    found = samples(await scrape(MetricsApp(metrics, node=node)))
    assert found[("asyncotp_supervisor_give_ups_total", (("supervisor", "fragile"),))] == 1


async def test_call_latency_is_a_histogram_per_named_server(
    node: asyncotp.Node, metrics: PrometheusMetrics
) -> None:
    named = await Crashy.start(name="echo")
    unnamed = await Crashy.start()
    for _ in range(3):
        await call(named, "hi")
    await call(unnamed, "hi")
    found = samples(await scrape(MetricsApp(metrics, node=node)))
    assert found[("asyncotp_call_duration_seconds_count", (("server", "echo"),))] == 3
    assert found[("asyncotp_call_duration_seconds_count", (("server", "unnamed"),))] == 1
    inf = (("le", "+Inf"), ("server", "echo"))
    assert found[("asyncotp_call_duration_seconds_bucket", inf)] == 3
    assert found[("asyncotp_call_duration_seconds_sum", (("server", "echo"),))] > 0
    await stop(named)
    await stop(unnamed)


async def test_actors_alive_and_mailbox_depth_are_read_at_each_scrape(
    node: asyncotp.Node, metrics: PrometheusMetrics
) -> None:
    async def parked() -> None:
        await anyio.sleep_forever()

    inbox = spawn(parked, name="inbox", mailbox_size=2, overflow=Overflow.DROP_NEWEST)
    for n in range(5):
        asyncotp.send(inbox, n)
    app = MetricsApp(metrics, node=node)
    found = samples(await scrape(app))
    assert found[("asyncotp_actors_alive", ())] == len(asyncotp.processes())
    assert found[("asyncotp_mailbox_depth", (("actor", "inbox"),))] == 2
    assert found[("asyncotp_mailbox_messages", ())] >= 2
    dropped = (("actor", "inbox"), ("policy", "drop_newest"))
    assert found[("asyncotp_mailbox_overflow_total", dropped)] == 3
    await stop(inbox, asyncotp.KILL)
    found = samples(await scrape(app))
    assert ("asyncotp_mailbox_depth", (("actor", "inbox"),)) not in found  # no stale series


async def test_breaker_state_and_retries_are_exported(
    node: asyncotp.Node, metrics: PrometheusMetrics
) -> None:
    async def failing() -> None:
        raise ConnectionError("down")

    breaker = await CircuitBreaker.start(name="payments", failure_threshold=1)
    with pytest.raises(ConnectionError):
        await CircuitBreaker.call(breaker, failing)
    await CircuitBreaker.statistics(breaker)  # the breaker has handled the failure
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("try again")
        return "ok"

    policy = RetryPolicy(max_attempts=3, initial=0.001, jitter=0.0, retry_on=(ConnectionError,))
    assert await retry(flaky, policy=policy) == "ok"
    found = samples(await scrape(MetricsApp(metrics, node=node)))
    opened = (("asyncotp_breaker_state", "open"), ("breaker", "payments"))
    assert found[("asyncotp_breaker_state", opened)] == 1
    closed = (("asyncotp_breaker_state", "closed"), ("breaker", "payments"))
    assert found[("asyncotp_breaker_state", closed)] == 0
    assert (
        found[("asyncotp_breaker_transitions_total", (("breaker", "payments"), ("state", "open")))]
        == 1
    )
    operation = next(k for k in found if k[0] == "asyncotp_retries_total")
    assert found[operation] == 2
    await stop(breaker)


async def test_serve_metrics_answers_on_loopback_and_refuses_other_paths(
    node: asyncotp.Node, metrics: PrometheusMetrics
) -> None:
    server = await Crashy.start(name="svc")
    await call(server, "x")
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_metrics, metrics, port=0))
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=5.0, trust_env=False
        ) as client:
            response = await client.get("/metrics")
            missing = await client.get("/nothing")
            posted = await client.post("/metrics")
        tg.cancel_scope.cancel()
    assert response.status_code == 200
    found = samples(response.text)
    assert found[("asyncotp_call_duration_seconds_count", (("server", "svc"),))] == 1
    assert found[("asyncotp_actors_alive", ())] >= 1
    assert missing.status_code == 404
    assert posted.status_code == 405
    await stop(server)


def test_close_detaches_and_a_second_adapter_needs_its_own_id() -> None:
    first = PrometheusMetrics(CollectorRegistry())
    try:
        assert {h.id for h in telemetry.list_handlers()} == {"asyncotp.metrics.prometheus"}
        with pytest.raises(telemetry.HandlerExists):
            PrometheusMetrics(CollectorRegistry())
        second = PrometheusMetrics(CollectorRegistry(), handler_id="second")
        second.close()
    finally:
        first.close()
    assert telemetry.list_handlers() == []


class Sleepy(GenServer):
    async def handle_cast(self, request: Any) -> None:
        time.sleep(0.02)  # noqa: ASYNC251 - blocks on purpose: a slow callback

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return "awake"


async def test_slow_callbacks_are_counted_when_asked_for(node: asyncotp.Node) -> None:
    previous = telemetry.set_slow_callback_threshold(0.01)
    try:
        with PrometheusMetrics(CollectorRegistry(), slow_callbacks=True) as metrics:
            server = await Sleepy.start(name="sleepy")
            asyncotp.cast(server, "nap")
            assert await call(server, "wake up") == "awake"  # answered after the cast
            await stop(server)
            found = samples(metrics.exposition(node).decode())
    finally:
        telemetry.set_slow_callback_threshold(previous)
    slow = (("callback", "handle_cast"), ("server", "Sleepy"))
    assert found[("asyncotp_slow_callbacks_total", slow)] == 1


async def test_metrics_app_answers_below_a_mount_point(metrics: PrometheusMetrics) -> None:
    app = MetricsApp(metrics)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": "/ops/metrics", "root_path": "/ops/metrics"}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert b"asyncotp_actors_alive" in sent[1]["body"]


def test_metrics_app_takes_a_prometheus_metrics() -> None:
    with pytest.raises(TypeError, match="PrometheusMetrics"):
        MetricsApp("registry")  # type: ignore[arg-type]


async def test_nothing_is_sampled_without_a_node(metrics: PrometheusMetrics) -> None:
    text = metrics.exposition().decode()
    assert samples(text)[("asyncotp_actors_alive", ())] == 0
