"""Tasks: run functions concurrently as actors, and get their results.

    python examples/tasks.py

The tree (one_for_one):

    tasks      a TaskSupervisor (at most 10 tasks at once)
    crawler    a GenServer that fetches pages in tasks of "tasks" without
               awaiting them: results and failures come to its handle_info

What happens:

1. ``Task.start`` fetches three pages concurrently; ``Task.await_many``
   gathers them in order, in the time of the slowest.
2. A page that fails: with ``TaskSupervisor.async_nolink`` the failure is
   the error ``await`` raises, and the caller carries on.
3. A page that is too slow: ``Task.yield_`` says it is not there yet, and
   ``Task.shutdown`` stops it.
4. The crawler asks for two pages and gets a ``TaskReply`` for the good one
   and a ``Down`` for the bad one, in ``handle_info``, never blocking.
5. ``TaskSupervisor.async_stream`` maps the fetch over an endless stream of
   URLs, 3 at a time: a failing page is reported as ``("exit", reason)``, a
   page that hangs is killed at its 0.3 s timeout and reported as
   ``("exit", "timeout")``, and the stream never pulls more than 3 URLs
   ahead of the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from asyncotp import (
    Down,
    GenServer,
    MonitorRef,
    Supervisor,
    Task,
    TaskReply,
    TaskSupervisor,
    cast,
    demonitor,
    receive,
    run,
    self_pid,
    send,
)

START = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - START:4.2f}s] {text}", flush=True)


class PageError(Exception):
    """The (pretend) web server answered with an error."""


async def fetch(url: str) -> str:
    """Fetch a page (pretend): "slow" pages take a while, "hang" pages never
    answer, "broken" pages fail."""
    if "hang" in url:
        await asyncio.Event().wait()
    await asyncio.sleep(0.2 if "slow" in url else 0.05)
    if "broken" in url:
        raise PageError(f"500 Internal Server Error for {url}")
    return f"<html>{url}</html>"


class Crawler(GenServer):
    """Starts fetches without waiting for them; hears of each in handle_info."""

    async def init(self) -> None:
        self.pending: dict[MonitorRef, str] = {}

    async def handle_cast(self, request: Any) -> None:
        url, reply_to = request
        task = await TaskSupervisor.async_nolink("tasks", fetch, url)
        self.pending[task.ref] = url
        self.reply_to = reply_to

    async def handle_info(self, message: Any) -> None:
        match message:
            case TaskReply(ref, page) if ref in self.pending:
                demonitor(ref, flush=True)  # done with it: no Down will follow
                say(f"  crawler: TaskReply for {self.pending.pop(ref)}: {page!r}")
            case Down(ref, _pid, reason) if ref in self.pending:
                say(f"  crawler: Down for {self.pending.pop(ref)}, it failed: {reason}")
            case _:
                return
        if not self.pending:
            send(self.reply_to, "crawled")


async def main() -> None:
    # The task supervisor's own reports of failed tasks go to the log; the
    # program prints what each caller sees instead.
    logging.getLogger("asyncotp").setLevel(logging.CRITICAL)
    await Supervisor.start(
        [
            TaskSupervisor.child_spec(name="tasks", max_children=10),
            Crawler.child_spec(name="crawler"),
        ]
    )

    say("1. three pages at once with Task.start, gathered with Task.await_many")
    tasks = [Task.start(fetch, url) for url in ("/a", "/slow/b", "/c")]
    pages = await Task.await_many(tasks)
    say(f"  -> {pages} (in the time of the slowest page)")

    say("2. a page that fails, in a task not linked to us")
    task = await TaskSupervisor.async_nolink("tasks", fetch, "/broken")
    try:
        await task
    except PageError as error:
        say(f"  -> await raised {type(error).__name__}: {error}; we carry on")

    say("3. a page that is too slow: yield_, then shutdown")
    slow = Task.start(fetch, "/hang")
    not_yet = await Task.yield_(slow, timeout=0.1)
    say(f"  -> after 0.1 s yield_ gives {not_yet!r}: not finished")
    stopped = await Task.shutdown(slow)
    say(f"  -> shutdown stops it and gives {stopped!r}")

    say("4. a GenServer starts fetches and hears of them in handle_info")
    cast("crawler", ("/d", self_pid()))
    cast("crawler", ("/broken/e", self_pid()))
    await receive(lambda m: m == "crawled", timeout=5.0)

    say("5. async_stream over an endless stream of URLs, 3 at a time")
    pulled = 0

    async def urls() -> AsyncIterator[str]:
        nonlocal pulled
        for n in itertools.count():
            pulled += 1
            yield f"/page/{n}" + ("/broken" if n == 2 else "/hang" if n == 4 else "")

    stream = TaskSupervisor.async_stream(
        "tasks", urls(), fetch, max_concurrency=3, timeout=0.3, on_timeout="kill_task"
    )
    delivered = 0
    async with contextlib.aclosing(stream):
        async for result in stream:
            say(f"  item {delivered}: {_show(result)} (URLs pulled so far: {pulled})")
            delivered += 1
            assert pulled - delivered <= 3  # back-pressure: never more than 3 ahead
            if delivered == 8:
                break
    say(f"  -> stopped after 8 results; {pulled} URLs pulled in all, never more than 3 ahead")
    say("done: every task has ended and the tree stops")


def _show(result: Any) -> str:
    match result:
        case ("ok", page):
            return f"ok {page!r}"
        case ("exit", "timeout"):
            return "exit: timed out, killed"
        case ("exit", reason):
            return f"exit: {type(reason).__name__}"
    return repr(result)


if __name__ == "__main__":
    run(main)
