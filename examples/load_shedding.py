"""Load shedding: a front end that answers 429 and 503 instead of collapsing.

    python examples/load_shedding.py

The cast:

    renderer   a SheddingServer: renders a page in 40 ms; at most 4 requests
               wait in its priority queue, and a mailbox of 8 bounds what
               piles up while it renders (Overflow.REJECT)
    front      a GenServer playing the HTTP front end: each request is
               handed to a short-lived helper actor that calls the renderer
               with a deadline and a priority, and turns every refusal into
               an HTTP-style answer; the front itself never waits

What happens: a few calm requests are served. Then a burst of 20 arrives
while the renderer is busy with a slow report: the mailbox refuses what does
not fit (MailboxFull: 503), the queue keeps the most important requests
(customers and health checks outrank anonymous visitors, who get 429), and
requests that waited past their 150 ms deadline are shed unhandled (503).
Every request gets an answer quickly, the renderer never works on a request
nobody waits for, and the service is still up afterwards.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asyncotp import (
    NOREPLY,
    Caller,
    CallTimeout,
    GenServer,
    MailboxFull,
    NoProcess,
    ServerExited,
    call,
    is_alive,
    run,
    spawn,
)
from asyncotp.resilience import (
    Overloaded,
    SheddingServer,
    ShedReason,
    call_with_deadline,
)

PRIORITY = {"health": 9, "customer": 1, "anonymous": 0}
DEADLINE = 0.15  # seconds a page request may wait in the renderer's queue


def clock() -> float:
    return asyncio.get_running_loop().time()


class Renderer(SheddingServer):
    """Renders pages, one at a time, shedding what it cannot do in time."""

    max_queue = 4

    async def handle_request(self, request: Any, caller: Caller) -> Any:
        path = request
        await asyncio.sleep(0.1 if path == "/report" else 0.04)  # the work
        return f"<html>{path}</html>"


class Front(GenServer):
    """The HTTP front end: answers every request, whatever the renderer says."""

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        spawn(respond, request, caller)  # never block the front on the renderer
        return NOREPLY


async def respond(request: tuple[str, str], caller: Caller) -> None:
    """One request's helper: call the renderer and turn the outcome into a status."""
    path, who = request
    try:
        body = await call_with_deadline("renderer", path, DEADLINE, priority=PRIORITY[who])
        answer = ("200 OK", body)
    except Overloaded as exc:
        seconds = 1.0 if exc.retry_after is None else exc.retry_after
        retry = f"Retry-After: {seconds:.2f}s"
        if exc.reason is ShedReason.EXPIRED:
            answer = ("503 Service Unavailable", f"waited {exc.waited * 1000:.0f} ms; {retry}")
        else:  # QUEUE_FULL or EVICTED: too many requests right now
            answer = ("429 Too Many Requests", f"{exc.reason.value}; {retry}")
    except MailboxFull:
        answer = ("503 Service Unavailable", "renderer mailbox full; Retry-After: 1s")
    except CallTimeout:
        answer = ("504 Gateway Timeout", "the renderer took too long")
    except (ServerExited, NoProcess):
        answer = ("502 Bad Gateway", "the renderer is restarting")
    caller.reply(answer)


async def get(front: Any, path: str, who: str, start: float) -> tuple[str, str, str, float]:
    status, detail = await call(front, (path, who))
    return path, who, f"{status:<24} {detail}", (clock() - start) * 1000


def show(phase: str, result: tuple[str, str, str, float]) -> None:
    path, who, answer, ms = result
    print(f"{phase:<6} GET {path:<9} ({who:<9}) -> {answer}  [{ms:5.1f} ms]", flush=True)


async def main() -> None:
    renderer = await Renderer.start(name="renderer", mailbox_size=8)
    front = await Front.start(name="front")

    print("-- calm: one request at a time")
    for i in range(3):
        show("calm", await get(front, f"/page/{i}", "anonymous", clock()))

    print("-- burst: 20 requests while the renderer renders a slow report")
    report = asyncio.ensure_future(get(front, "/report", "customer", clock()))
    await asyncio.sleep(0.01)  # the report is being rendered now
    start = clock()
    who = ["anonymous", "anonymous", "customer", "anonymous", "health"]
    burst = [get(front, f"/page/{i}", who[i % len(who)], start) for i in range(20)]
    results = await asyncio.gather(*burst)
    show("slow", await report)
    for result in results:
        show("burst", result)

    statuses = [answer.split("  ")[0].strip() for _, _, answer, _ in results]
    counts = {status: statuses.count(status) for status in sorted(set(statuses))}
    print("-- the burst's answers: " + ", ".join(f"{n} x {s}" for s, n in counts.items()))
    slowest = max(ms for *_, ms in results)
    print(f"-- every request was answered within {slowest:.0f} ms")
    print(f"-- renderer: {await SheddingServer.statistics(renderer)!r}")

    result = await get(front, "/after", "anonymous", clock())
    show("after", result)
    assert is_alive(renderer)
    assert is_alive(front)
    print("done: the service is still up and answered every request")


if __name__ == "__main__":
    run(main)
