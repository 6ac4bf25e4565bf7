"""Nodes in OS processes of their own: a call and a cast across processes,
and links and monitors firing with NOCONNECTION within the heartbeat window
(1 s here) when the other process is killed (SIGKILL) or frozen (SIGSTOP)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncotp
from asyncotp import Down, Exited, Pid, call, cast, receive
from asyncotp.distribution import (
    NOCONNECTION,
    NodeDown,
    NodeUnreachable,
    monitor_node,
    register_global,
    whereis_global,
    whereis_remote,
)
from tests.distribution.helpers import Host, NatsServer, NodeProcess, fast_cluster, hosts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


@pytest.fixture
async def peer_process(nats_server: NatsServer, prefix: str) -> AsyncIterator[NodeProcess]:
    node = NodeProcess("far", nats_server.url, prefix, "global")
    try:
        await node.ready()
        yield node
    finally:
        node.close()


async def test_a_call_and_a_cast_reach_a_node_in_another_process(
    nats_server: NatsServer, prefix: str, peer_process: NodeProcess
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "near") as (near,):

        async def client() -> list[Any]:
            echo = await whereis_remote("far", "echo")
            assert echo is not None
            assert await whereis_global("echo-far") is echo
            assert await call(echo, ("hi", 1)) == ("echo", ("hi", 1))
            cast(echo, "one")
            cast(echo, "two")
            return await call(echo, "seen")

        assert await near.on(client) == ["one", "two"]


async def _watch_then(near: Host, action: Any) -> tuple[list[str], float]:
    """Link, monitor and node-monitor the far echo server from an actor of
    ``near``, run ``action()``, and return what the actor received and how
    long after the action it came."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    got: asyncio.Future[list[str]] = loop.create_future()

    async def watcher() -> None:
        echo = await whereis_remote("far", "echo")
        assert echo is not None
        asyncotp.set_trap_exits(True)
        asyncotp.monitor(echo)
        asyncotp.link(echo)
        monitor_node("far")
        assert await call(echo, "ping") == ("echo", "ping")
        ready.set_result(None)
        messages = [await receive(timeout=10) for _ in range(3)]
        assert all(getattr(m, "reason", NOCONNECTION) is NOCONNECTION for m in messages)
        assert all(isinstance(m, (Down, Exited, NodeDown)) for m in messages)
        got.set_result(sorted(type(m).__name__ for m in messages))

    async def start() -> Pid:
        return asyncotp.spawn(watcher)

    await near.on(start)
    await asyncio.wait_for(ready, 10)
    started = time.monotonic()
    action()
    kinds = await asyncio.wait_for(got, 10)
    return kinds, time.monotonic() - started


async def test_a_killed_node_fires_links_and_monitors_with_noconnection_within_the_window(
    nats_server: NatsServer, prefix: str, peer_process: NodeProcess
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "near") as (near,):
        kinds, took = await _watch_then(near, lambda: peer_process.signal(signal.SIGKILL))
    assert kinds == ["Down", "Exited", "NodeDown"]
    assert took < 2.0


async def test_a_frozen_node_fires_links_and_monitors_with_noconnection_within_the_window(
    nats_server: NatsServer, prefix: str, peer_process: NodeProcess
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "near") as (near,):
        kinds, took = await _watch_then(near, lambda: peer_process.signal(signal.SIGSTOP))
    assert kinds == ["Down", "Exited", "NodeDown"]
    assert took < 2.0


async def test_the_global_name_of_a_killed_node_is_reaped_and_can_be_taken_over(
    nats_server: NatsServer, prefix: str, peer_process: NodeProcess
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "near") as (near,):

        async def take_over() -> bool:
            held = await whereis_global("echo-far")
            assert held is not None
            peer_process.signal(signal.SIGKILL)
            pid = asyncotp.spawn(_idle)
            async with asyncio.timeout(5):
                # the name frees itself once the node is declared lost (1 s)
                while not await register_global("echo-far", pid):  # noqa: ASYNC110 - a remote store
                    await asyncio.sleep(0.05)
            return await whereis_global("echo-far") is pid

        assert await near.on(take_over)


async def _idle() -> None:
    await receive()


async def test_a_call_to_a_killed_node_fails_at_once_with_no_responders(
    nats_server: NatsServer, prefix: str, peer_process: NodeProcess
) -> None:
    # A long window: the node is not declared lost yet when the call goes;
    # NATS answers "no responders" because nobody listens on its subject.
    cluster = fast_cluster(nats_server.url, prefix, heartbeat_interval=5.0, heartbeat_window=30.0)
    async with hosts(cluster, "near") as (near,):

        async def client() -> float:
            echo = await whereis_remote("far", "echo")
            assert echo is not None
            assert await call(echo, "ping") == ("echo", "ping")
            peer_process.signal(signal.SIGKILL)
            await asyncio.to_thread(peer_process.proc.wait, 10)
            await asyncio.sleep(0.2)  # the server notices the closed socket
            started = time.monotonic()
            with pytest.raises(NodeUnreachable, match="no responders"):
                await call(echo, "ping", timeout=20)
            return time.monotonic() - started

        assert await near.on(client) < 1.0
