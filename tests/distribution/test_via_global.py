"""``via_global(name)``: a global name wherever a name goes. A start
claims it atomically before ``init``; look-ups on every node read that
node's mirror of the registry; the name is freed when its server ends and
vanishes at once when its node is lost."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

import asyncotp
from asyncotp import Caller, GenServer, NameTaken, Pid, call, cast, spawn, stop, whereis
from asyncotp.distribution import (
    NOCONNECTION,
    node_name,
    register_global,
    via_global,
    whereis_global,
)
from tests.distribution.helpers import Host, NatsServer, NodeProcess, fast_cluster, hosts, until

pytestmark = pytest.mark.timeout(30)


class Where(GenServer):
    async def init(self) -> None:
        self.casts: list[Any] = []

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "casts":
            return list(self.casts)
        return node_name()

    async def handle_cast(self, request: Any) -> None:
        self.casts.append(request)


async def _seen(host: Host, name: str, present: bool) -> None:
    """Wait until ``host``'s mirror knows ``name`` (or no longer does), then
    check that it answers what the registry itself says."""

    async def check() -> None:
        await until(lambda: (whereis(via_global(name)) is not None) is present)
        assert whereis(via_global(name)) is await whereis_global(name)

    await host.on(check)


async def test_a_server_started_with_a_via_global_name_is_reached_from_another_node(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        pid = await a.on(lambda: Where.start(name=via_global("svc")))
        assert await a.on(lambda: whereis_global("svc")) is pid
        await _seen(b, "svc", True)

        async def use() -> list[Any]:
            assert await call(via_global("svc"), "where") == "a"
            cast(via_global("svc"), "one")
            cast(via_global("svc"), "two")
            return list(await call(via_global("svc"), "casts"))

        assert await b.on(use) == ["one", "two"]
        await b.on(lambda: stop(via_global("svc")))
        await _seen(a, "svc", False)
        await _seen(b, "svc", False)
        assert await b.on(lambda: whereis_global("svc")) is None


async def test_of_two_nodes_starting_the_same_via_global_name_exactly_one_wins(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):

        async def try_start(host: Host) -> Pid | NameTaken:
            async def start() -> Pid | NameTaken:
                try:
                    return await Where.start(name=via_global("race"))
                except NameTaken as exc:
                    return exc

            return await host.on(start)

        outcomes = await asyncio.gather(try_start(a), try_start(b))
        winners = [o for o in outcomes if isinstance(o, Pid)]
        losers = [o for o in outcomes if isinstance(o, NameTaken)]
        assert len(winners) == 1
        assert len(losers) == 1
        assert "already registered" in str(losers[0])
        winner_host = (a, b)[outcomes.index(winners[0])]
        assert await winner_host.on(lambda: whereis_global("race")) is winners[0]


async def test_a_via_global_name_is_freed_when_its_server_ends_and_can_be_started_again(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        first = await a.on(lambda: Where.start(name=via_global("svc")))
        with pytest.raises(NameTaken):
            await a.on(lambda: Where.start(name=via_global("svc")))
        await a.on(lambda: stop(first))

        async def again() -> Pid:
            async with asyncio.timeout(5):  # the old entry is deleted by a's release
                while True:
                    try:
                        return await Where.start(name=via_global("svc"))
                    except NameTaken:
                        await asyncio.sleep(0.02)

        second = await b.on(again)
        assert await b.on(lambda: call(via_global("svc"), "where")) == "b"
        await _seen(a, "svc", True)
        assert await a.on(lambda: call(via_global("svc"), "where")) == "b"
        assert second is not None


async def test_a_name_registered_with_register_global_is_found_through_via_global(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):

        async def register() -> Pid:
            pid = await Where.start()
            assert await register_global("plain", pid)
            return pid

        pid = await a.on(register)
        await _seen(b, "plain", True)
        assert await b.on(lambda: call(via_global("plain"), "where")) == "a"
        assert pid is not None


async def test_spawn_and_register_refuse_a_via_global_name_and_say_what_to_use(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a") as (a,):

        async def misuse() -> None:
            async def idle() -> None:
                await asyncotp.receive()

            with pytest.raises(TypeError, match="register_global"):
                spawn(idle, name=via_global("x"))
            with pytest.raises(TypeError, match="non-empty str"):
                via_global("")

        await a.on(misuse)
    assert via_global("x") == via_global("x")
    assert via_global("x") != via_global("y")


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_the_via_global_name_of_a_killed_node_vanishes_when_the_node_is_lost(
    nats_server: NatsServer, prefix: str
) -> None:
    far = NodeProcess("far", nats_server.url, prefix, "global")
    try:
        await far.ready()
        async with hosts(fast_cluster(nats_server.url, prefix), "near") as (near,):

            async def watch() -> Any:
                echo = whereis(via_global("echo-far"))
                assert echo is not None
                assert await call(via_global("echo-far"), "hi") == ("echo", "hi")
                ref = asyncotp.monitor(via_global("echo-far"))  # a remote holder
                far.signal(signal.SIGKILL)
                down = await asyncotp.receive(
                    lambda m: isinstance(m, asyncotp.Down) and m.ref is ref, timeout=5
                )
                assert whereis(via_global("echo-far")) is None
                with pytest.raises(asyncotp.NoProcess):
                    await call(via_global("echo-far"), "hi")
                return down.reason

            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

            async def in_an_actor() -> None:
                async def run() -> None:
                    try:
                        done.set_result(await watch())
                    except BaseException as exc:
                        done.set_exception(exc)

                spawn(run)

            await near.on(in_an_actor)
            assert await done is NOCONNECTION
    finally:
        far.close()
