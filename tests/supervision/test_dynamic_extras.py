"""DynamicSupervisor ``extra_arguments`` (Elixir's ``:extra_arguments``) and
start functions that return ``(pid, info)`` (OTP's ``{ok, Pid, Info}``).

Crashes are made through ``call``; the supervisor has handled the exit by
the time the next call to it returns (it handles its messages in order).
"""

from __future__ import annotations

from functools import partial
from typing import Any, cast

import pytest

from asyncotp import (
    Agent,
    Caller,
    ChildSpec,
    DynamicSupervisor,
    GenServer,
    Node,
    Pid,
    ServerExited,
    StartError,
    Supervisor,
    call,
    restart_child,
    start_child,
    terminate_child,
    which_children,
)


class Session(GenServer):
    """A user session that keeps its state in a store shared by the pool:
    the store comes first, from the pool's ``extra_arguments``."""

    async def init(self, store: Pid, user: str, *, greeting: str = "hello") -> None:
        self.store = store
        self.user = user
        self.greeting = greeting
        await Agent.update(store, lambda seen: [*seen, user])

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "crash":
            raise RuntimeError(f"session {self.user} crashed on purpose")
        return (self.greeting, self.user, await Agent.get(self.store, len))


async def test_extra_arguments_go_before_each_childs_own_arguments_at_every_start(
    node: Node,
) -> None:
    store: Pid = await Agent.start(list)
    pool = await DynamicSupervisor.start(extra_arguments=[store], name="sessions")
    # init's first parameter comes from extra_arguments, which a type
    # checker cannot see: child_spec is checked against init's full signature.
    ann = await start_child(pool, Session.child_spec("ann", greeting="hi"))  # type: ignore[call-overload]
    bob = await start_child(pool, Session.child_spec("bob"))  # type: ignore[call-overload]
    assert await call(ann, "ping") == ("hi", "ann", 2)
    assert await call(bob, "ping") == ("hello", "bob", 2)

    with pytest.raises(ServerExited):
        await call(ann, "crash")
    (info,) = [c for c in await which_children(pool) if c.pid not in (None, bob)]
    assert info.pid is not None
    # Restarted with the same extra arguments, still before its own.
    assert await call(info.pid, "ping") == ("hi", "ann", 3)
    assert await Agent.get(store, list) == ["ann", "bob", "ann"]


async def test_extra_arguments_are_passed_to_a_start_function_that_is_not_a_partial(
    node: Node,
) -> None:
    store: Pid = await Agent.start(list)
    seen: list[tuple[object, ...]] = []

    async def start(*args: object) -> Pid:
        seen.append(args)
        return await Session.start(store, "carl", link=True)

    pool = await DynamicSupervisor.start(extra_arguments=("tenant-1", 7))
    await start_child(pool, ChildSpec("carl", start))
    assert seen == [("tenant-1", 7)]


async def test_a_start_function_that_does_not_take_the_extra_arguments_fails_to_start(
    node: Node,
) -> None:
    async def start() -> Pid:
        raise AssertionError("not reached: the extra argument does not fit")

    pool = await DynamicSupervisor.start(extra_arguments=["store"])
    with pytest.raises(
        StartError, match=r"called with the supervisor's 1 extra_arguments.*TypeError"
    ):
        await start_child(pool, ChildSpec("x", start))
    assert await which_children(pool) == []


@pytest.mark.parametrize("bad", ["store", b"x", 3, None])
def test_extra_arguments_must_be_a_list_or_tuple(bad: object) -> None:
    with pytest.raises(TypeError, match="extra_arguments must be a list or tuple"):
        DynamicSupervisor.child_spec(extra_arguments=bad)


async def test_start_refuses_extra_arguments_that_are_not_a_sequence(node: Node) -> None:
    with pytest.raises(TypeError, match=r"DynamicSupervisor\.start: extra_arguments"):
        await DynamicSupervisor.start(extra_arguments="store")


async def test_a_pool_spec_with_extra_arguments_starts_them_under_a_parent(node: Node) -> None:
    store: Pid = await Agent.start(list)
    root = await Supervisor.start(
        [DynamicSupervisor.child_spec(name="pool", extra_arguments=(store,))]
    )
    pid = await start_child("pool", Session.child_spec("dee"))  # type: ignore[call-overload]
    assert await call(pid, "ping") == ("hello", "dee", 1)
    assert [c.id for c in await which_children(root)] == ["pool"]


# -- (pid, info) ----------------------------------------------------------------------


class Listener(GenServer):
    """Binds a port in init: the start function returns (pid, port)."""

    async def init(self, port: int) -> None:
        self.port = port

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "crash":
            raise RuntimeError("listener crashed on purpose")
        return self.port


async def start_listener(port: int) -> tuple[Pid, int]:
    pid = await Listener.start(port, link=True)
    return pid, port


async def test_start_child_returns_the_pid_and_info_pair_a_start_function_returns(
    node: Node,
) -> None:
    sup = await Supervisor.start([])
    pid, port = cast("tuple[Pid, int]", await start_child(sup, listener_spec(8080)))
    assert port == 8080
    assert await call(pid, "port") == 8080
    [info] = await which_children(sup)
    assert info.pid is pid  # which_children shows just the pid

    pool = await DynamicSupervisor.start()
    dpid, dport = cast("tuple[Pid, int]", await start_child(pool, listener_spec(9090)))
    assert dport == 9090
    assert [c.pid for c in await which_children(pool)] == [dpid]


def listener_spec(port: int) -> ChildSpec:
    return ChildSpec(f"listener{port}", partial(start_listener, port))


async def test_a_child_started_with_info_is_restarted_and_restart_child_returns_the_pair(
    node: Node,
) -> None:
    sup = await Supervisor.start([listener_spec(1)])
    [before] = await which_children(sup)
    assert before.pid is not None
    with pytest.raises(ServerExited):
        await call(before.pid, "crash")
    [after] = await which_children(sup)
    assert after.pid is not None
    assert after.pid is not before.pid
    await terminate_child(sup, "listener1")
    again = cast("tuple[Pid, int]", await restart_child(sup, "listener1"))
    assert again[1] == 1
    assert [c.pid for c in await which_children(sup)] == [again[0]]


async def test_a_start_function_returning_anything_else_is_refused_naming_the_child(
    node: Node,
) -> None:
    async def start_triple() -> Any:
        pid = await Listener.start(1, link=True)
        return (pid, "info", "extra")

    sup = await Supervisor.start([])
    with pytest.raises(StartError, match=r"'odd' returned .*a \(pid, info\) pair"):
        await start_child(sup, ChildSpec("odd", start_triple))
