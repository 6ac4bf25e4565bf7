"""A cache that warms up after it has started: handle_continue, idle timeouts,
IGNORE, send_request and asyncotp.sys in one supervision tree.

    python examples/warm_cache.py

The tree (one_for_one):

    shard-0..2   Shard GenServers: each loads its part of the data in
                 handle_continue, so the supervisor starts the next one
                 at once instead of waiting for every load in turn
    metrics      a feature switched off by its configuration: init
                 returns IGNORE, the supervisor keeps it as not running

What happens:

1. The three shards start in a few milliseconds; their slow loads (0.2 s
   each) run concurrently, after ``start`` has returned, and still before
   any request reaches them.
2. A lookup asks all shards at once with ``send_request`` and collects the
   answers with one deadline (``receive_responses``): 0.2 s in all, not
   0.6 s. One shard is stopped first: its answer is a ``NoProcess``, not a
   crash of the lookup.
3. ``asyncotp.sys`` looks inside a shard: its state (with the access token
   hidden by ``format_status``), its statistics, a suspension during which
   requests wait, and a trace of the messages it handles.
4. A shard that nobody asks for 0.3 s drops its entries (an idle timeout:
   ``handle_info(TIMEOUT)``) and says so.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import Any

import asyncotp
from asyncotp import (
    IGNORE,
    TIMEOUT,
    Caller,
    Continue,
    GenServer,
    IdleTimeout,
    Ignore,
    Supervisor,
    call,
    receive_responses,
    send_request,
    terminate_child,
    which_children,
)
from asyncotp import sys as otp_sys

LOAD_SECONDS = 0.2
IDLE_SECONDS = 0.3


def say(text: str) -> None:
    print(text, flush=True)


class Shard(GenServer):
    """Holds the keys of one shard; loads them after start, forgets them
    when nobody asks for a while."""

    async def init(self, number: int, token: str) -> Continue:
        self.number = number
        self.token = token  # a secret: format_status hides it
        self.entries: dict[str, int] = {}
        return Continue("load")  # start returns now; the load comes next

    async def handle_continue(self, arg: str) -> IdleTimeout:
        await asyncio.sleep(LOAD_SECONDS)  # stands for a slow database read
        self.entries = {f"key-{self.number}-{n}": n for n in range(3)}
        return IdleTimeout(IDLE_SECONDS)

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("get", key):
                return IdleTimeout(IDLE_SECONDS, reply=self.entries.get(key))
            case "size":
                return IdleTimeout(IDLE_SECONDS, reply=len(self.entries))
        raise ValueError(f"unknown request {request!r}")

    async def handle_info(self, message: Any) -> None:
        if message is TIMEOUT and self.entries:
            say(f"shard {self.number}: idle for {IDLE_SECONDS} s, dropping its entries")
            self.entries = {}

    def format_status(self, state: Any) -> Any:
        return {**state, "token": "***"}


class Metrics(GenServer):
    """A feature that may be switched off: then it does not start at all."""

    async def init(self, enabled: bool) -> Ignore | None:
        return None if enabled else IGNORE


async def main() -> None:
    began = time.perf_counter()
    sup = await Supervisor.start(
        [Shard.child_spec(n, "s3cret", id=f"shard-{n}", name=f"shard-{n}") for n in range(3)]
        + [Metrics.child_spec(False, id="metrics")]
    )
    started = time.perf_counter() - began
    say(f"1. tree started in {started:.2f} s (loads run after start returned)")
    children = {child.id: child.pid for child in await which_children(sup)}
    say(f"   metrics ignored: pid {children['metrics']}")

    # 2. Ask every shard at once; the first call waits for the loads.
    began = time.perf_counter()
    reqs = [send_request(f"shard-{n}", "size") for n in range(3)]
    sizes = [r.value for r in await receive_responses(reqs, timeout=2.0)]
    say(f"2. sizes {sizes} in {time.perf_counter() - began:.1f} s, all shards at once")
    await terminate_child(sup, "shard-2")
    reqs = [send_request(f"shard-{n}", ("get", f"key-{n}-1")) for n in range(3)]
    for n, response in enumerate(await receive_responses(reqs, timeout=1.0)):
        shown = response.value if response.ok else type(response.error).__name__
        say(f"   shard {n}: {shown}")

    # 3. Look inside shard 0 while it is in use (before it goes idle).
    state = await otp_sys.get_state("shard-0")
    say(f"3. shard 0 state: token {state['token']!r}, {len(state['entries'])} entries")
    await otp_sys.suspend("shard-0")
    waiting = asyncio.ensure_future(call("shard-0", "size"))
    stats = await otp_sys.statistics("shard-0")
    say(f"   suspended: {stats.suspended}, requests waiting: {stats.mailbox_length}")
    await otp_sys.resume("shard-0")
    say(f"   resumed: the waiting call answers {await waiting}")
    logging.basicConfig(stream=sys.stdout, format="   trace: %(message)s")
    logging.getLogger("asyncotp.sys").setLevel(logging.INFO)
    await otp_sys.trace("shard-0", True)
    await call("shard-0", ("get", "key-0-2"))
    await otp_sys.trace("shard-0", False)
    stats = await otp_sys.statistics("shard-0")
    say(f"   shard 0 handled {stats.messages_handled} messages")

    # 4. Nobody asks for a while: the shards drop their entries.
    await asyncio.sleep(IDLE_SECONDS * 2)
    say(f"4. after idling: shard 0 holds {await call('shard-0', 'size')} entries")
    say("done")


if __name__ == "__main__":
    asyncotp.run(main)
