"""Remote calls and casts between two asyncotp nodes, against bare nats-py
request-reply and publish loops on the same nats-server.

    .venv/bin/python benchmarks/distribution.py            # starts its own nats-server
    .venv/bin/python benchmarks/distribution.py --json

Both sides run in this process, on one event loop (so on one core): the
asyncotp side as two nodes connected to the server (a client actor task on
node "a" calling an echo GenServer on node "b"), the bare side as two
nats-py connections (a requester and a responder). Each figure is the best
of ``--rounds`` rounds. What the ratio measures is what asyncotp adds per
message: JSON encoding with tags, the envelope, the writer task, the
mailbox and the GenServer loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
from _nats import nats_server  # benchmarks/_nats.py, beside this script

import asyncotp
from asyncotp import Caller, GenServer, call, cast
from asyncotp.distribution import NatsCluster, connect, whereis_remote


class Echo(GenServer):
    async def init(self) -> None:
        self.casts = 0

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "casts":
            return self.casts
        return request

    async def handle_cast(self, request: Any) -> None:
        self.casts += 1


async def bare_request_reply(url: str, n: int) -> float:
    responder = await nats.connect(url)
    requester = await nats.connect(url)

    async def echo(msg: Any) -> None:
        await msg.respond(msg.data)

    await responder.subscribe("bench.echo", cb=echo)
    await responder.flush()
    payload = b'{"k":"call","to":1,"m":1}'
    start = time.perf_counter()
    for _ in range(n):
        await requester.request("bench.echo", payload, timeout=5)
    took = time.perf_counter() - start
    await requester.close()
    await responder.close()
    return took / n


async def bare_publish(url: str, n: int) -> float:
    receiver = await nats.connect(url)
    sender = await nats.connect(url)
    done = asyncio.get_running_loop().create_future()
    seen = 0

    async def count(_msg: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == n and not done.done():
            done.set_result(None)

    await receiver.subscribe("bench.casts", cb=count, pending_msgs_limit=n + 1)
    await receiver.flush()
    payload = b'{"k":"cast","to":1,"m":1}'
    start = time.perf_counter()
    for _ in range(n):
        await sender.publish("bench.casts", payload)
    await sender.flush()
    await done
    took = time.perf_counter() - start
    await sender.close()
    await receiver.close()
    return n / took


class Pair:
    """Nodes "a" and "b" of one cluster, each in a task of its own."""

    def __init__(self, cluster: NatsCluster) -> None:
        self.cluster = cluster
        self.contexts: dict[str, contextvars.Context] = {}
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def _host(self, name: str, ready: asyncio.Future[None]) -> None:
        async with asyncotp.node(), connect(name, self.cluster):
            self.contexts[name] = contextvars.copy_context()
            ready.set_result(None)
            await self.stop.wait()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Pair]:
        loop = asyncio.get_running_loop()
        for name in ("a", "b"):
            ready: asyncio.Future[None] = loop.create_future()
            self.tasks.append(loop.create_task(self._host(name, ready)))
            await ready
        try:
            yield self
        finally:
            self.stop.set()
            for task in self.tasks:
                await task

    async def on(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        async def job() -> Any:
            return await fn()

        return await asyncio.get_running_loop().create_task(
            job(), context=self.contexts[name].copy()
        )


async def remote_calls(pair: Pair, n: int) -> float:
    async def client() -> float:
        echo = await whereis_remote("b", "echo")
        assert echo is not None
        start = time.perf_counter()
        for i in range(n):
            await call(echo, i)
        return time.perf_counter() - start

    took: float = await pair.on("a", client)
    return took / n


async def remote_casts(pair: Pair, n: int) -> float:
    async def client() -> float:
        echo = await whereis_remote("b", "echo")
        assert echo is not None
        before = await call(echo, "casts")
        start = time.perf_counter()
        for i in range(n):
            cast(echo, i)
        # Messages between two actors keep their order: this call returns
        # once every cast before it has been handled.
        assert await call(echo, "casts", timeout=60) == before + n
        return time.perf_counter() - start

    took: float = await pair.on("a", client)
    return n / took


async def measure(url: str, calls: int, casts: int, rounds: int) -> dict[str, Any]:
    cluster = NatsCluster(servers=url, prefix="bench", heartbeat_interval=1.0)
    results: dict[str, list[float]] = {k: [] for k in ("bare_rr", "call", "bare_pub", "cast")}
    async with Pair(cluster).running() as pair:

        async def start_echo() -> None:
            await Echo.start(name="echo")

        await pair.on("b", start_echo)
        await remote_calls(pair, calls // 10)  # warm-up
        await bare_request_reply(url, calls // 10)
        for _ in range(rounds):
            results["bare_rr"].append(await bare_request_reply(url, calls))
            results["call"].append(await remote_calls(pair, calls))
            results["bare_pub"].append(await bare_publish(url, casts))
            results["cast"].append(await remote_casts(pair, casts))
    bare_rr, remote_call = min(results["bare_rr"]), min(results["call"])
    bare_pub, remote_cast = max(results["bare_pub"]), max(results["cast"])
    return {
        "remote_call_us": round(remote_call * 1e6, 1),
        "bare_request_reply_us": round(bare_rr * 1e6, 1),
        "call_ratio": round(remote_call / bare_rr, 2),
        "remote_casts_per_s": round(remote_cast),
        "bare_publish_per_s": round(bare_pub),
        "cast_ratio": round(remote_cast / bare_pub, 2),
        "calls": calls,
        "casts": casts,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="a running nats-server (default: start one)")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--casts", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(nats_server())
        out = asyncio.run(measure(url, args.calls, args.casts, args.rounds))
    if args.json:
        json.dump(out, sys.stdout)
        print()
        return
    print(
        f"remote call      {out['remote_call_us']:>10} us   bare request-reply "
        f"{out['bare_request_reply_us']} us   ratio {out['call_ratio']}x"
    )
    print(
        f"remote casts     {out['remote_casts_per_s']:>10} /s   bare publish "
        f"{out['bare_publish_per_s']} /s   ratio {out['cast_ratio']}x"
    )


if __name__ == "__main__":
    main()
