"""The node's lifetime: ``node()`` and ``run()``, and the orderly shutdown.

On exit the node stops every actor in reverse start order, one top-level
supervisor at a time: each gets ``SHUTDOWN`` and a deadline, then ``KILL``.
The shutdown runs shielded, so a cancellation around the node (a
``fail_after`` in a test) still cleans up.

A ``SystemExit`` or ``KeyboardInterrupt`` raised inside an actor does not
escape into the event loop (that would stop it under every other actor):
the node records it and cancels its host task, shuts every actor down in
order (``terminate`` runs), then raises it from ``node()`` and ``run()``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, TypeVarTuple

import anyio

from ._actor import spawn
from ._context import enter_loop, leave_loop, process_of
from ._exits import exit_future, exit_process, kill, request_stop, signal, wait_exit
from ._reasons import KILLED, NORMAL, SHUTDOWN
from ._safe import safe_repr
from ._state import DEAD, Node, Process, node_var
from ._timers import cancel_node_timers
from ._validate import async_entry, check_seconds, is_async_callable

logger = logging.getLogger("asyncotp")

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def order_shutdown(proc: Process, reason: object) -> None:
    """Tell an actor to shut down as its supervisor would."""
    if proc.defers_exits or not proc.trap_exits:
        request_stop(proc, reason)
    else:
        signal(proc, proc.parent or proc.node.pid, reason, from_link=False)


async def _stop_batch(node: Node, batch: list[Process]) -> None:
    if not batch:
        return
    deadline = node.loop.time() + node.shutdown_timeout
    for proc in batch:
        left = max(0.0, deadline - node.loop.time())
        if not await wait_exit(proc, left):
            logger.warning(
                "actor %r did not stop within %.1f s of the node's shutdown; killing it",
                proc.pid,
                node.shutdown_timeout,
                extra={"actor_pid": proc.pid, "actor_name": proc.name},
            )
            kill(proc)
    for proc in batch:
        if not await wait_exit(proc, node.shutdown_timeout):
            logger.error(
                "actor %r survived KILL (it shields itself from cancellation); abandoning it",
                proc.pid,
                extra={"actor_pid": proc.pid, "actor_name": proc.name},
            )
            exit_process(proc, KILLED)


async def shutdown(node: Node) -> None:
    """Stop every actor: reverse start order, supervisors one at a time."""
    node.shutting_down = True
    for _round in range(10):
        if not node.procs:
            break
        batch: list[Process] = []
        for proc in reversed(list(node.procs.values())):
            if proc.state == DEAD:
                continue
            if proc.parent is not None and proc.parent in node.procs:
                continue  # its parent stops it
            if proc.is_supervisor:
                await _stop_batch(node, batch)
                batch = []
                order_shutdown(proc, SHUTDOWN)
                await wait_exit(proc, None)
            else:
                order_shutdown(proc, SHUTDOWN)
                batch.append(proc)
        await _stop_batch(node, batch)
    for proc in list(node.procs.values()):
        kill(proc)
        await wait_exit(proc, node.shutdown_timeout)
        exit_process(proc, KILLED)
    cancel_node_timers(node)
    node.deadlines.close()
    node.closed = True


@contextlib.asynccontextmanager
async def node(*, shutdown_timeout: float = 5.0) -> AsyncIterator[Node]:
    """Run a node inside an existing async program (a web app's lifespan, a test).

    On leaving the block every actor is shut down with ``SHUTDOWN``: top-level
    supervisors one after another in reverse start order, other actors given
    ``shutdown_timeout`` seconds (finite, > 0) before ``KILL``. The shutdown
    runs shielded, so a cancellation around the block still cleans up.

    The ``Node`` it gives is what other threads hold to reach the node
    (``asyncotp.from_thread.send(node, ...)``, ``call``, ``cast``, ``run``).
    If an actor raises ``SystemExit`` or ``KeyboardInterrupt``, the block is
    cancelled, every actor is shut down as above, and the block raises it.
    """
    running = node_var.get()
    if running is not None and not running.closed:
        raise RuntimeError(
            "a node is already running in this task; nest actors inside it instead of "
            "starting a second node"
        )
    timeout = check_seconds(shutdown_timeout, "node", "shutdown_timeout", positive=True)
    assert timeout is not None
    the_node = Node(timeout)
    token = node_var.set(the_node)
    enter_loop(the_node)
    body_error: BaseException | None = None
    try:
        yield the_node
    except BaseException as exc:  # noqa: BLE001 - re-raised below, after the shutdown
        body_error = exc
    try:
        with anyio.CancelScope(shield=True):
            await shutdown(the_node)
    finally:
        node_var.reset(token)
        leave_loop(the_node)
    fatal = the_node.fatal
    if fatal is not None:
        # An actor raised SystemExit or KeyboardInterrupt: it wins over the
        # cancellation the node made to get here (and over any other error).
        host = the_node.host
        if the_node.host_cancelled and host is not None:
            the_node.host_cancelled = False
            host.uncancel()
        raise fatal
    if body_error is not None:
        raise body_error


def run(
    main: Callable[[*Ts], Awaitable[T]],
    *args: *Ts,
    backend: str = "asyncio",
    backend_options: dict[str, Any] | None = None,
) -> T:
    """Start a node, run ``async def main(*args)`` as an actor, return its result.

    When ``main`` returns, every actor still alive is shut down (exit signal
    ``SHUTDOWN``, supervisors in reverse start order), then the node stops.
    If ``main`` raises, the exception propagates from ``run`` after the
    shutdown. ``backend_options={"use_uvloop": True}`` runs on uvloop.
    """
    if backend != "asyncio":
        raise ValueError(
            f"run: asyncotp runs on anyio's asyncio backend (optionally with uvloop via "
            f"backend_options={{'use_uvloop': True}}), not {backend!r}"
        )
    if not is_async_callable(main):
        async_entry(main, "main", where="run", usage="an async function")

    fatal: list[BaseException] = []

    async def entry() -> T:
        try:
            async with node():
                box: list[Any] = []

                async def main_actor() -> None:
                    box.append(await main(*args))

                pid = spawn(main_actor)
                proc = process_of(pid)
                assert proc is not None
                proc.reported = True  # run() raises the error itself
                reason = await exit_future(proc)
        except (SystemExit, KeyboardInterrupt) as exc:
            # Raised by run() itself once the loop has closed: through the
            # loop's main task it would be logged as never retrieved.
            fatal.append(exc)
            return None  # type: ignore[return-value]
        if box:
            return box[0]  # type: ignore[no-any-return]
        if issubclass(type(reason), BaseException):
            raise reason  # type: ignore[misc]
        if reason is NORMAL:
            return None  # type: ignore[return-value]  # main raised Stop()
        raise RuntimeError(f"the main actor ended with reason {safe_repr(reason)}")

    result = anyio.run(entry, backend=backend, backend_options=backend_options)
    if fatal:
        raise fatal[0]
    return result
