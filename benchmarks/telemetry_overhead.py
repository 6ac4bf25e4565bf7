"""The price of telemetry, measured A/B inside one process.

    python benchmarks/telemetry_overhead.py            # 21 alternations, a JSON line
    python benchmarks/telemetry_overhead.py --rounds 41

``run.py``'s ``cast_telemetry`` and ``call_telemetry`` workloads compare
fresh processes, whose speed on a shared machine varies by tens of percent
from one to the next. Here one process alternates blocks with and without
one counting handler attached (to every runtime event but the slow-callback
one, as a metrics exporter would), on the same server, and reports the
median of the per-round ratios: the drift of the machine cancels out.

It also times the guard that every emission site pays when nothing is
attached (one module attribute read), against the call and the cast it
sits in, and the slow-callback timing (a server started while a handler
listens to ``("asyncotp", "callback", "slow")``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import timeit
from typing import Any

import asyncotp
from asyncotp import Caller, GenServer, call, cast, stop, telemetry

SLOW = ("asyncotp", "callback", "slow")


class Counter(GenServer):
    async def init(self) -> None:
        self.count = 0

    async def handle_cast(self, request: Any) -> None:
        self.count += 1

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return self.count


def counting(event: Any, measurements: Any, metadata: Any, config: list[int]) -> None:
    config[0] += 1


async def casts(server: asyncotp.Pid, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        cast(server, 1)
    await call(server, "sync")
    return time.process_time() - t0


async def calls(server: asyncotp.Pid, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        await call(server, "get")
    return time.process_time() - t0


async def ab(
    server: asyncotp.Pid, events: list[Any], rounds: int, n_cast: int, n_call: int
) -> dict[str, Any]:
    """Alternate blocks without and with one counting handler on ``events``;
    the median (and range) of the per-round cost ratios, minus 1."""
    counts = [0]
    cast_ratios: list[float] = []
    call_ratios: list[float] = []
    plain_call: list[float] = []
    plain_cast: list[float] = []
    for r in range(rounds):
        timings: dict[str, tuple[float, float]] = {}
        for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
            if mode == "on":
                telemetry.attach_many("overhead", events, counting, config=counts)
            try:
                timings[mode] = (await casts(server, n_cast), await calls(server, n_call))
            finally:
                telemetry.detach("overhead")
        cast_ratios.append(timings["on"][0] / timings["off"][0])
        call_ratios.append(timings["on"][1] / timings["off"][1])
        plain_cast.append(timings["off"][0] / n_cast)
        plain_call.append(timings["off"][1] / n_call)
    return {
        "cast_overhead": round(statistics.median(cast_ratios) - 1, 4),
        "call_overhead": round(statistics.median(call_ratios) - 1, 4),
        "call_overhead_quartiles": [
            round(q - 1, 4) for q in statistics.quantiles(call_ratios, n=4)[::2]
        ],
        "plain_cast_us": round(statistics.median(plain_cast) * 1e6, 3),
        "plain_call_us": round(statistics.median(plain_call) * 1e6, 3),
        "events_counted": counts[0],
    }


async def main(rounds: int, n_cast: int, n_call: int) -> dict[str, Any]:
    server = await Counter.start()
    await casts(server, n_cast)  # warm-up
    await calls(server, n_call)
    every = [e for e in telemetry.RUNTIME_EVENTS if e != SLOW]
    stop_only = await ab(server, [("asyncotp", "call", "stop")], rounds, n_cast, n_call)
    all_events = await ab(server, every, rounds, n_cast, n_call)
    # Slow-callback timing: a server started while a handler listens.
    slow_ratios: list[float] = []
    counts = [0]
    for _ in range(rounds):
        telemetry.attach("overhead-slow", SLOW, counting, config=counts)
        try:
            timed = await Counter.start()
        finally:
            telemetry.detach("overhead-slow")
        t_timed = await casts(timed, n_cast)
        t_plain = await casts(server, n_cast)
        slow_ratios.append(t_timed / t_plain)
        await stop(timed)
    await stop(server)
    from asyncotp._core import telemetry as core

    guard_s = min(timeit.repeat("core.CALLS", globals={"core": core}, number=200_000, repeat=7))
    guard_s /= 200_000
    return {
        "rounds": rounds,
        "casts_per_block": n_cast,
        "calls_per_block": n_call,
        "counting_handler_on_call_stop": stop_only,
        "counting_handler_on_every_event": all_events,
        "slow_callback_timing_cast_overhead": round(statistics.median(slow_ratios) - 1, 4),
        "guard_ns": round(guard_s * 1e9, 2),
        "guard_share_of_call": round(guard_s / (all_events["plain_call_us"] / 1e6), 5),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--casts", type=int, default=50_000)
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    result = asyncotp.run(main, args.rounds, args.casts, args.calls)
    json.dump(result, sys.stdout)
    print()
