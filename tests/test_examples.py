"""Every example is a real program: run each one and check what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from tests.helpers import EXAMPLES, run_example


@pytest.mark.timeout(90)
def test_demo_crashes_recovers_and_ends_by_itself() -> None:
    result = run_example("demo.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The gateway crashes, and rest_for_one restarts it and the ledger after it.
    assert "CRASH" in out
    assert "sup:payments child 'gateway' crashed" in out
    assert "restarted 'gateway'" in out
    assert "restarted 'ledger'" in out
    # The burst exceeds the payments supervisor's intensity; the root restarts it.
    assert "GIVING UP" in out
    assert "sup:shop   child 'payments' gave up" in out
    assert "restarted 'payments'" in out
    # Payments keep succeeding after each recovery, and the program ends cleanly.
    assert out.count(": 200 charged") >= 8
    assert out.rstrip().endswith("done: the node has stopped and nothing is left running")
    # Shutdown runs in reverse start order: the ledger stops before the gateway.
    tail = out[out.index("the program ends") :]
    assert tail.index("ledger     stopping") < tail.index("gateway    stopping")


@pytest.mark.timeout(90)
def test_health_endpoint_example_goes_ready_then_unready_then_down() -> None:
    result = run_example("health_endpoint.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "GET /ready  -> 503  NOT READY" in out
    assert "GET /ready  -> 200  ready" in out
    assert "[supervisor] restarted 'db'" in out
    assert "db running (1 restarts)" in out
    assert "GET /health -> 503  live=False" in out
    assert out.rstrip().endswith("done: the server is closed and the tree has stopped")


@pytest.mark.timeout(90)
def test_retry_example_rides_out_a_restart_and_gives_up_at_its_deadline() -> None:
    result = run_example("retry_backoff.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "attempt 1 failed with ServerExited" in out
    assert "-> 12 apples in stock" in out
    assert "raised at once, after one attempt: ValueError" in out
    assert "gave up after" in out
    assert "RetryDeadlineExceeded" in out


@pytest.mark.timeout(90)
def test_circuit_breaker_example_opens_then_recovers() -> None:
    result = run_example("circuit_breaker.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    order = [
        "breaker_opened: closed -> open",
        "queued for later (breaker open)",
        "breaker_half_open: open -> half_open",
        "breaker_closed: half_open -> closed",
    ]
    positions = [out.index(line) for line in order]
    assert positions == sorted(positions)
    assert "the gateway saw 5 requests for 8 orders" in out


@pytest.mark.timeout(90)
def test_load_shedding_example_answers_every_request_under_overload() -> None:
    result = run_example("load_shedding.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "429 Too Many Requests" in out
    assert "503 Service Unavailable" in out
    assert "after  GET /after    (anonymous) -> 200 OK" in out
    assert out.rstrip().endswith("done: the service is still up and answered every request")


@pytest.mark.timeout(90)
def test_idempotency_example_charges_once_per_key() -> None:
    result = run_example("idempotency.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "(joined the charge under way)" in out
    assert "422 Unprocessable Entity" in out
    assert "the card was charged 3 times for 3 distinct keys" in out
    assert "0 receipts remembered, 3 expired" in out


@pytest.mark.timeout(90)
def test_dead_letters_example_dead_letters_a_poison_job_and_replays_it() -> None:
    result = run_example("dead_letters.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "moved to the dead-letter queue" in out
    assert "dead after exactly 3 attempts" in out
    assert "replayed letter 1" in out
    assert "undeliverable messages observed: 1" in out


@pytest.mark.timeout(90)
def test_graceful_shutdown_example_loses_nothing_and_exits_zero() -> None:
    result = run_example("graceful_shutdown.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "closing the door" in out
    assert "exactly the done ones" in out
    assert "lost: 0; application exit code 0" in out


@pytest.mark.timeout(90)
def test_web_lifespan_example_serves_requests_through_a_restart() -> None:
    result = run_example("web_lifespan.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "lifespan node and supervision tree started" in out
    assert "GET /hit   -> 200 {'visits': 2}" in out
    assert "GET /crash -> 202" in out
    # The restarted counter starts afresh, and the request rode out the restart.
    assert out.index("visits   stopping (the visit counter") < out.rindex(
        "GET /hit   -> 200 {'visits': 1}"
    )
    assert out.index("lifespan shutting the node down") < out.index("visits   stopping (SHUTDOWN)")
    assert out.rstrip().endswith("done: the web server and the node have stopped")
    assert "handling Cast('crash')" in result.stderr  # the crash report names the request


@pytest.mark.timeout(90)
def test_tasks_example_awaits_isolates_stops_and_streams_with_back_pressure() -> None:
    result = run_example("tasks.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "-> ['<html>/a</html>', '<html>/slow/b</html>', '<html>/c</html>']" in out
    assert "await raised PageError" in out
    assert "yield_ gives None: not finished" in out
    assert "shutdown stops it and gives None" in out
    assert "crawler: TaskReply for /d: '<html>/d</html>'" in out
    assert "crawler: Down for /broken/e, it failed" in out
    assert "item 2: exit: PageError" in out
    assert "item 4: exit: timed out, killed" in out
    assert "item 7: ok '<html>/page/7</html>'" in out
    assert out.rstrip().endswith("done: every task has ended and the tree stops")


def test_door_lock_example_opens_relocks_on_time_and_replays_postponed_presses() -> None:
    result = run_example("door_lock.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "door: no button for 0.3 s, forgetting '99'" in out
    assert "you: the door says it is locked" in out
    assert "door: button '4' -> '1234'" in out
    assert "you: the door says it is open" in out
    # Buttons pressed while open are postponed, then retried once it locks.
    order = [
        "door: button '1' while open: postponed until it locks",
        "door: time is up",
        "door: locked",
        "door: button '1' -> '1'",
    ]
    tail = out[out.index("you: type 1-2-3-4 again") :]
    positions = [tail.index(line) for line in order]
    assert positions == sorted(positions)
    assert out.count("door: unlocked, open for 0.5 s") == 2
    assert out.rstrip().endswith("done: the door is locked and stopped")


def test_dashboard_example_serves_the_live_tree_then_stops_by_itself() -> None:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "dashboard.py"), "--seconds", "4", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("dashboard: http://127.0.0.1:"), first
        url = first.split()[1]
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url + "api/snapshot", timeout=10) as response:
            data = json.load(response)
        (tree,) = data["trees"]
        assert tree["name"] == "shop"
        assert [c["id"] for c in tree["children"]] == [
            "prices",
            "payments",
            "flaky",
            "mailer",
            "jobs",
        ]
        with opener.open(url, timeout=10) as response:
            assert b"static/dashboard.js" in response.read()
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err
    assert out.rstrip().endswith("done: the dashboard and the tree have stopped")


@pytest.mark.timeout(90)
def test_metrics_example_scrapes_restarts_latency_and_drops() -> None:
    pytest.importorskip("prometheus_client", reason="the prometheus extra is not installed")
    pytest.importorskip("uvicorn", reason="the asgi extra is not installed")
    result = run_example("metrics.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("[telemetry] child_restarted: child 'prices' of 'shop'") == 2
    assert "restarts of prices: 2" in out
    assert "calls to prices: 300," in out
    assert "messages dropped by inbox: 15" in out
    assert "inbox depth: 10" in out
    assert "event-loop lag histogram exported: yes" in out
    assert out.rstrip().endswith("done: the tree has stopped and the handlers are detached")


def test_pubsub_example_fans_out_queries_reaches_by_name_and_forgets_the_crashed() -> None:
    result = run_example("pubsub.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "#python: ['alice', 'bob', 'carol']; #elixir: ['carol']" in out
    assert "bob sees in #python: <alice> has anyone tried" in out
    assert "carol sees in #python: <alice> has anyone tried" in out
    assert "alice sees in" not in out  # the sender is left out of its own post
    assert "#python members whose nick starts with c: ['carol']" in out
    assert "carol got a direct message from bob: see you in #elixir" in out
    assert "#python: ['alice', 'carol']; whereis bob: None" in out
    assert "refused: Via(Registry('presence'), 'alice') is held by" in out
    assert out.rstrip().endswith("done")
