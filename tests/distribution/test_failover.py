"""Failover of a globally registered server (``global_child_spec``): one
node holds the name, the others stand by, and a standby takes the name over
when the holder stops, crashes, or its node is killed."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest

import asyncotp
from asyncotp import Caller, GenServer, Pid, Supervisor, call, which_children
from asyncotp.distribution import (
    TAKEN_OVER,
    global_child_spec,
    node_name,
    node_of_pid,
    register_global,
    unregister_global,
    via_global,
    whereis_global,
)
from tests.distribution.helpers import Host, NatsServer, NodeProcess, fast_cluster, hosts, until

pytestmark = pytest.mark.timeout(30)


class Where(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "crash":
            raise RuntimeError("asked to crash")
        return node_name()


async def _holder(host: Host, name: str = "svc", timeout: float = 5.0) -> Pid:
    """The pid holding the global ``name``, as ``host`` sees it, once there is one."""

    async def look() -> Pid:
        async with asyncio.timeout(timeout):
            while (pid := await whereis_global(name)) is None:  # noqa: ASYNC110 - a remote store
                await asyncio.sleep(0.02)
            return pid

    return await host.on(look)


async def _start_supervisor(host: Host, name: str = "svc", **options: Any) -> Pid:
    async def start() -> Pid:
        return await Supervisor.start([global_child_spec(Where, name, **options)])

    return await host.on(start)


async def _status(host: Host, sup: Pid) -> tuple[str, Pid | None]:
    async def ask() -> tuple[str, Pid | None]:
        (child,) = await which_children(sup)
        assert child.pid is not None
        status: tuple[str, Pid | None] = await call(child.pid, "status")
        return status

    return await host.on(ask)


async def test_of_two_standbys_exactly_one_holds_the_name_and_the_other_watches_it(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        sup_a, sup_b = await _start_supervisor(a), await _start_supervisor(b)
        holder = await _holder(a)
        statuses = [await _status(a, sup_a), await _status(b, sup_b)]
        active = [s for s in statuses if s[0] == "active"]
        assert len(active) == 1
        assert await a.on(lambda: call(holder, "where")) == node_of_pid(holder)

        async def standby_follows() -> None:
            async with asyncio.timeout(5):  # it monitors the holder once it has looked it up
                while sorted(s[0] for s in statuses) != ["active", "standby"] or any(
                    s[1] is None for s in statuses
                ):
                    await asyncio.sleep(0.02)
                    statuses[:] = [await _status(a, sup_a), await _status(b, sup_b)]

        await standby_follows()
        (standby,) = [s for s in statuses if s[0] == "standby"]
        assert standby[1] is not None


async def test_a_standby_takes_the_name_over_when_the_holders_supervisor_stops(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        sup_a = await _start_supervisor(a)
        first = await _holder(a)
        assert await a.on(lambda: call(first, "where")) == "a"
        await _start_supervisor(b)
        await a.on(lambda: asyncotp.stop(sup_a))

        async def moved() -> str:
            # (first is a's pid object; b sees its own remote pid for it)
            async with asyncio.timeout(5):
                while (pid := await whereis_global("svc")) is None or node_of_pid(pid) != "b":  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            return str(await call(pid, "where"))

        assert await b.on(moved) == "b"


async def test_a_crashed_holder_is_restarted_and_the_name_is_held_again(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a") as (a,):
        sup = await _start_supervisor(a)
        first = await _holder(a)
        with pytest.raises(asyncotp.ServerExited):
            await a.on(lambda: call(first, "crash"))

        async def again() -> Pid:
            async with asyncio.timeout(5):
                while (pid := await whereis_global("svc")) in (None, first):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert pid is not None
            return pid

        second = await a.on(again)
        assert await a.on(lambda: call(second, "where")) == "a"
        assert (await _status(a, sup))[0] == "active"


async def test_stopping_the_supervisor_stops_the_server_and_frees_the_name(
    nats_server: NatsServer, prefix: str
) -> None:
    async with hosts(fast_cluster(nats_server.url, prefix), "a") as (a,):
        sup = await _start_supervisor(a)
        holder = await _holder(a)
        await a.on(lambda: asyncotp.stop(sup))
        assert not asyncotp.is_alive(holder)

        async def freed() -> None:
            async with asyncio.timeout(5):
                while await whereis_global("svc") is not None:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)

        await a.on(freed)


async def test_a_holder_that_finds_its_name_taken_over_stops_its_server_and_stands_by(
    nats_server: NatsServer, prefix: str
) -> None:
    # What a healed partition looks like to the old holder: the registry
    # says another actor holds the name (a standby that saw this node lost
    # took it over). One server per name again: the old copy stops.
    async with hosts(fast_cluster(nats_server.url, prefix), "a", "b") as (a, b):
        sup_a = await _start_supervisor(a, check_interval=0.05)
        old = await _holder(a)

        async def watch_old() -> Any:
            ref = asyncotp.monitor(old)
            return await asyncotp.receive(
                lambda m: isinstance(m, asyncotp.Down) and m.ref is ref, timeout=5
            )

        async def take_over() -> Pid:
            impostor = await Where.start()
            assert await unregister_global("svc")
            assert await register_global("svc", impostor)
            return impostor

        watching = asyncio.ensure_future(a.on(lambda: _in_actor(watch_old)))
        impostor = await b.on(take_over)
        down = await asyncio.wait_for(watching, 5)
        assert down.reason == TAKEN_OVER
        status, holder = await _status(a, sup_a)
        assert status == "standby"

        async def wrong_call() -> None:
            (child,) = await which_children(sup_a)
            assert child.pid is not None
            with pytest.raises(ValueError, match="takes the call 'status' only"):
                await call(child.pid, "where")
            assert asyncotp.is_alive(child.pid)

        await a.on(wrong_call)
        assert holder is not None
        assert await a.on(lambda: call(holder, "where")) == "b"
        assert await b.on(lambda: whereis_global("svc")) is impostor


async def _in_actor(fn: Any) -> Any:
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def body() -> None:
        try:
            done.set_result(await fn())
        except BaseException as exc:
            done.set_exception(exc)
            raise

    asyncotp.spawn(body)
    return await done


def test_global_child_spec_refuses_a_name_or_link_option_and_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"\['name'\] cannot be given for Where"):
        global_child_spec(Where, "svc", name="local")
    with pytest.raises(TypeError, match=r"\['link'\]"):
        global_child_spec(Where, "svc", link=True)
    with pytest.raises(TypeError, match="must be a GenServer class"):
        global_child_spec(object, "svc")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty str"):
        global_child_spec(Where, "")
    with pytest.raises(ValueError, match="retry_delay"):
        global_child_spec(Where, "svc", retry_delay=-1.0)
    with pytest.raises(ValueError, match="retry_delay must be > 0"):
        global_child_spec(Where, "svc", retry_delay=0.0)
    with pytest.raises(ValueError, match="check_interval"):
        global_child_spec(Where, "svc", check_interval=float("nan"))
    spec = global_child_spec(Where, "svc", restart=asyncotp.Restart.TRANSIENT)
    assert spec.id == "global:svc"
    assert spec.restart is asyncotp.Restart.TRANSIENT


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_killed_holder_node_fails_over_to_the_standby_node_within_the_window(
    nats_server: NatsServer, prefix: str
) -> None:
    first = NodeProcess("a", nats_server.url, prefix, "failover")
    second: NodeProcess | None = None
    try:
        await first.ready()
        async with hosts(fast_cluster(nats_server.url, prefix), "near") as (near,):
            held = await _holder(near)
            assert await near.on(lambda: call(held, "node")) == "a"
            second = NodeProcess("b", nats_server.url, prefix, "failover")  # started after a holds
            await second.ready()
            # b's standby found the name held: it stays with a.
            assert await near.on(lambda: call(held, "node")) == "a"

            async def fail_over() -> tuple[str, float]:
                watch = asyncotp.monitor(held)
                first.signal(signal.SIGKILL)
                killed = time.monotonic()
                await asyncotp.receive(
                    lambda m: isinstance(m, asyncotp.Down) and m.ref is watch, timeout=5
                )
                async with asyncio.timeout(5):
                    while (pid := await whereis_global("svc")) in (None, held):  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
                assert pid is not None
                answer = await call(pid, "node")
                await until(lambda: asyncotp.whereis(via_global("svc")) is pid)
                assert await call(via_global("svc"), "node") == answer
                return str(answer), time.monotonic() - killed

            async def in_an_actor() -> tuple[str, float]:
                done: asyncio.Future[tuple[str, float]] = asyncio.get_running_loop().create_future()

                async def run() -> None:
                    done.set_result(await fail_over())

                asyncotp.spawn(run)
                return await done

            node, took = await near.on(in_an_actor)
        assert node == "b"
        # The window is 1 s (heartbeats every 0.2 s); the standby claims when
        # its monitor fires, the registry takes over the dead node's entry.
        assert took < 3.0
    finally:
        first.close()
        if second is not None:
            second.close()
