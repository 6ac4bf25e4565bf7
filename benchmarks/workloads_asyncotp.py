"""The workloads on asyncotp, written the way a user would write them:
``asyncotp.run(main)``, ``GenServer.start``, ``StateMachine.start``,
``cast``, ``call``, ``stop``, ``Supervisor.start``, ``whereis``,
``which_children`` and ``Registry`` (lookups and a publish to many subscribers).

Every workload function takes its parameters and ``uvloop`` and returns a
dict of measurements; ``run.py`` calls it in a fresh process.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tracemalloc
from typing import Any

from _common import Unavailable, gc_objects, gc_seconds, percentile, perf, settled_rss, timer

import asyncotp
from asyncotp import (
    CallEvent,
    EventKind,
    EventType,
    GenServer,
    KeepState,
    Registry,
    Reply,
    StateMachine,
    Transition,
    call,
    cast,
    receive,
    self_pid,
    send,
    stop,
    via,
    whereis,
)

DONE = "done"
CAST = EventType.CAST


class Counter(GenServer):
    """Counts casts; a call answers the count; tells ``report`` at ``quota``."""

    async def init(self, quota: int = 0, report: asyncotp.Pid | None = None) -> None:
        self.count = 0
        self.quota = quota
        self.report = report

    async def handle_cast(self, request: Any) -> None:
        self.count += 1
        if self.count == self.quota:
            send(self.report, DONE)  # type: ignore[arg-type]

    async def handle_call(self, request: Any, caller: asyncotp.Caller) -> Any:
        return self.count


class EventCounter(StateMachine[str, int]):
    """``Counter`` as a state machine: counts cast events in its data (the
    same work, the same quota check); a call answers the count."""

    async def init(self, quota: int = 0, report: asyncotp.Pid | None = None) -> tuple[str, int]:
        self.quota = quota
        self.report = report
        return "counting", 0

    async def handle_event(
        self, event_type: EventKind, event: Any, state: str, data: int
    ) -> Transition[str, int]:
        if event_type is CAST:
            data += 1
            if data == self.quota:
                send(self.report, DONE)  # type: ignore[arg-type]
            return state, data
        assert isinstance(event_type, CallEvent)
        return KeepState(actions=Reply(event_type.caller, data))


class Idle(GenServer):
    """An idle server with nothing but the defaults."""


class Crasher(GenServer):
    """Crashes on any cast; answers calls with "pong"."""

    async def handle_cast(self, request: Any) -> None:
        raise RuntimeError(f"crash requested: {request!r}")

    async def handle_call(self, request: Any, caller: asyncotp.Caller) -> Any:
        return "pong"


def _run(main: Any, *args: Any, uvloop: bool) -> Any:
    options = {"use_uvloop": True} if uvloop else None
    return asyncotp.run(main, *args, backend_options=options)


def cast_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    n = params["n"]

    async def main() -> dict[str, Any]:
        server = await Counter.start()
        request = 1
        g0 = gc_seconds()
        t0 = timer()
        for _ in range(n):
            cast(server, request)
        count = await call(server, "get")
        elapsed = timer() - t0
        gc_time = gc_seconds() - g0
        if count != n:
            raise AssertionError(f"counted {count} casts, sent {n}")
        await stop(server)
        return {"msgs_per_s": n / elapsed, "seconds": elapsed, "gc_seconds": gc_time, "n": n}

    return _run(main, uvloop=uvloop)  # type: ignore[no-any-return]


def statem_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    """StateMachine cast events against GenServer casts, in the same process:
    ``pairs`` bursts of ``n`` casts each, alternating which goes first; the
    medians of each, and their ratio."""
    n = params["n"]
    pairs = params.get("pairs", 3)

    async def burst(cls: Any) -> float:
        server = await cls.start()
        request = 1
        t0 = timer()
        for _ in range(n):
            cast(server, request)
        count = await call(server, "get")
        elapsed = timer() - t0
        if count != n:
            raise AssertionError(f"{cls.__name__} counted {count} casts, sent {n}")
        await stop(server)
        return float(n / elapsed)

    async def main() -> dict[str, Any]:
        rates: dict[Any, list[float]] = {Counter: [], EventCounter: []}
        for i in range(pairs):
            order = (Counter, EventCounter) if i % 2 == 0 else (EventCounter, Counter)
            for cls in order:
                rates[cls].append(await burst(cls))
        genserver = statistics.median(rates[Counter])
        statem = statistics.median(rates[EventCounter])
        return {
            "statem_msgs_per_s": statem,
            "genserver_msgs_per_s": genserver,
            "ratio": statem / genserver,
            "n": n,
        }

    return _run(main, uvloop=uvloop)  # type: ignore[no-any-return]


def call_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    n = params["n"]

    async def main() -> dict[str, Any]:
        server = await Counter.start()
        # Pass 1: the mean, from the total, with no clock read per call.
        t0 = timer()
        for _ in range(n):
            await call(server, "get")
        mean_us = (timer() - t0) / n * 1e6
        # Pass 2: one clock read per call, for the distribution.
        stamps = [0.0] * (n + 1)
        stamps[0] = perf()
        for i in range(1, n + 1):
            await call(server, "get")
            stamps[i] = perf()
        await stop(server)
        lat = sorted((stamps[i] - stamps[i - 1]) * 1e6 for i in range(1, n + 1))
        return {
            "mean_us": mean_us,
            "p50_us": percentile(lat, 50),
            "p99_us": percentile(lat, 99),
            "n": n,
        }

    return _run(main, uvloop=uvloop)  # type: ignore[no-any-return]


def spawn_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    n = params["n"]
    traced_n = params.get("traced", 0)

    async def main() -> dict[str, Any]:
        pids: list[asyncotp.Pid] = []
        pids_append = pids.append
        rss0 = settled_rss()
        objs0 = gc_objects()
        g0 = gc_seconds()
        t0 = timer()
        for _ in range(n):
            pids_append(await Idle.start())
        t1 = timer()
        g1 = gc_seconds()
        rss1 = settled_rss()
        objs1 = gc_objects()
        g2 = gc_seconds()
        t2 = timer()
        for pid in pids:
            await stop(pid)
        t3 = timer()
        g3 = gc_seconds()
        pids.clear()
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
                pids_append(await Idle.start())
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            for pid in pids:
                await stop(pid)
            result["tracemalloc_bytes_per_actor"] = (after - before) / traced_n
        return result

    return _run(main, uvloop=uvloop)  # type: ignore[no-any-return]


def restart_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    crashes = params["n"]
    try:
        from asyncotp import Strategy, Supervisor, which_children
    except ImportError as exc:
        raise Unavailable(f"asyncotp has no supervision yet ({exc})") from exc

    async def main() -> dict[str, Any]:
        sup = await Supervisor.start(
            [Crasher.child_spec(id="crasher", name="crasher")],
            strategy=Strategy.ONE_FOR_ONE,
            max_restarts=10**9,
            max_seconds=1.0,
        )
        sleep = asyncio.sleep

        # Path 1: find the new server through its registered name.
        by_name: list[float] = []
        for i in range(crashes):
            old = whereis("crasher")
            t0 = perf()
            cast(old, i)  # type: ignore[arg-type]
            while True:
                pid = whereis("crasher")
                if pid is None or pid is old:
                    await sleep(0)
                    continue
                reply = await call(pid, "ping")
                break
            by_name.append((perf() - t0) * 1e6)
            assert reply == "pong"

        # Path 2: ask the supervisor for its children (a round trip to it).
        by_children: list[float] = []
        for i in range(crashes):
            old = whereis("crasher")
            t0 = perf()
            cast(old, i)  # type: ignore[arg-type]
            while True:
                children = await which_children(sup)
                pid = children[0].pid
                if pid is None or pid is old:
                    continue
                reply = await call(pid, "ping")
                break
            by_children.append((perf() - t0) * 1e6)
            assert reply == "pong"

        await stop(sup)
        by_name.sort()
        by_children.sort()
        return {
            "name_us": percentile(by_name, 50),
            "name_p99_us": percentile(by_name, 99),
            "which_children_us": percentile(by_children, 50),
            "which_children_p99_us": percentile(by_children, 99),
            "crashes": crashes,
        }

    return _run(main, uvloop=uvloop)  # type: ignore[no-any-return]


def scale_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    k = params["actors"]
    casts = params["casts"]
    quota = max(1, casts // k)
    fan_casts = quota * k

    async def main() -> dict[str, Any]:
        me = self_pid()
        rss0 = settled_rss()
        g0 = gc_seconds()
        t0 = timer()
        pids = [await Counter.start(quota, me) for _ in range(k)]
        start_s = timer() - t0
        start_gc = gc_seconds() - g0
        rss1 = settled_rss()

        # Fan-out: round-robin over every actor; each reports at its quota.
        g0 = gc_seconds()
        t0 = timer()
        for i in range(fan_casts):
            cast(pids[i % k], i)
        for _ in range(k):
            await receive()
        fanout_s = timer() - t0
        fanout_gc = gc_seconds() - g0

        # Hot: every cast to one actor, among k live ones; a call as barrier.
        g0 = gc_seconds()
        target = pids[0]
        t0 = timer()
        for i in range(casts):
            cast(target, i)
        count = await call(target, "get")
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

    return _run(main, uvloop=uvloop)  # type: ignore[no-any-return]


class Subscriber(GenServer):
    """Registers under ``key`` in ``registry`` at init; counts the messages it
    gets and tells ``report`` at ``quota``."""

    async def init(
        self, registry: str, key: str, quota: int = 0, report: asyncotp.Pid | None = None
    ) -> None:
        Registry.register(registry, key)
        self.count = 0
        self.quota = quota
        self.report = report

    async def handle_info(self, message: Any) -> None:
        self.count += 1
        if self.count == self.quota:
            send(self.report, DONE)  # type: ignore[arg-type]


def registry_workload(params: dict[str, Any], uvloop: bool) -> dict[str, Any]:
    """``Registry.lookup`` of a unique key (by the registry's name and by its
    pid) and ``whereis(via(...))``, ns per look-up over ``keys`` owners; then
    ``publishes`` messages to ``subscribers`` actors of one topic: the µs of
    one ``Registry.publish`` (the sends), of one ``dispatch`` that sends, and
    per publish until every subscriber has handled every message."""
    n, keys, subs, publishes = (
        params["n"],
        params["keys"],
        params["subscribers"],
        params["publishes"],
    )

    async def main() -> dict[str, Any]:
        me = self_pid()
        names = await Registry.start("unique", name="names")
        owners = [await Subscriber.start("names", f"k{i}") for i in range(keys)]
        wanted = [f"k{i}" for i in range(keys)]
        lookup = Registry.lookup
        t0 = timer()
        for i in range(n):
            lookup("names", wanted[i % keys])
        by_name = (timer() - t0) / n * 1e9
        t0 = timer()
        for i in range(n):
            lookup(names, wanted[i % keys])
        by_pid = (timer() - t0) / n * 1e9
        vias = [via(names, key) for key in wanted]
        t0 = timer()
        for i in range(n):
            whereis(vias[i % keys])
        via_ns = (timer() - t0) / n * 1e9
        for pid in owners:
            await stop(pid)

        await Registry.start("duplicate", name="topics")
        total = publishes * 2  # publish, then dispatch
        members = [await Subscriber.start("topics", "news", total, me) for _ in range(subs)]
        message = ("news", 1)
        t_all = timer()
        t0 = timer()
        for _ in range(publishes):
            Registry.publish("topics", "news", message)
        publish_us = (timer() - t0) / publishes * 1e6

        def fan_out(entries: list[tuple[asyncotp.Pid, Any]]) -> None:
            for pid, _value in entries:
                send(pid, message)

        t0 = timer()
        for _ in range(publishes):
            Registry.dispatch("topics", "news", fan_out)
        dispatch_us = (timer() - t0) / publishes * 1e6
        for _ in range(subs):
            await receive(lambda m: m == DONE, timeout=60)
        delivered_us = (timer() - t_all) / total * 1e6
        for pid in members:
            await stop(pid)
        return {
            "lookup_ns": by_name,
            "lookup_by_pid_ns": by_pid,
            "whereis_via_ns": via_ns,
            "publish_us": publish_us,
            "dispatch_us": dispatch_us,
            "delivered_us": delivered_us,
            "subscribers": subs,
        }

    return _run(main, uvloop=uvloop)  # type: ignore[no-any-return]


WORKLOADS = {
    "cast": cast_workload,
    "statem": statem_workload,
    "call": call_workload,
    "spawn": spawn_workload,
    "restart": restart_workload,
    "scale": scale_workload,
    "registry": registry_workload,
}
