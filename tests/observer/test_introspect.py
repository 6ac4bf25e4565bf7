"""The core's read-only introspection (``asyncotp._core._introspect``): what
the observer knows of an actor beyond ``process_info``.

Synchronisation is on messages and monitors (``Probe``, ``watch``); nothing
sleeps.
"""

from __future__ import annotations

from typing import Any

import asyncotp
from asyncotp import Caller, GenServer, Pid, Supervisor, call, receive, self_pid, send, spawn
from asyncotp._core import describe, describe_all, supervisor_pids
from asyncotp.testing import Probe
from tests.helpers import watch


class Counter(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "describe yourself":
            return describe(self_pid())
        return request


async def idle_worker() -> None:
    await receive(lambda message: message == "stop")


class Unmeasurable:
    """A message whose ``__sizeof__`` raises."""

    def __sizeof__(self) -> int:
        raise RuntimeError("no size for you")


async def test_describe_tells_supervisors_genservers_and_plain_actors_by_their_behaviour(
    node: asyncotp.Node,
) -> None:
    sup = await Supervisor.start([Counter.child_spec(id="counter", name="counter")], name="root")
    counter = asyncotp.whereis("counter")
    worker = spawn(idle_worker, name="worker")
    assert counter is not None
    facts = {f.pid: f for f in describe_all(node)}
    assert (facts[sup].kind, facts[sup].behaviour) == ("supervisor", "Supervisor")
    assert (facts[counter].kind, facts[counter].behaviour) == ("genserver", "Counter")
    assert (facts[worker].kind, facts[worker].behaviour) == ("actor", "idle_worker")
    assert facts[counter].parent is sup
    assert facts[counter].links == 1
    assert facts[sup].trap_exits is True
    assert supervisor_pids(node) == [sup]
    send(worker, "stop")


async def test_describe_counts_the_mailbox_and_monitors_and_estimates_memory(
    node: asyncotp.Node,
) -> None:
    probe = await Probe.start()
    empty = describe(probe.pid)
    assert empty is not None
    assert empty.mailbox_length == 0
    for n in range(100):
        send(probe.pid, ("payload", n, "x" * 100))
    send(probe.pid, Unmeasurable())  # a failing __sizeof__ is counted as 0, not raised
    full = describe(probe.pid)
    assert full is not None
    assert full.mailbox_length == 101
    assert full.memory > empty.memory + 100 * 100  # the queued messages count
    ended = await watch(probe.pid)  # a monitor held by a helper actor
    watched = describe(probe.pid)
    assert watched is not None
    assert watched.monitored_by == 1
    await probe.stop()
    await ended
    assert describe(probe.pid) is None


async def test_started_at_is_read_on_the_loop_clock_at_spawn(node: asyncotp.Node) -> None:
    loop_time = node.loop.time()
    worker = spawn(idle_worker)
    facts = describe(worker)
    assert facts is not None
    assert loop_time <= facts.started_at <= node.loop.time()
    assert facts.status in ("running", "waiting")
    send(worker, "stop")


async def describing_itself(probe: Pid) -> None:
    send(probe, describe(self_pid()))


async def test_an_actor_that_describes_itself_or_has_not_started_is_named_too(
    node: asyncotp.Node,
) -> None:
    counter = await Counter.start()
    facts = await call(counter, "describe yourself")  # its coroutines are running
    assert (facts.kind, facts.behaviour) == ("genserver", "Counter")
    probe = await Probe.start()
    spawn(describing_itself, probe.pid)
    itself = await probe.expect()
    assert (itself.kind, itself.behaviour) == ("actor", "describing_itself")
    unstarted = spawn(idle_worker)  # not a step run yet
    facts = describe(unstarted)
    assert facts is not None
    assert facts.behaviour == "idle_worker"
    send(unstarted, "stop")
