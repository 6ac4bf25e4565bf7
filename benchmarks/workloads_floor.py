"""The raw-asyncio floor: the same five workloads, written by hand.

One ``asyncio.Queue`` and one task per actor, a ``Future`` per reply, a
minimal one_for_one restart loop. It is meant to be the tightest honest
version a careful programmer would write without a framework: messages are
tuples tagged with a small int, the hot loops are inlined, nothing is
validated and nothing has a timeout. What it does not do (deadlines on calls,
failing callers of a dead server, links, monitors, names freed on exit by a
runtime, crash reports with context) is what asyncotp adds; the ratio is the
price of that.

Every workload function takes its parameters and ``uvloop`` and returns a
dict of measurements; ``run.py`` calls it in a fresh process.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import tracemalloc
from collections import deque
from typing import Any

from _common import (
    Unavailable,
    gc_objects,
    gc_seconds,
    percentile,
    perf,
    run_floor,
    settled_rss,
    timer,
)

logger = logging.getLogger("floor")

# Message tags: the first item of every message tuple.
CAST = 0
CALL = 1
STOP = 2
EXIT = 3
DONE = 4


class Actor:
    """The floor's handle on one actor (what a pid is to asyncotp)."""

    __slots__ = ("queue", "task")

    def __init__(self, queue: asyncio.Queue[Any], task: asyncio.Task[None]) -> None:
        self.queue = queue
        self.task = task


async def start(
    body: Any, *args: Any, name: str | None = None, registry: dict[str, Actor] | None = None
) -> Actor:
    """Create the queue and the task, register the name, wait until init ran."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    started = loop.create_future()
    task = loop.create_task(body(queue, started, *args))
    actor = Actor(queue, task)
    if name is not None and registry is not None:
        registry[name] = actor
        task.add_done_callback(functools.partial(_unregister, registry, name, actor))
    await started
    return actor


def _unregister(registry: dict[str, Actor], name: str, actor: Actor, _task: object) -> None:
    if registry.get(name) is actor:
        del registry[name]


async def call(actor: Actor, request: object) -> Any:
    fut = asyncio.get_running_loop().create_future()
    actor.queue.put_nowait((CALL, request, fut))
    return await fut


async def stop(actor: Actor) -> None:
    actor.queue.put_nowait((STOP,))
    await actor.task


# -- actor bodies -------------------------------------------------------------


async def counter(
    queue: asyncio.Queue[Any],
    started: asyncio.Future[None],
    quota: int = 0,
    report: asyncio.Queue[Any] | None = None,
) -> None:
    """Counts casts; a call answers the count; tells ``report`` at ``quota``."""
    count = 0
    started.set_result(None)
    get = queue.get
    while True:
        msg = await get()
        tag = msg[0]
        if tag == CAST:
            count += 1
            if count == quota:
                report.put_nowait((DONE,))  # type: ignore[union-attr]
        elif tag == CALL:
            msg[2].set_result(count)
        else:
            return


async def idle(queue: asyncio.Queue[Any], started: asyncio.Future[None]) -> None:
    """An actor that waits for messages and answers calls with None."""
    started.set_result(None)
    get = queue.get
    while True:
        msg = await get()
        tag = msg[0]
        if tag == CALL:
            msg[2].set_result(None)
        elif tag == STOP:
            return


async def crasher(queue: asyncio.Queue[Any], started: asyncio.Future[None]) -> None:
    """Crashes on any cast; answers calls with "pong"."""
    started.set_result(None)
    get = queue.get
    while True:
        msg = await get()
        tag = msg[0]
        if tag == CAST:
            raise RuntimeError(f"crash requested: {msg[1]!r}")
        if tag == CALL:
            msg[2].set_result("pong")
        else:
            return


class Supervisor:
    """A minimal one_for_one supervisor: a task with a queue that restarts a
    child whose task ended, logs the crash and enforces a restart intensity."""

    def __init__(
        self,
        specs: list[tuple[str, str, Any]],
        registry: dict[str, Actor],
        max_restarts: int,
        max_seconds: float,
    ) -> None:
        self.specs = specs  # (id, name, body)
        self.registry = registry
        self.children: list[Actor | None] = [None] * len(specs)
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.restarts: deque[float] = deque()
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for index in range(len(self.specs)):
            await self._start_child(index)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _start_child(self, index: int) -> None:
        _id, name, body = self.specs[index]
        actor = await start(body, name=name, registry=self.registry)
        self.children[index] = actor
        actor.task.add_done_callback(functools.partial(self._exited, index))

    def _exited(self, index: int, task: asyncio.Task[None]) -> None:
        self.children[index] = None
        self.queue.put_nowait((EXIT, index, task))

    async def _run(self) -> None:
        get = self.queue.get
        loop = asyncio.get_running_loop()
        while True:
            msg = await get()
            tag = msg[0]
            if tag == EXIT:
                _, index, task = msg
                if task.cancelled():
                    continue  # we are shutting down
                exc = task.exception()
                if exc is not None:
                    logger.error("child %r crashed", self.specs[index][0], exc_info=exc)
                now = loop.time()
                restarts = self.restarts
                restarts.append(now)
                while restarts[0] < now - self.max_seconds:
                    restarts.popleft()
                if len(restarts) > self.max_restarts:
                    raise RuntimeError("reached max restart intensity")
                await self._start_child(index)
            elif tag == CALL:  # which_children
                msg[2].set_result(
                    [
                        (spec[0], child)
                        for spec, child in zip(self.specs, self.children, strict=True)
                    ]
                )
            else:
                for child in reversed(self.children):
                    if child is not None:
                        await stop(child)
                return


# -- workloads ----------------------------------------------------------------


def cast_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    n = params["n"]

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        server = await start(counter)
        put = server.queue.put_nowait
        request = 1
        g0 = gc_seconds()
        t0 = timer()
        for _ in range(n):
            put((CAST, request))
        fut = loop.create_future()
        put((CALL, "get", fut))
        count = await fut
        elapsed = timer() - t0
        gc_time = gc_seconds() - g0
        if count != n:
            raise AssertionError(f"counted {count} casts, sent {n}")
        await stop(server)
        return {"msgs_per_s": n / elapsed, "seconds": elapsed, "gc_seconds": gc_time, "n": n}

    return run_floor(main, uvloop=uvloop)  # type: ignore[no-any-return]


def call_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    n = params["n"]

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        server = await start(counter)
        put = server.queue.put_nowait
        create_future = loop.create_future
        # Pass 1: the mean, from the total, with no clock read per call.
        t0 = timer()
        for _ in range(n):
            fut = create_future()
            put((CALL, "get", fut))
            await fut
        mean_us = (timer() - t0) / n * 1e6
        # Pass 2: one clock read per call, for the distribution.
        stamps = [0.0] * (n + 1)
        stamps[0] = perf()
        for i in range(1, n + 1):
            fut = create_future()
            put((CALL, "get", fut))
            await fut
            stamps[i] = perf()
        await stop(server)
        lat = sorted((stamps[i] - stamps[i - 1]) * 1e6 for i in range(1, n + 1))
        return {
            "mean_us": mean_us,
            "p50_us": percentile(lat, 50),
            "p99_us": percentile(lat, 99),
            "n": n,
        }

    return run_floor(main, uvloop=uvloop)  # type: ignore[no-any-return]


def spawn_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    n = params["n"]
    traced_n = params.get("traced", 0)

    async def main() -> dict[str, Any]:
        actors: list[Actor] = []
        actors_append = actors.append
        rss0 = settled_rss()
        objs0 = gc_objects()
        g0 = gc_seconds()
        t0 = timer()
        for _ in range(n):
            actors_append(await start(idle))
        t1 = timer()
        g1 = gc_seconds()
        rss1 = settled_rss()
        objs1 = gc_objects()
        g2 = gc_seconds()
        t2 = timer()
        for actor in actors:
            await stop(actor)
        t3 = timer()
        g3 = gc_seconds()
        actors.clear()
        result = {
            "us_per_actor": ((t1 - t0) + (t3 - t2)) / n * 1e6,
            "start_us": (t1 - t0) / n * 1e6,
            "stop_us": (t3 - t2) / n * 1e6,
            "gc_us_per_actor": ((g1 - g0) + (g3 - g2)) / n * 1e6,
            "rss_bytes_per_actor": (rss1 - rss0) / n,
            "gc_objects_per_actor": (objs1 - objs0) / n,
            "n": n,
        }
        if traced_n:
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(traced_n):
                actors_append(await start(idle))
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            for actor in actors:
                await stop(actor)
            result["tracemalloc_bytes_per_actor"] = (after - before) / traced_n
        return result

    return run_floor(main, uvloop=uvloop)  # type: ignore[no-any-return]


def restart_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    crashes = params["n"]

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        registry: dict[str, Actor] = {}
        sup = Supervisor([("crasher", "crasher", crasher)], registry, 10**9, 1.0)
        await sup.start()
        sleep = asyncio.sleep

        # Path 1: find the new server through its registered name.
        by_name: list[float] = []
        for i in range(crashes):
            old = registry["crasher"]
            t0 = perf()
            old.queue.put_nowait((CAST, i))
            while True:
                actor = registry.get("crasher")
                if actor is None or actor is old:
                    await sleep(0)
                    continue
                fut = loop.create_future()
                actor.queue.put_nowait((CALL, "ping", fut))
                reply = await fut
                break
            by_name.append((perf() - t0) * 1e6)
            assert reply == "pong"

        # Path 2: ask the supervisor for its children (a round trip to it).
        by_children: list[float] = []
        for i in range(crashes):
            old = registry["crasher"]
            t0 = perf()
            old.queue.put_nowait((CAST, i))
            while True:
                fut = loop.create_future()
                sup.queue.put_nowait((CALL, "which_children", fut))
                children = await fut
                actor = children[0][1]
                if actor is None or actor is old:
                    continue
                fut = loop.create_future()
                actor.queue.put_nowait((CALL, "ping", fut))
                reply = await fut
                break
            by_children.append((perf() - t0) * 1e6)
            assert reply == "pong"

        sup.queue.put_nowait((STOP,))
        await sup.task  # type: ignore[misc]
        by_name.sort()
        by_children.sort()
        return {
            "name_us": percentile(by_name, 50),
            "name_p99_us": percentile(by_name, 99),
            "which_children_us": percentile(by_children, 50),
            "which_children_p99_us": percentile(by_children, 99),
            "crashes": crashes,
        }

    return run_floor(main, uvloop=uvloop)  # type: ignore[no-any-return]


def scale_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    k = params["actors"]
    casts = params["casts"]
    quota = max(1, casts // k)
    fan_casts = quota * k

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        report: asyncio.Queue[Any] = asyncio.Queue()
        rss0 = settled_rss()
        g0 = gc_seconds()
        t0 = timer()
        actors = [await start(counter, quota, report) for _ in range(k)]
        start_s = timer() - t0
        start_gc = gc_seconds() - g0
        rss1 = settled_rss()

        # Fan-out: round-robin over every actor; each reports at its quota.
        g0 = gc_seconds()
        queues = [actor.queue for actor in actors]
        t0 = timer()
        for i in range(fan_casts):
            queues[i % k].put_nowait((CAST, i))
        for _ in range(k):
            await report.get()
        fanout_s = timer() - t0
        fanout_gc = gc_seconds() - g0

        # Hot: every cast to one actor, among k live ones; a call as barrier.
        g0 = gc_seconds()
        put = queues[0].put_nowait
        t0 = timer()
        for i in range(casts):
            put((CAST, i))
        fut = loop.create_future()
        put((CALL, "get", fut))
        count = await fut
        hot_s = timer() - t0
        hot_gc = gc_seconds() - g0
        if count != quota + casts:
            raise AssertionError(f"counted {count}, expected {quota + casts}")
        return {
            "actors": k,
            "hot_msgs_per_s": casts / hot_s,
            "fanout_msgs_per_s": fan_casts / fanout_s,
            "start_us_per_actor": start_s / k * 1e6,
            # Seconds of garbage collection (wall) over each phase's seconds.
            "hot_gc_share": hot_gc / hot_s,
            "fanout_gc_share": fanout_gc / fanout_s,
            "start_gc_share": start_gc / start_s,
            "rss_bytes_per_actor": (rss1 - rss0) / k,
            "rss_mb": rss1 / 2**20,
        }

    return run_floor(main, uvloop=uvloop)  # type: ignore[no-any-return]


def statem_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    raise Unavailable(
        "statem compares asyncotp's StateMachine with its GenServer in one process; it has no floor"
    )


def registry_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    """A dict as the registry: ``key -> (actor, value)`` look-ups, and a
    topic as a list of subscriber actors, each message put in every queue."""
    n, keys, subs, publishes = (
        params["n"],
        params["keys"],
        params["subscribers"],
        params["publishes"],
    )

    async def main() -> dict[str, Any]:
        table: dict[str, tuple[Actor, object]] = {}
        owners = [await start(idle) for _ in range(keys)]
        for i, actor in enumerate(owners):
            table[f"k{i}"] = (actor, None)
        wanted = [f"k{i}" for i in range(keys)]
        get = table.get
        t0 = timer()
        for i in range(n):
            get(wanted[i % keys])
        by_name = (timer() - t0) / n * 1e9
        for actor in owners:
            await stop(actor)

        report: asyncio.Queue[Any] = asyncio.Queue()
        total = publishes * 2
        topics: dict[str, list[Actor]] = {
            "news": [await start(counter, total, report) for _ in range(subs)]
        }
        message = (CAST, ("news", 1))
        t_all = timer()
        t0 = timer()
        for _ in range(publishes):
            for actor in topics["news"]:
                actor.queue.put_nowait(message)
        publish_us = (timer() - t0) / publishes * 1e6
        t0 = timer()
        for _ in range(publishes):
            for actor in list(topics["news"]):
                actor.queue.put_nowait(message)
        dispatch_us = (timer() - t0) / publishes * 1e6
        for _ in range(subs):
            await report.get()
        delivered_us = (timer() - t_all) / total * 1e6
        for actor in topics["news"]:
            await stop(actor)
        return {
            "lookup_ns": by_name,
            "publish_us": publish_us,
            "dispatch_us": dispatch_us,
            "delivered_us": delivered_us,
            "subscribers": subs,
        }

    return run_floor(main, uvloop=uvloop)  # type: ignore[no-any-return]


WORKLOADS = {
    "cast": cast_workload,
    "statem": statem_workload,
    "call": call_workload,
    "spawn": spawn_workload,
    "restart": restart_workload,
    "scale": scale_workload,
    "registry": registry_workload,
}
