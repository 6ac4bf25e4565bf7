"""Waiting on events, never on sleeps: actor exits, restarts, a settled system.

Every wait is bounded by a ``timeout`` in loop time, so under a
``VirtualClock`` with autojump a wait that can never succeed fails at once in
real time. A failed wait raises ``WaitTimeout``, an ``AssertionError`` (a test
failure, reported as such) that is also a ``TimeoutError``, with a message
that says what was seen instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable

from .._core import (
    NOPROC,
    Node,
    Pid,
    SettleTimeout,
    WaitTimeout,
    calling_pid,
    current_node,
    exit_future,
    is_alive,
    is_waiting,
    live_pids,
    process_info,
    whereis_on,
)
from ..supervision import (
    ChildInfo,
    which_children,
)
from ._clock import current_clock
from ._reports import Report, listen


def _check_timeout(timeout: float, operation: str) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"{operation}: timeout must be seconds > 0, not {timeout!r}")


async def wait_for_exit(pid: Pid, *, timeout: float = 5.0) -> object:
    """Wait until the actor ``pid`` has ended and return its exit reason.

    An actor that has already ended gives ``NOPROC`` (as a monitor would):
    start waiting before the exit can happen, or use ``Probe.monitor``.
    """
    if type(pid) is not Pid:
        raise TypeError(f"wait_for_exit: expected a Pid, not {pid!r}")
    _check_timeout(timeout, "wait_for_exit")
    if not is_alive(pid):
        return NOPROC
    info = process_info(pid)
    try:
        async with asyncio.timeout(timeout):
            return await exit_future(pid)
    except TimeoutError:
        raise WaitTimeout(
            f"{pid!r} did not end within {timeout} s; it is {_describe(pid)} "
            f"(when the wait began: {info.status if info else 'gone'})"
        ) from None


async def wait_for_restart(
    sup: Pid | str, child_id: Hashable, old_pid: Pid | None, *, timeout: float = 5.0
) -> Pid:
    """Wait until supervisor ``sup`` runs child ``child_id`` under a pid other
    than ``old_pid``, and return that pid.

    It returns at once if that is already so (``old_pid=None``: as soon as the
    child runs at all). It listens to the supervisor's ``child_restarted``
    reports and asks ``which_children`` again after each, so it waits out
    backoff delays and retries without polling. ``WaitTimeout`` past
    ``timeout``, or as soon as the supervisor itself ends (it gave up).
    """
    _check_timeout(timeout, "wait_for_restart")
    loop = asyncio.get_running_loop()
    node = current_node()
    sup_pid = sup if type(sup) is Pid else whereis_on(node, str(sup))
    if sup_pid is None:
        raise WaitTimeout(f"wait_for_restart: no supervisor is registered as {sup!r}")
    if not is_alive(sup_pid):
        raise WaitTimeout(f"wait_for_restart: the supervisor {sup_pid!r} is not alive")
    sup_exit = exit_future(sup_pid)
    seen: list[Report] = []
    changed: list[asyncio.Future[None]] = [loop.create_future()]

    def on_report(report: Report, _record: logging.LogRecord) -> None:
        if report.supervisor is sup_pid:
            seen.append(report)
            if report.child_id == child_id and not changed[0].done():
                changed[0].set_result(None)

    last: list[Pid | None] = [None]
    with listen(on_report):
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed[0] = loop.create_future()
                    pid = last[0] = _child_pid(await which_children(sup_pid), child_id, sup_pid)
                    if pid is not None and pid is not old_pid:
                        return pid
                    await asyncio.wait((changed[0], sup_exit), return_when="FIRST_COMPLETED")
                    if sup_exit.done():
                        raise WaitTimeout(
                            f"wait_for_restart: the supervisor {sup_pid!r} ended with reason "
                            f"{sup_exit.result()!r} before it restarted {child_id!r}" + _seen(seen)
                        )
        except WaitTimeout:
            raise
        except TimeoutError:
            now = "not running" if last[0] is None else f"still running as {last[0]!r}"
            raise WaitTimeout(
                f"wait_for_restart: supervisor {sup_pid!r} did not restart child {child_id!r} "
                f"(old pid {old_pid!r}) within {timeout} s; the child is {now}" + _seen(seen)
            ) from None


def _child_pid(children: list[ChildInfo], child_id: Hashable, sup: Pid) -> Pid | None:
    for info in children:
        if info.id == child_id:
            return info.pid
    ids = [info.id for info in children]
    raise WaitTimeout(
        f"wait_for_restart: supervisor {sup!r} has no child {child_id!r}; its children are "
        f"{ids!r} (a temporary child is forgotten when it ends)"
    )


def _seen(reports: list[Report]) -> str:
    if not reports:
        return "; it made no report meanwhile"
    lines = "\n".join(
        f"  {r.event} child_id={r.child_id!r} pid={r.pid!r} reason={r.reason!r}" for r in reports
    )
    return f"; its reports meanwhile:\n{lines}"


def _describe(pid: Pid) -> str:
    info = process_info(pid)
    if info is None:
        return "gone"
    return f"{info.status} with {info.mailbox_length} message(s) in its mailbox"


def busy_actors(node: Node) -> list[Pid]:
    """The actors not blocked on their mailbox (but the calling actor)."""
    me = calling_pid()
    return [pid for pid in live_pids(node) if pid is not me and not is_waiting(pid)]


async def settle(*, timeout: float = 5.0) -> None:
    """Return once every actor of the node waits on its mailbox with
    nothing in it that it could take: the system is at rest.

    Under a ``VirtualClock`` it waits until the loop is idle, and (with
    autojump) lets time jump to the next timer while some actor still waits
    on one; ``timeout`` is then virtual seconds. Without a clock it yields
    to the loop until the condition has held for a few rounds. Tasks that
    are not actors are not looked at. ``SettleTimeout`` names the actors
    that did not come to rest.
    """
    _check_timeout(timeout, "settle")
    node = current_node()
    clock = current_clock()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if clock is not None:
        while True:
            await clock.wait_idle()
            busy = busy_actors(node)
            if not busy:
                return
            nxt = clock.next_timer
            if clock.autojump and nxt is not None and nxt <= deadline:
                await clock.advance(max(0.0, nxt - clock.time()))
                continue
            if not clock.autojump:
                why = (
                    "the loop is idle and virtual time stands still (autojump is off): they "
                    "wait for a timer (advance the clock), for I/O, or for a task that is not "
                    "an actor"
                )
            elif nxt is None:
                why = "the loop is idle with no timer left: they wait for I/O or for a task"
            else:
                why = f"they did not rest within {timeout} virtual seconds"
            raise SettleTimeout(_not_at_rest(busy, why))
    quiet = 0
    while True:
        await asyncio.sleep(0)
        busy = busy_actors(node)
        if busy:
            quiet = 0
            if loop.time() > deadline:
                raise SettleTimeout(_not_at_rest(busy, f"they did not rest within {timeout} s"))
        else:
            quiet += 1
            if quiet >= 3:
                return


def _not_at_rest(busy: list[Pid], why: str) -> str:
    lines = "\n".join(f"  {pid!r}: {_describe(pid)}" for pid in busy)
    return f"settle: {len(busy)} actor(s) are not waiting on their mailbox; {why}:\n{lines}"
