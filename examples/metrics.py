"""Prometheus metrics for a supervision tree, built on asyncotp's telemetry events.

    python examples/metrics.py     (needs pip install 'asyncotp[prometheus,asgi]')

The tree:

    shop (one_for_one)
    |-- loop_lag_sampler   samples the event loop's lag every 50 ms
    |-- prices             a GenServer that answers price requests
    `-- metrics_http       serve_metrics: /metrics on a free loopback port

What happens: the program makes a few hundred calls to ``prices`` (call
latency), crashes it twice on purpose (its supervisor restarts it), floods a
small bounded mailbox (overflow drops), and logs every supervisor event
through a telemetry handler of its own. Then it scrapes ``/metrics`` over
HTTP like Prometheus would, parses the text with prometheus-client's own
parser, and prints the figures it finds.
"""

from __future__ import annotations

import functools
import logging
import urllib.request
from typing import Any

import anyio
from prometheus_client.parser import text_string_to_metric_families

import asyncotp
from asyncotp import (
    Caller,
    ChildSpec,
    GenServer,
    Overflow,
    Supervisor,
    call,
    send,
    spawn,
    stop,
    telemetry,
    which_children,
)
from asyncotp.metrics.prometheus import PrometheusMetrics, serve_metrics
from asyncotp.testing import wait_for_exit


class Prices(GenServer):
    async def init(self) -> None:
        self.table = {"apple": 0.5, "pear": 0.7}

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "crash":
            raise RuntimeError("price feed corrupted")
        return self.table.get(request)


RESTARTS = [
    ("asyncotp", "supervisor", "child_restarted"),
    ("asyncotp", "supervisor", "child_terminated"),
]


def log_supervisor_event(
    event: telemetry.EventName, measurements: dict[str, float], meta: dict[str, Any], config: Any
) -> None:
    """A telemetry handler of our own: runs inside the supervisor, at once."""
    print(f"[telemetry] {event[-1]}: child {meta['child_id']!r} of {meta['supervisor_name']!r}")


async def fetch(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    return await anyio.to_thread.run_sync(get)


async def main() -> None:
    logging.getLogger("asyncotp").setLevel(logging.CRITICAL)  # the events tell the story
    metrics = PrometheusMetrics()
    telemetry.attach_many(
        "example-log",
        [
            ("asyncotp", "supervisor", "child_restarted"),
            ("asyncotp", "supervisor", "child_terminated"),
        ],
        log_supervisor_event,
    )
    port_box: list[int] = []

    async def serve(listening: anyio.Event) -> None:
        async with anyio.create_task_group() as tg:
            port_box.append(await tg.start(functools.partial(serve_metrics, metrics, port=0)))
            listening.set()
            await anyio.sleep_forever()

    async def start_http() -> asyncotp.Pid:
        """The child's start: spawn the server actor, return once it listens."""
        listening = anyio.Event()
        pid = spawn(serve, listening)
        await listening.wait()
        return pid

    root = await Supervisor.start(
        [
            telemetry.lag_sampler_spec(0.05),
            Prices.child_spec(id="prices", name="prices"),
            ChildSpec(id="metrics_http", start=start_http),
        ],
        name="shop",
    )
    for _ in range(300):
        await call("prices", "apple")
    for _ in range(2):
        old = asyncotp.whereis("prices")
        assert old is not None
        try:
            await call(old, "crash")
        except asyncotp.ServerExited:
            print("prices crashed, as asked")
        await wait_for_exit(old)
        await which_children(root)  # answered once the restart is done

    async def slow_consumer() -> None:
        await anyio.sleep_forever()

    inbox = spawn(slow_consumer, name="inbox", mailbox_size=10, overflow=Overflow.DROP_NEWEST)
    for n in range(25):
        send(inbox, n)

    text = await fetch(f"http://127.0.0.1:{port_box[0]}/metrics")
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    child = (("child", "prices"), ("supervisor", "shop"))
    print(f"restarts of prices: {found[('asyncotp_supervisor_restarts_total', child)]:.0f}")
    calls = found[("asyncotp_call_duration_seconds_count", (("server", "prices"),))]
    seconds = found[("asyncotp_call_duration_seconds_sum", (("server", "prices"),))]
    print(f"calls to prices: {calls:.0f}, mean {seconds / calls * 1e6:.1f} µs")
    dropped = (("actor", "inbox"), ("policy", "drop_newest"))
    print(f"messages dropped by inbox: {found[('asyncotp_mailbox_overflow_total', dropped)]:.0f}")
    print(f"inbox depth: {found[('asyncotp_mailbox_depth', (('actor', 'inbox'),))]:.0f}")
    print(f"actors alive: {found[('asyncotp_actors_alive', ())]:.0f}")
    lag = ("asyncotp_event_loop_lag_seconds_count", ()) in found
    print(f"event-loop lag histogram exported: {'yes' if lag else 'no'}")

    await stop(inbox, asyncotp.KILL)
    await stop(root)
    telemetry.detach("example-log")
    metrics.close()
    print("done: the tree has stopped and the handlers are detached")


if __name__ == "__main__":
    asyncotp.run(main)
