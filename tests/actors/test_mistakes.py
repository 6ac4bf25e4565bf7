"""Errors a forgetful user hits say what to do, where the mistake is made.

A callback written without ``async`` fails the class statement, not the
first message. A class, a sync function, an async generator or a coroutine
object given where an async function is expected (``spawn``, ``Task.start``,
``TaskSupervisor``, ``run``, a child's start function) fail the call that
received it, naming the function and saying what to pass instead.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

import asyncotp
from asyncotp import (
    Caller,
    ChildSpec,
    DynamicSupervisor,
    EventKind,
    GenServer,
    KeepState,
    Pid,
    StartError,
    StateMachine,
    Supervisor,
    Task,
    TaskSupervisor,
    call,
    is_alive,
    processes,
    spawn,
    start_child,
    stop,
)
from asyncotp.actors import CallbackMode


async def idle() -> None:
    await asyncotp.receive()


class Echo(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


class NotAServer:
    """A class that is neither an actor function nor a behaviour."""


# -- callbacks: checked at the class statement --------------------------------


@pytest.mark.parametrize(
    ("callback", "signature"),
    [
        ("init", "async def init(self, ...)"),
        ("handle_call", "async def handle_call(self, request, caller)"),
        ("handle_cast", "async def handle_cast(self, request)"),
        ("handle_info", "async def handle_info(self, message)"),
        ("terminate", "async def terminate(self, reason)"),
    ],
)
def test_a_genserver_callback_without_async_fails_the_class_statement(
    callback: str, signature: str
) -> None:
    def sync(self: object, *args: object) -> None:
        pass

    with pytest.raises(TypeError) as info:
        type("Forgetful", (GenServer,), {callback: sync})
    message = str(info.value)
    assert f"Forgetful.{callback} is not async" in message
    assert signature in message


def test_a_sync_handle_call_written_in_a_class_body_names_the_class() -> None:
    with pytest.raises(TypeError, match=r"Counter\.handle_call is not async.*async def"):

        class Counter(GenServer):
            def handle_call(self, request: Any, caller: Caller) -> Any:
                return request


def test_an_async_generator_callback_is_refused_with_why() -> None:
    with pytest.raises(TypeError, match=r"Streamer\.handle_info is an async generator.*yield"):

        class Streamer(GenServer):
            async def handle_info(self, message: Any) -> Any:
                yield message


def test_a_static_callback_is_refused_with_the_decorator_named() -> None:
    with pytest.raises(TypeError, match=r"Static\.handle_cast is a staticmethod.*decorator"):

        class Static(GenServer):
            @staticmethod
            async def handle_cast(request: Any) -> None:
                pass


def test_async_callbacks_helpers_and_a_sync_start_wrapper_are_accepted() -> None:
    class Fine(GenServer):
        async def handle_call(self, request: Any, caller: Caller) -> Any:
            return self.helper(request)

        def helper(self, value: Any) -> Any:  # not a callback: sync is fine
            return value

    class Child(Fine):  # a subclass of a checked class is checked again, and passes
        async def handle_cast(self, request: Any) -> None:
            pass

    assert issubclass(Child, GenServer)


def test_a_state_machine_with_a_sync_handle_event_fails_the_class_statement() -> None:
    with pytest.raises(TypeError, match=r"Door\.handle_event is not async.*async def handle_event"):

        class Door(StateMachine[str, None]):
            def handle_event(
                self, event_type: EventKind, event: Any, state: str, data: None
            ) -> Any:
                return KeepState()


def test_a_sync_state_function_fails_the_class_statement_but_state_enter_is_no_function() -> None:
    with pytest.raises(TypeError, match=r"Lock\.state_locked is not async"):

        class Lock(StateMachine[str, None]):
            callback_mode = CallbackMode.STATE_FUNCTIONS
            state_enter = True

            async def init(self) -> tuple[str, None]:
                return ("locked", None)

            def state_locked(self, event_type: EventKind, event: Any, data: None) -> Any:
                return KeepState()


# -- functions given to spawn, Task, TaskSupervisor, run ----------------------


async def test_spawn_of_a_genserver_class_says_to_use_its_start(node: asyncotp.Node) -> None:
    with pytest.raises(TypeError) as info:
        spawn(Echo)  # type: ignore[arg-type]
    message = str(info.value)
    assert "spawn: fn must be an async function, not the class Echo" in message
    assert "await Echo.start(...)" in message
    assert "Echo.child_spec(...)" in message


async def test_spawn_of_another_class_says_to_pass_an_async_function(
    node: asyncotp.Node,
) -> None:
    with pytest.raises(TypeError, match=r"not the class NotAServer; pass an `async def` function"):
        spawn(NotAServer)  # type: ignore[arg-type]


async def test_spawn_of_a_sync_function_says_to_define_it_with_async_def(
    node: asyncotp.Node,
) -> None:
    def worker() -> None:
        pass

    with pytest.raises(TypeError, match=r"worker, which is not async; define it with `async def`"):
        spawn(worker)  # type: ignore[arg-type]


async def test_spawn_of_a_coroutine_object_says_to_pass_the_function_and_closes_it(
    node: asyncotp.Node,
) -> None:
    coroutine = idle()
    with pytest.raises(TypeError, match=r"not a coroutine object: pass the function and its"):
        spawn(coroutine)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # no "never awaited"


async def test_spawn_of_an_async_generator_function_says_it_must_return(
    node: asyncotp.Node,
) -> None:
    async def ticks() -> AsyncIterator[int]:
        yield 1

    with pytest.raises(TypeError, match=r"async generator function .*ticks.*does not yield"):
        spawn(ticks)  # type: ignore[arg-type]


async def test_task_start_of_a_class_or_a_coroutine_says_what_to_pass(
    node: asyncotp.Node,
) -> None:
    with pytest.raises(
        TypeError, match=r"Task\.start: fn must be an async function, not the class"
    ):
        Task.start(Echo)  # type: ignore[arg-type]
    coroutine = idle()
    with pytest.raises(TypeError, match=r"Task\.start: fn must be .*not a coroutine object"):
        Task.start(coroutine)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED


async def test_task_supervisor_refuses_a_sync_function_before_starting_anything(
    node: asyncotp.Node,
) -> None:
    def work() -> int:
        return 1

    sup = await TaskSupervisor.start()
    with pytest.raises(TypeError, match=r"TaskSupervisor\.start_child: fn must be an async"):
        await TaskSupervisor.start_child(sup, work)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"TaskSupervisor\.async_nolink: fn must be an async"):
        await TaskSupervisor.async_nolink(sup, work)  # type: ignore[arg-type]
    assert await TaskSupervisor.children(sup) == []
    await stop(sup)


def test_run_of_a_sync_main_says_to_define_it_with_async_def() -> None:
    def main() -> None:
        pass

    with pytest.raises(TypeError, match=r"run: main must be an async function, not .*main"):
        asyncotp.run(main)  # type: ignore[arg-type]


# -- a child's start function -------------------------------------------------


def test_a_class_as_a_child_start_function_says_to_use_start_or_child_spec() -> None:
    with pytest.raises(TypeError) as info:
        ChildSpec("echo", Echo)  # type: ignore[arg-type]
    message = str(info.value)
    assert "ChildSpec.start must be an async callable returning a Pid" in message
    assert "not the class Echo" in message
    assert "Echo.child_spec(...)" in message


def test_a_coroutine_object_as_a_child_start_function_is_refused_and_closed() -> None:
    async def start() -> Pid:
        return spawn(idle)

    coroutine = start()
    with pytest.raises(TypeError, match=r"ChildSpec\.start must be .*not a coroutine object"):
        ChildSpec("c", coroutine)  # type: ignore[arg-type]
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED


async def test_a_sync_child_start_function_fails_the_start_naming_the_child_and_leaves_nothing(
    node: asyncotp.Node,
) -> None:
    started: list[Pid] = []

    def start_worker() -> Pid:  # forgot `async`: returns a pid, not an awaitable
        pid = spawn(idle)
        started.append(pid)
        return pid

    before = processes()
    with pytest.raises(StartError) as info:
        await Supervisor.start([ChildSpec("worker", start_worker)])  # type: ignore[arg-type]
    assert processes() == before  # the actor it started outside the tree was killed
    assert len(started) == 1
    assert not is_alive(started[0])
    cause = info.value.__cause__
    assert isinstance(cause, TypeError)
    message = str(cause)
    assert "the start function of child 'worker'" in message
    assert "start_worker, which is not async" in message
    assert "define it with `async def`" in message


async def test_a_sync_start_function_returning_an_awaitable_is_a_valid_child(
    node: asyncotp.Node,
) -> None:
    sup = await DynamicSupervisor.start()
    pid = await start_child(sup, ChildSpec("echo", lambda: Echo.start(link=True)))
    assert await call(pid, "hi") == "hi"
    pid2 = await start_child(sup, ChildSpec("echo2", partial(Echo.start, link=True)))
    assert await call(pid2, "ho") == "ho"
    await stop(sup)
