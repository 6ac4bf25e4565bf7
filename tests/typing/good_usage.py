"""User-style code that must pass ``mypy --strict`` (``tests/test_typing.py``
checks it, and runs ``main`` so that it is real code, not only well typed).

It shows the typed patterns of docs/genserver.md: a server generic in its
request and reply types, a typed client API over it, ``spawn`` and
``Task.start`` checked against the function, ``start`` and ``child_spec``
checked against ``init``; and untyped code that keeps working as before.
"""

from __future__ import annotations

from typing import Any, assert_type

import attrs

from asyncotp import (
    NOREPLY,
    Agent,
    AgentRequest,
    Caller,
    GenServer,
    Node,
    NoReply,
    Pid,
    Supervisor,
    Task,
    TaskSupervisor,
    call,
    cast,
    from_thread,
    receive,
    run,
    self_pid,
    send,
    spawn,
    stop,
    which_children,
)


@attrs.frozen
class Add:
    n: int


@attrs.frozen
class Get:
    pass


CounterRequest = Add | Get


class Counter(GenServer[CounterRequest, int]):
    """Calls are ``CounterRequest``s and every reply is an ``int``."""

    async def init(self, start: int = 0, *, step: int = 1) -> None:
        self.count = start
        self.step = step

    async def handle_call(self, request: CounterRequest, caller: Caller) -> int:
        match request:
            case Add(n):
                self.count += n * self.step
            case Get():
                pass
        return self.count

    async def handle_cast(self, request: object) -> None:
        if request == "reset":
            self.count = 0


class Echo(GenServer[str, str]):
    """Answers later: ``handle_call`` may return ``NOREPLY``."""

    async def handle_call(self, request: str, caller: Caller) -> str | NoReply:
        caller.reply(request.upper())
        return NOREPLY


class Legacy(GenServer):
    """Untyped, as before: requests and replies are ``Any``."""

    async def init(self, *args: Any) -> None:
        self.args = args

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return (request, self.args)


# -- a typed client API: the pattern for typed clients ------------------------


async def start_counter(start: int = 0, *, name: str | None = None) -> Pid[CounterRequest, int]:
    """Callers of this never see the options' untyped form of ``start``."""
    return await Counter.start(start, name=name)


async def add(counter: Pid[CounterRequest, int], n: int) -> int:
    return await call(counter, Add(n))


async def current(counter: Pid[CounterRequest, int]) -> int:
    return await call(counter, Get())


def current_from_a_thread(node: Node, counter: Pid[CounterRequest, int]) -> int:
    """Another thread's call is typed too."""
    return from_thread.call(node, counter, Get())


# -- functions for spawn and tasks -------------------------------------------


async def worker(owner: Pid, n: int, label: str = "w") -> None:
    send(owner, (label, n))


async def double(n: int) -> int:
    return 2 * n


async def greet(name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


async def main() -> None:
    counter = await Counter.start(5)  # init(start=5): checked
    assert_type(counter, Pid[CounterRequest, int])
    stepped = await Counter.start(0, step=10)  # keyword arguments of init: checked
    named = await start_counter(1, name="counter")
    assert await add(counter, 1) == 6
    assert await call(stepped, Add(1)) == 10
    total: int = await current(named)
    assert total == 1
    cast(counter, "reset")  # casts are not typed by the server's Req
    assert await call(counter, Get()) == 0

    echo = await Echo.start()
    shout: str = await call(echo, "hi")
    assert shout == "HI"

    legacy = await Legacy.start(1, 2)
    anything = await call(legacy, object())  # Any
    assert_type(anything, Any)
    assert anything[1] == (1, 2)
    untyped = await call("counter", Get())  # by name: Any
    assert_type(untyped, Any)
    assert untyped == 1

    plain: Pid = counter  # a typed pid is a Pid
    assert plain is counter

    # spawn and Task.start check the arguments against the function.
    me = self_pid()
    spawn(worker, me, 1)
    spawn(worker, me, 2, "named")
    got = {await receive(), await receive()}
    assert got == {("w", 1), ("named", 2)}
    task = Task.start(double, 21)
    assert_type(task, Task[int])
    answer: int = await task
    assert answer == 42
    hello: str = await Task.start(greet, "you")
    assert hello == "hello you!"

    # child_spec checks init's arguments, start checks them too.
    tree = await Supervisor.start(
        [Counter.child_spec(3), Counter.child_spec(4, step=2, id="stepped")],
        name="tree",
    )
    assert len(await which_children(tree)) == 2
    tasks = await TaskSupervisor.start()
    nolink: Task[int] = await TaskSupervisor.async_nolink(tasks, double, 4)
    assert await nolink == 8
    await TaskSupervisor.start_child(tasks, worker, me, 3)
    assert await receive() == ("w", 3)

    # An agent's pid carries its state's type: the functions are checked.
    hits = await Agent.start(lambda: 0)
    assert_type(hits, Pid[AgentRequest[int]])
    await Agent.update(hits, lambda n: n + 1)
    doubled: int = await Agent.get(hits, lambda n: n * 2)
    assert doubled == 2
    assert await Agent.get_and_update(hits, lambda n: (str(n), n + 1)) == "1"
    Agent.cast(hits, lambda n: n - 2)
    assert await Agent.get(hits) == 0

    for pid in (tree, tasks, hits, counter, stepped, named, echo, legacy):
        await stop(pid)


async def plain_actor_main(n: int) -> int:
    """``run`` checks its arguments against ``main`` too."""
    spawned = spawn(double, n)
    assert_type(spawned, Pid)
    return n


if __name__ == "__main__":
    run(main)
    assert run(plain_actor_main, 3) == 3
