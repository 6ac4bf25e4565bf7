"""``init`` returning ``IGNORE``: the server does not start, ``start``
returns None, and a supervisor treats the child as OTP's ``ignore``."""

from __future__ import annotations

from typing import Any

import pytest

from asyncotp import (
    IGNORE,
    Caller,
    DynamicSupervisor,
    GenServer,
    Ignore,
    Node,
    Supervisor,
    cast,
    count_children,
    is_alive,
    process_info,
    processes,
    restart_child,
    self_pid,
    start_child,
    whereis,
    which_children,
)
from tests.helpers import in_actor, wait, watch


class Maybe(GenServer):
    """Starts only when asked to; counts its starts in a list the test owns."""

    async def init(self, starts: list[bool], start: bool) -> Ignore | None:
        starts.append(start)
        return None if start else IGNORE

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request

    async def terminate(self, reason: Any) -> None:
        raise AssertionError("an ignored server never runs terminate")


async def test_start_returns_none_and_nothing_keeps_running(node: Node) -> None:
    before = set(processes())
    # Typed Pid (the case of every server that never ignores): see GenServer.start.
    pid: object = await wait(Maybe.start([], False, name="maybe"))
    assert pid is None
    assert set(processes()) == before


async def test_the_name_of_an_ignored_server_is_free_when_start_returns(node: Node) -> None:
    await wait(Maybe.start([], False, name="maybe"))
    assert whereis("maybe") is None
    pid = await wait(Maybe.start([], True, name="maybe"))  # the name can be taken again
    assert whereis("maybe") == pid


async def test_a_linked_starter_is_not_touched_by_an_ignored_server(node: Node) -> None:
    async def starter() -> object:
        pid = await Maybe.start([], False, link=True)
        info = process_info(self_pid())
        assert info is not None
        return pid, info.links

    assert await wait(in_actor(starter)) == (None, frozenset())


async def test_a_supervisor_keeps_an_ignored_child_as_not_running(node: Node) -> None:
    starts: list[bool] = []
    sup = await wait(
        Supervisor.start(
            [
                Maybe.child_spec(starts, False, id="ignored"),
                Maybe.child_spec(starts, True, id="running"),
            ]
        )
    )
    children = {child.id: child.pid for child in await wait(which_children(sup))}
    assert children["ignored"] is None
    running = children["running"]
    assert running is not None
    assert is_alive(running)
    counts = await wait(count_children(sup))
    assert (counts.specs, counts.active) == (2, 1)
    assert starts == [False, True]  # started once each, the ignored one not retried


async def test_restarting_an_ignored_child_asks_init_again(node: Node) -> None:
    starts: list[bool] = []
    sup = await wait(Supervisor.start([Maybe.child_spec(starts, False, id="ignored")]))
    assert await wait(restart_child(sup, "ignored")) is None
    assert starts == [False, False]


async def test_a_dynamic_supervisor_start_child_returns_none_for_an_ignored_child(
    node: Node,
) -> None:
    dsup = await wait(DynamicSupervisor.start())
    assert await wait(start_child(dsup, Maybe.child_spec([], False))) is None
    pid = await wait(start_child(dsup, Maybe.child_spec([], True)))
    assert pid is not None
    counts = await wait(count_children(dsup))
    assert (counts.specs, counts.active) == (1, 1)


async def test_ignore_from_another_callback_crashes_with_a_type_error(node: Node) -> None:
    class Late(GenServer):
        async def handle_cast(self, request: Any) -> Any:
            return IGNORE

    pid = await wait(Late.start())
    ended = await watch(pid)
    cast(pid, "go")
    reason = await wait(ended)
    assert isinstance(reason, TypeError)
    assert "IGNORE only from init" in str(reason)


def test_ignore_has_a_readable_repr() -> None:
    assert repr(IGNORE) == "IGNORE"


@pytest.mark.parametrize("start", [True, False])
async def test_child_spec_start_returns_what_start_returns(node: Node, start: bool) -> None:
    spec = Maybe.child_spec([], start)
    pid = await wait(in_actor(spec.start))
    assert (pid is not None) is start
