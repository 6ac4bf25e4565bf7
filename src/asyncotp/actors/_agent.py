"""Agent: an actor that holds a state, built on GenServer."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeAlias, TypeVar, overload

from .._core import (
    Caller,
    ChildSpec,
    Name,
    Pid,
    Restart,
    ShutdownSetting,
    call,
    cast,
    check_timeout,
    safe_repr,
)
from ._genserver import GenServer

S = TypeVar("S")
R = TypeVar("R")


class _Op(enum.Enum):
    GET = "get"
    UPDATE = "update"
    GET_AND_UPDATE = "get_and_update"


def _identity(state: Any) -> Any:
    return state


def _check_fn(fn: object, operation: str) -> None:
    """A function to run on the state is checked where it is given, so that
    a wrong one fails the caller, not the agent."""
    if not callable(fn):
        raise TypeError(f"{operation}: fn must be a callable taking the state, not {safe_repr(fn)}")


AgentRequest: TypeAlias = tuple[_Op, Callable[[S], Any]]
"""What an agent holding an ``S`` is called with, for the type checker:
``Agent.start(lambda: 0)`` returns a ``Pid[AgentRequest[int]]``, and
``Agent.get``, ``update``, ``get_and_update`` and ``cast`` then type their
function's argument as ``int``. A plain ``Pid`` or a name: ``Any``."""


class Agent(GenServer):
    """An actor that holds a state; functions run inside it, one at a time.

    Example::

        counter = await Agent.start(lambda: 0, name="hits")
        await Agent.update(counter, lambda n: n + 1)
        Agent.cast("hits", lambda n: n + 10)
        assert await Agent.get(counter) == 11

    ``initial()`` makes the first state (it may be async). A function that
    raises crashes the agent, like any callback of a GenServer; the caller
    gets ``ServerExited``. A ``fn`` that is not callable, or a bad
    ``timeout``, fails at the call site (``TypeError``, ``ValueError``) and
    never reaches the agent. Keep the functions quick: the agent does nothing
    else while one runs.
    """

    state: Any

    async def init(self, initial: Callable[[], Any]) -> None:
        state = initial()
        if inspect.isawaitable(state):
            state = await state
        self.state = state

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        op, fn = request
        if op is _Op.GET:
            return fn(self.state)
        if op is _Op.UPDATE:
            self.state = fn(self.state)
            return None
        result = fn(self.state)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(
                f"Agent.get_and_update: the function must return (result, new_state), "
                f"not {safe_repr(result)}"
            )
        reply, self.state = result
        return reply

    async def handle_cast(self, request: Any) -> None:
        self.state = request(self.state)

    @overload  # type: ignore[override]  # an agent starts from its initial function
    @classmethod
    async def start(
        cls, initial: Callable[[], Awaitable[S]], name: Name | None = None, **opts: Any
    ) -> Pid[AgentRequest[S]]: ...
    @overload
    @classmethod
    async def start(
        cls, initial: Callable[[], S], name: Name | None = None, **opts: Any
    ) -> Pid[AgentRequest[S]]: ...
    @classmethod
    async def start(
        cls, initial: Callable[[], Any], name: Name | None = None, **opts: Any
    ) -> Pid[AgentRequest[Any]]:
        """Start an agent whose first state is ``initial()``.

        ``opts`` are ``GenServer.start``'s: ``link``, ``mailbox_size``,
        ``overflow``, ``timeout``. Typed: the pid is a
        ``Pid[AgentRequest[S]]``, ``S`` being what ``initial`` returns (or
        what it awaits to), so the functions given to ``get``, ``update``,
        ... are checked against the state's type.
        """
        if not callable(initial):
            raise TypeError(
                "Agent.start: initial must be a callable making the state, "
                f"not {safe_repr(initial)}"
            )
        return await super().start(initial, name=name, **opts)

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        initial: Callable[[], Any],
        id: Hashable | None = None,  # noqa: A002 - the contract's name
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
        **opts: Any,
    ) -> ChildSpec:
        """A child spec for supervisors; ``id`` defaults to ``"Agent"``."""
        return super().child_spec(initial, id=id, restart=restart, shutdown=shutdown, **opts)

    @overload
    @staticmethod
    async def get(
        agent: Pid[AgentRequest[S]], fn: Callable[[S], R] = ..., timeout: float | None = ...
    ) -> R: ...
    @overload
    @staticmethod
    async def get(agent: Name, fn: Callable[[Any], R] = ..., timeout: float | None = ...) -> R: ...
    @staticmethod
    async def get(
        agent: Pid[AgentRequest[Any]] | Name,
        fn: Callable[[Any], R] = _identity,
        timeout: float | None = 5.0,
    ) -> R:
        """``fn(state)``, run inside the agent. ``timeout`` as ``call``'s."""
        _check_fn(fn, "Agent.get")
        timeout = check_timeout(timeout, "Agent.get")
        result: R = await call(agent, (_Op.GET, fn), timeout)
        return result

    @overload
    @staticmethod
    async def update(
        agent: Pid[AgentRequest[S]], fn: Callable[[S], S], timeout: float | None = ...
    ) -> None: ...
    @overload
    @staticmethod
    async def update(
        agent: Name, fn: Callable[[Any], Any], timeout: float | None = ...
    ) -> None: ...
    @staticmethod
    async def update(
        agent: Pid[AgentRequest[Any]] | Name, fn: Callable[[Any], Any], timeout: float | None = 5.0
    ) -> None:
        """Replace the state with ``fn(state)``, and wait until it is done."""
        _check_fn(fn, "Agent.update")
        timeout = check_timeout(timeout, "Agent.update")
        await call(agent, (_Op.UPDATE, fn), timeout)

    @overload
    @staticmethod
    async def get_and_update(
        agent: Pid[AgentRequest[S]], fn: Callable[[S], tuple[R, S]], timeout: float | None = ...
    ) -> R: ...
    @overload
    @staticmethod
    async def get_and_update(
        agent: Name, fn: Callable[[Any], tuple[R, Any]], timeout: float | None = ...
    ) -> R: ...
    @staticmethod
    async def get_and_update(
        agent: Pid[AgentRequest[Any]] | Name,
        fn: Callable[[Any], tuple[R, Any]],
        timeout: float | None = 5.0,
    ) -> R:
        """``fn(state)`` returns ``(result, new_state)``; return ``result``."""
        _check_fn(fn, "Agent.get_and_update")
        timeout = check_timeout(timeout, "Agent.get_and_update")
        result: R = await call(agent, (_Op.GET_AND_UPDATE, fn), timeout)
        return result

    @overload
    @staticmethod
    def cast(agent: Pid[AgentRequest[S]], fn: Callable[[S], S]) -> None: ...
    @overload
    @staticmethod
    def cast(agent: Name, fn: Callable[[Any], Any]) -> None: ...
    @staticmethod
    def cast(agent: Pid[AgentRequest[Any]] | Name, fn: Callable[[Any], Any]) -> None:
        """Replace the state with ``fn(state)``, without waiting."""
        _check_fn(fn, "Agent.cast")
        cast(agent, fn)
