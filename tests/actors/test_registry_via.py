"""``via`` names: accepted wherever a name is, released when their actor ends,
and refused like a taken local name; any ``NameRegistry`` object works."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asyncotp import (
    Agent,
    CallbackMode,
    GenServer,
    NameRegistry,
    NameTaken,
    Node,
    NoProcess,
    Pid,
    Registry,
    StartError,
    StateMachine,
    Supervisor,
    Via,
    call,
    cast,
    read_timer,
    receive,
    register,
    send,
    send_after,
    spawn,
    stop,
    unregister,
    via,
    whereis,
    which_children,
)
from tests.helpers import wait, watch


class Echo(GenServer):
    async def init(self, tag: str = "echo") -> None:
        self.tag = tag
        self.casts: list[object] = []

    async def handle_call(self, request: Any, caller: Any) -> Any:
        if request == "casts":
            return self.casts
        return (self.tag, request)

    async def handle_cast(self, request: Any) -> None:
        self.casts.append(request)

    async def handle_info(self, message: Any) -> None:
        self.casts.append(("info", message))


class Refuses(GenServer):
    async def init(self) -> None:
        raise RuntimeError("no")


class Names:
    """The smallest NameRegistry: a dict."""

    def __init__(self) -> None:
        self.table: dict[object, Pid] = {}
        self.released: list[object] = []

    def register_name(self, key: object, pid: Pid) -> bool:
        return self.table.setdefault(key, pid) is pid

    def unregister_name(self, key: object) -> None:
        self.released.append(key)
        self.table.pop(key, None)

    def whereis_name(self, key: object) -> Pid | None:
        return self.table.get(key)


async def test_a_server_named_via_a_registry_is_reached_by_call_cast_send_and_stop(
    node: Node,
) -> None:
    await Registry.start("unique", name="rooms")
    pid = await Echo.start("lobby", name=via("rooms", "lobby"))
    name = via("rooms", "lobby")
    assert whereis(name) is pid
    assert await call(name, "hi") == ("lobby", "hi")
    cast(name, "c")
    send(name, "m")
    assert await call(pid, "casts") == ["c", ("info", "m")]
    assert Registry.lookup("rooms", "lobby") == [(pid, None)]
    await stop(name)
    assert whereis(name) is None
    assert Registry.lookup("rooms", "lobby") == []


async def test_via_carries_the_entrys_value(node: Node) -> None:
    await Registry.start("unique", name="rooms")
    pid = await Echo.start(name=via("rooms", "lobby", {"size": 10}))
    assert Registry.lookup("rooms", "lobby") == [(pid, {"size": 10})]


async def test_a_taken_via_name_raises_name_taken_and_leaves_nothing_running(
    node: Node,
) -> None:
    await Registry.start("unique", name="rooms")
    first = await Echo.start(name=via("rooms", "lobby"))
    with pytest.raises(NameTaken, match="already registered") as info:
        await Echo.start(name=via("rooms", "lobby"))
    assert info.value.holder is first
    assert info.value.name == via("rooms", "lobby")
    assert Registry.count("rooms") == 1
    assert len(node.procs) == 2  # the registry and the first server


async def test_a_start_that_fails_in_init_releases_its_via_name(node: Node) -> None:
    await Registry.start("unique", name="rooms")
    with pytest.raises(StartError):
        await Refuses.start(name=via("rooms", "x"))
    assert whereis(via("rooms", "x")) is None
    assert Registry.count("rooms") == 0


async def test_a_timer_to_a_via_name_finds_its_holder_when_it_fires(node: Node) -> None:
    await Registry.start("unique", name="rooms")
    got: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    async def later() -> None:
        got.set_result(await receive())

    timer = send_after(0.0, via("rooms", "later"), "tick")
    spawn(later, name=via("rooms", "later"))  # named after the timer was set
    assert await wait(got) == "tick"
    assert read_timer(timer) is None


async def test_a_via_name_nobody_holds_is_no_process(node: Node) -> None:
    await Registry.start("unique", name="rooms")
    with pytest.raises(NoProcess, match="no actor is registered as Via"):
        await call(via("rooms", "ghost"), "hi")
    with pytest.raises(NoProcess):
        cast(via("rooms", "ghost"), "hi")
    assert whereis(via("no-such-registry", "ghost")) is None


async def test_via_names_need_a_unique_registry(node: Node) -> None:
    await Registry.start("duplicate", name="topics")
    with pytest.raises(ValueError, match="keys='unique'"):
        await Echo.start(name=via("topics", "x"))
    assert Registry.count("topics") == 0


async def test_state_machines_agents_and_plain_actors_take_via_names(node: Node) -> None:
    class Light(StateMachine[str, int]):
        callback_mode = CallbackMode.STATE_FUNCTIONS

        async def init(self) -> tuple[str, int]:
            return "off", 0

        async def state_off(self, event_type: Any, event: Any, data: int) -> Any:
            return None

    await Registry.start("unique", name="names")
    light = await Light.start(name=via("names", "light"))
    agent = await Agent.start(lambda: 41, name=via("names", "agent"))
    assert whereis(via("names", "light")) is light
    assert await Agent.get(via("names", "agent"), lambda n: n + 1) == 42

    async def plain() -> None:
        await receive()

    actor = spawn(plain, name=via("names", "plain"))
    assert whereis(via("names", "plain")) is actor
    ended = await watch(actor)
    send(via("names", "plain"), "go")
    await wait(ended)
    assert whereis(via("names", "plain")) is None
    del agent


async def test_a_supervised_child_named_via_registers_again_after_a_restart(
    node: Node,
) -> None:
    sup = await Supervisor.start(
        [Registry.child_spec("unique", name="rooms"), Echo.child_spec(name=via("rooms", "e"))]
    )
    first = whereis(via("rooms", "e"))
    assert first is not None
    ended = await watch(first)
    cast(first, "x")
    await stop(first, RuntimeError("crash"))
    await wait(ended)
    children = await which_children(sup)
    assert children[1].id == "Echo"
    again = whereis(via("rooms", "e"))
    assert again is children[1].pid
    assert again is not first


async def test_a_supervisor_named_via_takes_the_name_as_its_default_child_id(
    node: Node,
) -> None:
    await Registry.start("unique", name="trees")
    spec = Supervisor.child_spec([], name=via("trees", "inner"))
    assert spec.id == via("trees", "inner")
    root = await Supervisor.start([spec])
    inner = whereis(via("trees", "inner"))
    assert [c.pid for c in await which_children(root)] == [inner]


# -- any NameRegistry ---------------------------------------------------------------


async def test_any_name_registry_object_works_and_is_told_when_the_actor_ends(
    node: Node,
) -> None:
    names = Names()
    assert isinstance(names, NameRegistry)
    pid = await Echo.start(name=Via(names, "w1"))
    assert names.table == {"w1": pid}
    assert await call(Via(names, "w1"), "ping") == ("echo", "ping")
    with pytest.raises(NameTaken):
        await Echo.start(name=Via(names, "w1"))
    await stop(Via(names, "w1"))
    assert names.table == {}
    assert names.released == ["w1"]


async def test_register_and_unregister_take_via_names(node: Node) -> None:
    names = Names()
    pid = await Echo.start()
    register(Via(names, "late"), pid)
    assert whereis(Via(names, "late")) is pid
    unregister(Via(names, "late"))
    assert whereis(Via(names, "late")) is None
    with pytest.raises(NoProcess):
        unregister(Via(names, "late"))


def test_via_refuses_an_object_without_the_registry_methods() -> None:
    with pytest.raises(TypeError, match="lacks register_name, unregister_name, whereis_name"):
        Via(object(), "k")  # type: ignore[arg-type]


def test_via_names_compare_by_registry_and_key() -> None:
    assert via("rooms", "a") == via("rooms", "a", value=1)
    assert via("rooms", "a") != via("rooms", "b")
    assert hash(via("rooms", "a")) == hash(via("rooms", "a"))
    assert repr(via("rooms", "a")) == "Via(Registry('rooms'), 'a')"


async def test_start_refuses_a_name_that_is_neither_str_nor_via(node: Node) -> None:
    with pytest.raises(TypeError, match=r"a non-empty str or a via\(registry, key\) name"):
        await Echo.start(name=3)  # type: ignore[call-overload]
