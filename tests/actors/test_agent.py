"""Agent: a state held by an actor, read and changed by functions run inside it."""

from __future__ import annotations

import pytest

from asyncotp import (
    Agent,
    ChildSpec,
    NameTaken,
    Node,
    Pid,
    Restart,
    ServerExited,
    StartError,
    call,
    is_alive,
    process_info,
    self_pid,
    whereis,
)
from tests.helpers import in_actor, watch


async def test_start_makes_the_state_with_initial_and_registers_the_name(node: Node) -> None:
    agent = await Agent.start(lambda: {"hits": 0}, name="stats")
    assert whereis("stats") is agent
    assert await Agent.get(agent) == {"hits": 0}
    assert await Agent.get("stats") == {"hits": 0}


async def test_an_async_initial_is_awaited_before_start_returns(node: Node) -> None:
    source = await Agent.start(lambda: ["loaded"])
    made: list[str] = []

    async def initial() -> list[str]:
        state: list[str] = await Agent.get(source, list)  # suspends inside initial
        made.append("made")
        return state

    agent = await Agent.start(initial)
    assert made == ["made"]
    assert await Agent.get(agent) == ["loaded"]


async def test_initial_that_is_not_callable_is_a_type_error(node: Node) -> None:
    with pytest.raises(TypeError, match="initial"):
        await Agent.start(0)  # type: ignore[call-overload]


async def test_initial_raising_gives_start_error_with_the_error_as_cause(node: Node) -> None:
    error = ValueError("cannot load")

    def initial() -> int:
        raise error

    with pytest.raises(StartError) as info:
        await Agent.start(initial, name="broken")
    assert info.value.__cause__ is error
    assert whereis("broken") is None


async def test_start_with_a_taken_name_raises_name_taken(node: Node) -> None:
    first = await Agent.start(lambda: 1, name="one")
    with pytest.raises(NameTaken) as info:
        await Agent.start(lambda: 2, name="one")
    assert info.value.holder is first
    assert await Agent.get("one") == 1


async def test_get_applies_fn_to_the_state_inside_the_agent(node: Node) -> None:
    agent = await Agent.start(lambda: [3, 1, 2])
    assert await Agent.get(agent, sorted) == [1, 2, 3]
    assert await Agent.get(agent, lambda _: self_pid()) is agent  # fn runs in the agent
    assert await Agent.get(agent) == [3, 1, 2]  # get does not change the state


async def test_update_replaces_the_state_and_waits_until_done(node: Node) -> None:
    agent = await Agent.start(lambda: 1)
    await Agent.update(agent, lambda n: n + 41)
    assert await Agent.get(agent) == 42


async def test_get_and_update_returns_the_result_and_keeps_the_new_state(node: Node) -> None:
    agent = await Agent.start(lambda: [1, 2, 3])
    assert await Agent.get_and_update(agent, lambda s: (s[0], s[1:])) == 1
    assert await Agent.get(agent) == [2, 3]


async def test_get_and_update_whose_fn_returns_no_pair_crashes_the_agent_with_type_error(
    node: Node,
) -> None:
    agent = await Agent.start(lambda: 0)
    ended = await watch(agent)
    with pytest.raises(ServerExited) as info:
        await Agent.get_and_update(agent, lambda n: n + 1)  # type: ignore[arg-type, return-value]
    assert isinstance(info.value.reason, TypeError)
    assert "(result, new_state)" in str(info.value.reason)
    assert await ended is info.value.reason


async def test_cast_updates_the_state_without_waiting(node: Node) -> None:
    agent = await Agent.start(lambda: 0, name="counter")
    for _ in range(100):
        Agent.cast(agent, lambda n: n + 1)
    Agent.cast("counter", lambda n: n * 2)
    # Functions run one at a time, in order: the get comes after every cast.
    assert await Agent.get(agent) == 200


async def test_a_raising_function_crashes_the_agent_and_the_caller_gets_server_exited(
    node: Node,
) -> None:
    agent = await Agent.start(lambda: 0)
    ended = await watch(agent)
    with pytest.raises(ServerExited) as info:
        await Agent.get(agent, lambda n: 1 // n)
    assert isinstance(info.value.reason, ZeroDivisionError)
    assert await ended is info.value.reason
    assert not is_alive(agent)


async def test_a_raising_update_crashes_the_agent(node: Node) -> None:
    agent = await Agent.start(dict[str, int])
    ended = await watch(agent)
    with pytest.raises(ServerExited) as info:
        await Agent.update(agent, lambda d: d["missing"])
    assert isinstance(info.value.reason, KeyError)
    assert await ended is info.value.reason


async def test_a_raising_cast_crashes_the_agent(node: Node) -> None:
    agent = await Agent.start(lambda: "text")
    ended = await watch(agent)
    Agent.cast(agent, lambda text: str(int(text)))
    assert isinstance(await ended, ValueError)


async def test_an_agent_answers_plain_calls_only_through_its_api(node: Node) -> None:
    agent = await Agent.start(lambda: 0)
    ended = await watch(agent)
    untyped: Pid = agent  # typed, the call would fail mypy: the agent takes functions
    with pytest.raises(ServerExited):
        await call(untyped, "not an agent request")
    assert isinstance(await ended, Exception)


def test_child_spec_id_defaults_to_agent_and_takes_options() -> None:
    spec = Agent.child_spec(lambda: 0)
    assert isinstance(spec, ChildSpec)
    assert spec.id == "Agent"
    custom = Agent.child_spec(lambda: 0, id="cache", restart=Restart.TEMPORARY, shutdown=2.0)
    assert (custom.id, custom.restart, custom.shutdown) == ("cache", Restart.TEMPORARY, 2.0)


async def test_child_spec_start_starts_a_linked_agent_with_its_options(node: Node) -> None:
    spec = Agent.child_spec(lambda: "state", id="cache", name="cache")

    async def supervisor_like() -> tuple[Pid, Pid, frozenset[Pid]]:
        pid = await spec.start()
        assert isinstance(pid, Pid)  # a start function may also return (pid, info)
        info = process_info(self_pid())
        assert info is not None
        return self_pid(), pid, info.links

    parent, agent, links = await in_actor(supervisor_like)
    assert agent in links
    assert whereis("cache") is agent
    info = process_info(agent)
    assert info is not None
    assert info.parent is parent
    assert await Agent.get("cache") == "state"
