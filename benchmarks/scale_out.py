"""Scale-out: the same work done by independent actors on one node process,
then spread over two node processes (one per core), coordinated over NATS.

    .venv/bin/python benchmarks/scale_out.py          # starts its own nats-server
    .venv/bin/python benchmarks/scale_out.py --json

Each node process runs a ``Bench`` server; the coordinator (a node of its
own) finds them with ``whereis_remote`` and calls ``("go", actors,
messages)`` on all of them at once. A node then runs ``actors`` actors,
each taking ``messages`` messages from its mailbox and doing a little work
on each (a cast to itself, a sum). The figure is messages per second over
the wall time from the calls to the last reply; the ratio is two nodes
against one, for the same total work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from typing import Any

import asyncotp
from asyncotp import Caller, GenServer, call, receive, send
from asyncotp.distribution import NatsCluster, connect, run, whereis_remote

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from distribution import nats_server


async def busy_actor(messages: int, done: asyncio.Future[None], left: list[int]) -> None:
    me = asyncotp.self_pid()
    total = 0
    for i in range(messages):
        send(me, i)
        total += sum(range(await receive() % 50 + 50))
    left[0] -= 1
    if left[0] == 0:
        done.set_result(None)


class Bench(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> float:
        _go, actors, messages = request
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        left = [actors]
        start = time.perf_counter()
        for _ in range(actors):
            asyncotp.spawn(busy_actor, messages, done, left)
        await done
        return time.perf_counter() - start


def cluster(url: str) -> NatsCluster:
    return NatsCluster(url, prefix="scale", heartbeat_interval=1.0, heartbeat_window=10.0)


async def worker() -> None:
    await Bench.start(name="bench")
    print("ready", flush=True)
    await receive()


async def round_with(url: str, nodes: int, actors: int, messages: int) -> float:
    """Messages per second with the work split over ``nodes`` processes."""
    names = [f"w{nodes}-{i}" for i in range(nodes)]
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - before this round's node starts: nothing else runs
            [sys.executable, __file__, "--worker", name, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        for name in names
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"ready"
        async with asyncotp.node(), connect(f"coordinator{nodes}", cluster(url)):
            benches = [await whereis_remote(name, "bench") for name in names]
            share = actors // nodes
            start = time.perf_counter()
            await asyncio.gather(
                *(call(bench, ("go", share, messages), timeout=600) for bench in benches)
            )
            wall = time.perf_counter() - start
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
    return actors * messages / wall


async def measure(url: str, actors: int, messages: int, rounds: int) -> dict[str, Any]:
    one = max([await round_with(url, 1, actors, messages) for _ in range(rounds)])
    two = max([await round_with(url, 2, actors, messages) for _ in range(rounds)])
    return {
        "one_node_msgs_per_s": round(one),
        "two_nodes_msgs_per_s": round(two),
        "ratio": round(two / one, 2),
        "actors": actors,
        "messages_per_actor": messages,
        "rounds": rounds,
    }


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        run(worker, node=sys.argv[2], cluster=cluster(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", help="a running nats-server (default: start one)")
    parser.add_argument("--actors", type=int, default=100)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.url or stack.enter_context(nats_server())
        out = asyncio.run(measure(url, args.actors, args.messages, args.rounds))
    if args.json:
        print(json.dumps(out))
        return
    print(
        f"one node {out['one_node_msgs_per_s']} msgs/s   two nodes "
        f"{out['two_nodes_msgs_per_s']} msgs/s   ratio {out['ratio']}x"
    )


if __name__ == "__main__":
    main()
