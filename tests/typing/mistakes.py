"""Deliberate mistakes that ``mypy --strict`` must report (``tests/test_typing.py``).

Every line ending in ``# E: <text>`` must get a mypy error whose message
contains ``<text>``; no other line may get one. The project's own mypy run
excludes this file (pyproject.toml). It is never imported or run. The
formatter leaves it alone (``fmt: off``), so that no mark moves off its line.
"""

# fmt: off

from __future__ import annotations

from typing import Any

from asyncotp import (
    NOREPLY,
    Agent,
    Caller,
    ChildSpec,
    GenServer,
    Node,
    Pid,
    Task,
    TaskSupervisor,
    call,
    from_thread,
    run,
    spawn,
)


class Counter(GenServer[str, int]):
    async def init(self, start: int = 0, *, step: int = 1) -> None:
        self.count = start
        self.step = step

    async def handle_call(self, request: str, caller: Caller) -> int:
        return self.count


async def worker(n: int, label: str = "w") -> None:
    pass


async def double(n: int) -> int:
    return 2 * n


def sync_worker(n: int) -> None:
    pass


async def main_taking(n: int) -> int:
    return n


# -- a server's callbacks against its declared types ---------------------------


class WrongReply(GenServer[str, int]):
    async def handle_call(self, request: str, caller: Caller) -> str:  # E: incompatible with return
        return request


class NarrowerRequest(GenServer[str | bytes, int]):
    async def handle_call(self, request: str, caller: Caller) -> int:  # E: Argument 1 of
        return 0


class ForgotNoReply(GenServer[str, int]):
    async def handle_call(self, request: str, caller: Caller) -> int:
        return NOREPLY  # E: Incompatible return value type


class SyncCallback(GenServer):
    def handle_call(self, request: Any, caller: Caller) -> int:  # E: incompatible with return type
        return 0


class SyncInit(GenServer):
    def init(self) -> None:  # E: incompatible with supertype
        pass


# -- calls, starts, spawns ---------------------------------------------------


def from_another_thread(node: Node, counter: Pid[str, int]) -> None:
    from_thread.call(node, counter, 42)  # E: Cannot infer function type argument
    reply: str = from_thread.call(node, counter, "get")  # E: Incompatible types in assignment
    from_thread.run(node, main_taking, "x")  # E: Argument 2 has incompatible type
    del reply


async def mistakes(counter: Pid[str, int], sup: Pid) -> None:
    await call(counter, 42)  # E: Cannot infer value of type parameter
    text: str = await call(counter, "get")  # E: Argument 1 to "call" has incompatible type
    await Counter.start("five")  # E: No overload variant of "start"
    await Counter.start(1, stp=2)  # E: No overload variant of "start"
    await Counter.start(1, name=7)  # E: No overload variant of "start"
    Counter.child_spec("five")  # E: No overload variant of "child_spec"
    Counter.child_spec(1, restart="permanent")  # E: No overload variant of "child_spec"
    spawn(worker, "one")  # E: Argument 1 to "spawn" has incompatible type
    spawn(worker)  # E: Argument 1 to "spawn" has incompatible type
    spawn(sync_worker, 1)  # E: Argument 1 to "spawn" has incompatible type
    spawn(double(1))  # E: Argument 1 to "spawn" has incompatible type
    Task.start(double, "x")  # E: Argument 1 to "start" of "Task" has incompatible type
    answer: str = await Task.start(double, 1)  # E: expected "Callable[[int], Awaitable[str]]"
    await TaskSupervisor.async_nolink(sup, double, "x")  # E: Argument 2 to "async_nolink"
    await TaskSupervisor.start_child(sup, worker, "one")  # E: Argument 2 to "start_child"
    ChildSpec("counter", Counter)  # E: Argument 2 to "ChildSpec" has incompatible type
    run(main_taking, "x")  # E: Argument 1 to "run" has incompatible type
    hits = await Agent.start(lambda: 0)
    await Agent.update(hits, lambda n: "x")  # E: Cannot infer value of type parameter "S"
    await Agent.get(hits, lambda n: n.upper())  # E: "int" has no attribute "upper"
    await Agent.get(hits, str.upper)  # E: Cannot infer value of type parameter "S"
    await call(hits, "get")  # E: Cannot infer value of type parameter
    del text, answer
