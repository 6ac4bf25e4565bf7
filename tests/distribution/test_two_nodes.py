"""Two nodes of this process talking over a real NATS server: remote send,
cast, call, stop, links, monitors, node monitoring and the global registry."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import attrs
import nats
import pytest

import asyncotp
from asyncotp import (
    NOPROC,
    Caller,
    Down,
    Exited,
    GenServer,
    NoProcess,
    Pid,
    ServerExited,
    call,
    cast,
    receive,
    send,
)
from asyncotp.distribution import (
    NOCONNECTION,
    NodeUnreachable,
    RemoteError,
    group_members,
    join_group,
    leave_group,
    monitor_node,
    nodes,
    register_global,
    registered_global,
    statistics,
    whereis_global,
    whereis_remote,
    which_groups,
)
from tests.distribution.helpers import NatsServer, fast_cluster, free_port, hosts

pytestmark = pytest.mark.timeout(30)


@attrs.frozen
class Order:
    item: str
    qty: int


class Echo(GenServer):
    async def init(self) -> None:
        self.seen: list[Any] = []

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case "seen":
                return list(self.seen)
            case "crash":
                raise RuntimeError("asked to crash")
            case "refuse":
                caller.fail(ValueError("refused"))
                return asyncotp.NOREPLY
            case "caller":
                return caller.pid
            case _:
                return ("echo", request)

    async def handle_cast(self, request: Any) -> None:
        self.seen.append(request)

    async def handle_info(self, message: Any) -> None:
        self.seen.append(("info", message))


async def start_echo() -> Pid:
    return await Echo.start(name="echo")


async def test_call_and_cast_reach_a_server_on_another_node(
    nats_server: NatsServer, prefix: str
) -> None:
    cluster = fast_cluster(nats_server.url, prefix, types=(Order,))
    async with hosts(cluster, "a", "b") as (a, b):
        await b.on(start_echo)

        async def client() -> Any:
            echo = await whereis_remote("b", "echo")
            assert echo is not None
            assert repr(echo) == f"<Pid {echo.number} 'on b'>"
            assert await call(echo, ("hello", 1, b"\x00", Order("tea", 2))) == (
                "echo",
                ("hello", 1, b"\x00", Order("tea", 2)),
            )
            cast(echo, {"k": [1, 2.5, None]})
            send(echo, frozenset({1}))
            return await call(echo, "seen")

        assert await a.on(client) == [{"k": [1, 2.5, None]}, ("info", frozenset({1}))]


async def test_messages_between_two_actors_keep_their_order(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        await b.on(start_echo)

        async def client() -> list[Any]:
            echo = await whereis_remote("b", "echo")
            assert echo is not None
            for i in range(500):
                cast(echo, i)
                if i % 100 == 0:
                    assert await call(echo, "ping") == ("echo", "ping")
            return await call(echo, "seen")

        assert await a.on(client) == list(range(500))


async def test_remote_call_errors_are_the_local_ones(nats_server: NatsServer, prefix: str) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        await b.on(start_echo)

        async def client() -> None:
            echo = await whereis_remote("b", "echo")
            assert echo is not None
            with pytest.raises(RemoteError) as refused:
                await call(echo, "refuse")
            assert refused.value.type_name.endswith("ValueError")
            with pytest.raises(ServerExited) as crashed:
                await call(echo, "crash")
            assert isinstance(crashed.value.reason, RemoteError)
            with pytest.raises(NoProcess):
                await call(echo, "ping")  # it is dead now
            with pytest.raises(TypeError, match="cannot be sent to another node"):
                cast(echo, object())
            assert await whereis_remote("b", "nobody") is None

        await a.on(client)


async def test_a_remote_caller_is_seen_as_its_pid(nats_server: NatsServer, prefix: str) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        await b.on(start_echo)
        got: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        async def actor() -> None:
            echo = await whereis_remote("b", "echo")
            assert echo is not None
            got.set_result(await call(echo, "caller") is asyncotp.self_pid())

        await a.on(lambda: _spawned(actor))
        assert await asyncio.wait_for(got, 10) is True


async def test_remote_monitor_and_link_fire_with_the_exit_reason(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        await b.on(start_echo)
        got: asyncio.Future[list[object]] = asyncio.get_running_loop().create_future()

        async def watcher() -> None:
            echo = await whereis_remote("b", "echo")
            assert echo is not None
            asyncotp.set_trap_exits(True)
            ref = asyncotp.monitor(echo)
            asyncotp.link(echo)
            assert await call(echo, "ping") == ("echo", "ping")  # link and monitor are in place
            await asyncotp.stop(echo, asyncotp.SHUTDOWN)
            down = await receive(lambda m: isinstance(m, Down), timeout=5)
            exited = await receive(lambda m: isinstance(m, Exited), timeout=5)
            assert down.ref is ref
            assert down.pid is echo
            got.set_result([down.reason, exited.pid is echo, exited.reason])

        await a.on(lambda: _spawned(watcher))
        assert await asyncio.wait_for(got, 10) == [asyncotp.SHUTDOWN, True, asyncotp.SHUTDOWN]


async def _spawned(fn: Any) -> None:
    asyncotp.spawn(fn)


async def test_a_monitor_of_a_dead_remote_actor_fires_noproc_at_once(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        echo_b = await b.on(start_echo)
        got: asyncio.Future[object] = asyncio.get_running_loop().create_future()

        async def watcher() -> None:
            echo = await whereis_remote("b", "echo")
            assert echo is not None
            await asyncotp.stop(echo)
            asyncotp.monitor(echo)
            got.set_result((await receive(timeout=5)).reason)

        await a.on(lambda: _spawned(watcher))
        assert await asyncio.wait_for(got, 10) is NOPROC
        assert echo_b is not None


async def test_a_node_that_leaves_fires_links_and_monitors_with_noconnection(
    nats_server: NatsServer, prefix: str
) -> None:
    cluster = fast_cluster(nats_server.url, prefix)
    async with hosts(cluster, "a") as (a,):
        async with hosts(cluster, "b") as (b,):
            await b.on(start_echo)
            got: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
            linked = asyncio.Event()

            async def watcher() -> None:
                echo = await whereis_remote("b", "echo")
                assert echo is not None
                asyncotp.set_trap_exits(True)
                asyncotp.monitor(echo)
                asyncotp.link(echo)
                monitor_node("b")
                await call(echo, "ping")
                linked.set()
                messages = [await receive(timeout=5) for _ in range(3)]
                got.set_result(sorted(type(m).__name__ for m in messages))
                assert all(getattr(m, "reason", NOCONNECTION) is NOCONNECTION for m in messages)

            await a.on(lambda: _spawned(watcher))
            await linked.wait()
            assert await a.on(_nodes) == ["b"]
            started = time.monotonic()
        # b said goodbye: no need to wait for the heartbeat window
        assert await asyncio.wait_for(got, 5) == ["Down", "Exited", "NodeDown"]
        assert time.monotonic() - started < 1.0
        assert await a.on(_nodes) == []


async def _nodes() -> list[str]:
    return nodes()


async def test_a_call_to_a_node_that_is_gone_fails_at_once(
    nats_server: NatsServer, prefix: str
) -> None:
    cluster = fast_cluster(nats_server.url, prefix, heartbeat_window=20.0, heartbeat_interval=5.0)
    async with hosts(cluster, "a") as (a,):
        async with hosts(cluster, "b") as (b,):
            await b.on(start_echo)
            echo = await a.on(lambda: whereis_remote("b", "echo"))
        assert echo is not None

        async def client() -> float:
            started = time.monotonic()
            with pytest.raises(NodeUnreachable):
                await call(echo, "ping", timeout=10)
            return time.monotonic() - started

        assert await a.on(client) < 0.5


async def test_exactly_one_of_two_racing_nodes_gets_a_global_name(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        pids = [await a.on(start_echo), await b.on(start_echo)]

        async def claim(pid: Pid) -> bool:
            return await register_global("leader", pid)

        wins = await asyncio.gather(a.on(lambda: claim(pids[0])), b.on(lambda: claim(pids[1])))
        assert sorted(wins) == [False, True]
        winner = wins.index(True)
        seen_by_a = await a.on(lambda: whereis_global("leader"))
        seen_by_b = await b.on(lambda: whereis_global("leader"))
        local = seen_by_a if winner == 0 else seen_by_b
        assert local is pids[winner]
        other = seen_by_b if winner == 0 else seen_by_a
        assert other is not None
        assert other.number == pids[winner].number
        assert await a.on(registered_global) == ["leader"]


async def test_a_global_name_is_freed_when_its_actor_exits_and_reaped_when_its_node_goes(
    nats_server: NatsServer, prefix: str
) -> None:
    cluster = fast_cluster(nats_server.url, prefix)
    async with hosts(cluster, "a") as (a,):
        pid = await a.on(start_echo)
        assert await a.on(lambda: register_global("svc", pid))
        await a.on(lambda: asyncotp.stop(pid))
        await a.on(lambda: _gone("svc"))
        async with hosts(cluster, "b") as (b,):
            held = await b.on(start_echo)
            assert await b.on(lambda: register_global("svc", held))
            assert await a.on(lambda: register_global("svc", pid)) is False
        # b left: a reaps its name, and can take it
        await a.on(lambda: _gone("svc"))
        fresh = await a.on(start_echo_unnamed)
        assert await a.on(lambda: register_global("svc", fresh))


async def start_echo_unnamed() -> Pid:
    return await Echo.start()


async def _gone(name: str) -> None:
    async with asyncio.timeout(5):
        while await whereis_global(name) is not None or name in await registered_global():  # noqa: ASYNC110 - polls the remote store
            await asyncio.sleep(0.02)


async def test_a_flood_of_malformed_bytes_is_dropped_counted_and_harmless(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        await b.on(start_echo)
        subject = f"{prefix}.node.b.{await b.on(_incarnation)}"
        garbage = [
            b"",
            b"\xff\xfe",
            b"[1,2",
            b"[]",
            b'{"k":"send"}',
            b'{"k":"send","n":["a","zz"],"to":1,"m":1}',
            b'{"k":"nope","n":["x","00"]}',
            b'{"k":"cast","n":["x","00"],"to":1,"m":{"$o":["os.system",{"a":1}]}}',
            b'{"k":"cast","n":["x","00"],"to":1,"m":' + b"[" * 5000 + b"]" * 5000 + b"}",
            b'{"k":"call","n":["x","00"],"to":1,"m":1,"t":"soon"}',
            b'{"k":"link","n":["x","00"],"f":{"$p":[1,2,3]},"to":1}',
        ]
        bare = await nats.connect(nats_server.url)
        try:
            for _ in range(50):
                for data in garbage:
                    await bare.publish(subject, data)
            await bare.flush()
        finally:
            await bare.close()

        async def malformed() -> int:
            return statistics().malformed

        await _eventually(lambda: b.on(malformed), lambda n: n >= 50 * len(garbage))

        async def still_works() -> Any:
            echo = await whereis_remote("b", "echo")
            assert echo is not None
            return await call(echo, "ping")

        assert await a.on(still_works) == ("echo", "ping")


async def _incarnation() -> str:
    return statistics().incarnation


async def _eventually(get: Any, check: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check(await get()):  # noqa: ASYNC110 - polls another node
            await asyncio.sleep(0.02)


async def test_a_batch_is_handled_message_by_message_and_a_bad_item_is_dropped_alone(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        echo_on_b = await b.on(start_echo)
        echo = await a.on(lambda: whereis_remote("b", "echo"))  # b exports the pid
        assert echo is not None
        subject = f"{prefix}.node.b.{await b.on(_incarnation)}"
        sender = '"n":["a","' + await a.on(_incarnation) + '"]'
        number = echo_on_b.number
        batch = (
            f'[{{"k":"cast","to":{number},"m":"first",{sender}}},'
            f'{{"k":"cast","to":{number},"m":{{"$zz":1}},{sender}}},'
            f"7,"
            f'{{"k":"cast","to":{number},"m":"last",{sender}}}]'
        ).encode()
        before = await b.on(_malformed)
        bare = await nats.connect(nats_server.url)
        try:
            await bare.publish(subject, batch)
            await bare.flush()
        finally:
            await bare.close()
        await _eventually(lambda: a.on(lambda: call(echo, "seen")), lambda seen: "last" in seen)
        assert await a.on(lambda: call(echo, "seen")) == ["first", "last"]
        assert await b.on(_malformed) == before + 2


async def _malformed() -> int:
    return statistics().malformed


async def test_process_groups_span_nodes_and_lose_the_members_that_exit_or_whose_node_goes(
    nats_server: NatsServer, prefix: str
) -> None:
    cluster = fast_cluster(nats_server.url, prefix)
    async with hosts(cluster, "a") as (a,):
        on_a = [await a.on(start_echo_unnamed) for _ in range(2)]
        await a.on(lambda: join_group("workers", on_a[0]))
        await a.on(lambda: join_group("workers", on_a[1]))
        await a.on(lambda: join_group("workers", on_a[0]))  # already a member
        async with hosts(cluster, "b") as (b,):
            on_b = await b.on(start_echo_unnamed)
            await b.on(lambda: join_group("workers", on_b))
            await b.on(lambda: join_group("others", on_b))
            seen_by_a = await a.on(lambda: group_members("workers"))
            assert len(seen_by_a) == 3
            assert set(on_a) <= set(seen_by_a)
            (remote,) = set(seen_by_a) - set(on_a)
            assert remote.number == on_b.number
            assert await a.on(which_groups) == ["others", "workers"]
            # a member that exits leaves
            await a.on(lambda: asyncotp.stop(on_a[1]))
            await _eventually(lambda: a.on(lambda: group_members("workers")), lambda m: len(m) == 2)
            assert await a.on(lambda: leave_group("workers", on_a[0]))
            assert not await a.on(lambda: leave_group("workers", on_a[0]))
        # b left: its members are gone for a at once, and reaped from the store
        assert await a.on(lambda: group_members("workers")) == []
        await _eventually(lambda: a.on(which_groups), lambda groups: groups == [])


async def test_a_second_node_with_a_taken_name_is_refused(
    nats_server: NatsServer, prefix: str
) -> None:
    cluster = fast_cluster(nats_server.url, prefix)
    async with hosts(cluster, "a"):
        with pytest.raises(asyncotp.NameTaken, match="already used by a running node"):
            async with hosts(cluster, "a"):
                pass


async def test_connecting_without_a_nats_server_fails_at_once_saying_what_to_do(
    prefix: str,
) -> None:
    cluster = fast_cluster(f"nats://127.0.0.1:{free_port()}", prefix, connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="start nats-server"):
        async with hosts(cluster, "lonely"):
            pass
    assert time.monotonic() - started < 3.0
