"""The bridge from other threads to a node (public as ``asyncotp.from_thread``).

The runtime's functions run on the node's event-loop thread only: from
another thread they raise ``WrongThreadError``. A thread holds the ``Node``
(``async with asyncotp.node() as node`` gives it; hand it to the thread)
and goes through these functions, which run the operation on the node's
loop (``loop.call_soon_threadsafe``, ``asyncio.run_coroutine_threadsafe``)
and block the thread until it is done: they return its result or raise its
error (``NoProcess``, ``MailboxFull``, ``CallTimeout``, ``ServerExited``...).

The operation runs as a plain task of the node (names resolve on it), not
as an actor: it has no mailbox. Called on the node's own thread, where
waiting would deadlock, they raise ``WrongThreadError``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple, overload

from ._actor import send as _send
from ._context import get_ident
from ._errors import NoNodeError, WrongThreadError
from ._pid import Pid
from ._safe import safe_repr
from ._server import call as _call
from ._server import cast as _cast
from ._state import NO_NODE_HINT, Node, node_var, proc_var
from ._validate import async_entry, check_timeout, is_async_callable
from ._via import Name

T = TypeVar("T")
_Req = TypeVar("_Req")
Ts = TypeVarTuple("Ts")

_POLL = 0.25
"""While a thread waits, how often it checks that the node's loop still runs."""


def _check(node: object, operation: str) -> Node:
    if not isinstance(node, Node):
        raise TypeError(
            f"{operation}: the first argument is the Node (from `async with asyncotp.node() "
            f"as node`), not {safe_repr(node)}"
        )
    if node.thread == get_ident():
        raise WrongThreadError(
            f"{operation} was called on the node's own event-loop thread, where waiting "
            f"would deadlock; call the asyncotp function directly (await it if async)"
        )
    if node.closed:
        raise NoNodeError(f"{operation}: the node has stopped; {NO_NODE_HINT}")
    return node


def _wait(node: Node, future: concurrent.futures.Future[T], operation: str) -> T:
    """The result of ``future``, run on ``node``'s loop; ``NoNodeError`` if
    the loop stops before it runs it."""
    while True:
        done, _ = concurrent.futures.wait([future], timeout=_POLL)
        if done:
            return future.result()
        if node.loop.is_closed() or not node.loop.is_running():
            future.cancel()
            raise NoNodeError(
                f"{operation}: the node's event loop stopped before it ran the operation"
            )


def _in_node(node: Node, fn: Callable[..., T], args: tuple[Any, ...], operation: str) -> T:
    """Run ``fn(*args)`` on ``node``'s loop thread; return its result here."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def step() -> None:
        if not future.set_running_or_notify_cancel():
            return
        # A loop callback runs in its own copy of the context: the thread's
        # context (possibly copied from an actor) stays outside.
        node_var.set(node)
        proc_var.set(None)
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            future.set_exception(exc)
        else:
            future.set_result(result)

    try:
        node.loop.call_soon_threadsafe(step)
    except RuntimeError:  # the loop is closed
        raise NoNodeError(f"{operation}: the node has stopped; {NO_NODE_HINT}") from None
    return _wait(node, future, operation)


async def _as_task(node: Node, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    node_var.set(node)
    proc_var.set(None)
    return await fn(*args)


def _await_in_node(
    node: Node, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], operation: str
) -> T:
    try:
        future = asyncio.run_coroutine_threadsafe(_as_task(node, fn, args), node.loop)
    except RuntimeError:  # the loop is closed
        raise NoNodeError(f"{operation}: the node has stopped; {NO_NODE_HINT}") from None
    return _wait(node, future, operation)


def send(node: Node, dest: Pid | Name, message: object) -> None:
    """``asyncotp.send(dest, message)`` on ``node``, from another thread.

    Returns once the message is in the mailbox; raises what ``send`` raises
    (``NoProcess`` for a name nobody holds, ``MailboxFull``)."""
    _in_node(_check(node, "from_thread.send"), _send, (dest, message), "from_thread.send")


def cast(node: Node, dest: Pid | Name, request: object) -> None:
    """``asyncotp.cast(dest, request)`` on ``node``, from another thread.

    Returns once the request is in the mailbox; raises what ``cast`` raises."""
    _in_node(_check(node, "from_thread.cast"), _cast, (dest, request), "from_thread.cast")


@overload
def call(node: Node, dest: Pid[_Req, T], request: _Req, timeout: float | None = ...) -> T: ...
@overload
def call(node: Node, dest: Name, request: object, timeout: float | None = ...) -> Any: ...
def call(node: Node, dest: Pid | Name, request: object, timeout: float | None = 5.0) -> Any:
    """``await asyncotp.call(dest, request, timeout)`` on ``node``, from
    another thread: blocks the thread until the reply, and returns it or
    raises what ``call`` raises (``CallTimeout``, ``ServerExited``, ...).
    Typed as ``call``: a ``Pid[Req, Rep]`` checks the request and gives a
    ``Rep``."""
    the_node = _check(node, "from_thread.call")
    timeout = check_timeout(timeout, "from_thread.call")
    return _await_in_node(the_node, _call, (dest, request, timeout), "from_thread.call")


def run(node: Node, fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """Run ``await fn(*args)`` in a new task of ``node`` (a plain task, not
    an actor: it may spawn, call, cast, ...) and return its result here, or
    raise its error."""
    the_node = _check(node, "from_thread.run")
    if not is_async_callable(fn):
        async_entry(fn, "fn", where="from_thread.run", usage="an async function")
    return _await_in_node(the_node, fn, args, "from_thread.run")


# The names the core's package exports (``asyncotp._core`` already has a
# ``send``, a ``call``, ...); ``asyncotp.from_thread`` publishes them under
# their own names.
thread_send = send
thread_cast = cast
thread_call = call
thread_run = run
