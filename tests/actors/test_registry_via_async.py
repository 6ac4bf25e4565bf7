"""Via registries with an async ``claim_name`` (a registration that is a
round trip, as for names across nodes): the start handshake awaits the
claim inside the new actor before ``init``; a refusal raises ``NameTaken``
with nothing left running; the name is released when the actor ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asyncotp import GenServer, NameTaken, Node, Pid, StartError, Via, call, spawn, stop, whereis


class Names:
    """A registry whose registration is asynchronous (``claim_name``)."""

    def __init__(self) -> None:
        self.table: dict[object, Pid] = {}
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.inits: list[object] = []

    def register_name(self, key: object, pid: Pid) -> bool:
        raise TypeError("this registry claims names asynchronously: start a server instead")

    async def claim_name(self, key: object, pid: Pid) -> bool:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return self.table.setdefault(key, pid) is pid

    def unregister_name(self, key: object) -> None:
        self.table.pop(key, None)

    def whereis_name(self, key: object) -> Pid | None:
        return self.table.get(key)


class Echo(GenServer):
    async def init(self, names: Names) -> None:
        names.inits.append(names.whereis_name("svc"))

    async def handle_call(self, request: Any, caller: Any) -> Any:
        return ("echo", request)


async def test_the_claim_is_awaited_before_init_and_the_name_reaches_the_server(
    node: Node,
) -> None:
    names = Names()
    pid = await Echo.start(names, name=Via(names, "svc"))
    assert names.inits == [pid]  # init ran with the name already held
    assert whereis(Via(names, "svc")) is pid
    assert await call(Via(names, "svc"), "hi") == ("echo", "hi")
    await stop(pid)
    assert names.table == {}


async def test_a_refused_async_claim_raises_name_taken_and_init_never_runs(node: Node) -> None:
    names = Names()
    first = await Echo.start(names, name=Via(names, "svc"))
    with pytest.raises(NameTaken, match="already registered to") as caught:
        await Echo.start(names, name=Via(names, "svc"))
    assert caught.value.holder is first
    assert names.inits == [first]
    assert whereis(Via(names, "svc")) is first


async def test_an_error_of_the_async_claim_is_raised_from_start_as_is(node: Node) -> None:
    names = Names()
    names.fail = ConnectionError("registry unreachable")
    with pytest.raises(ConnectionError, match="registry unreachable"):
        await Echo.start(names, name=Via(names, "svc"))
    assert names.inits == []


async def test_a_start_timeout_during_the_claim_kills_the_half_started_server(
    node: Node,
) -> None:
    names = Names()
    names.gate.clear()  # the claim never answers
    with pytest.raises(StartError, match="did not finish init within"):
        await Echo.start(names, name=Via(names, "svc"), timeout=0.05)
    assert names.inits == []
    assert names.table == {}


async def test_spawn_with_an_async_only_registry_gets_the_registrys_own_error(
    node: Node,
) -> None:
    names = Names()

    async def idle() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TypeError, match="claims names asynchronously"):
        spawn(idle, name=Via(names, "svc"))
