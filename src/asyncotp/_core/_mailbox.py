"""Mailboxes: the one delivery path, the overflow policies, and ``receive``.

A mailbox is a ``collections.deque`` plus at most one waiter future. The
waiter exists only while the actor is blocked on an empty (or non-matching)
mailbox, so a burst of messages costs one ``append`` each and the receiver
drains them without going back to the event loop for every one.

``deliver`` is the only way a user message enters a mailbox (``send``,
``cast``, ``call``, timers and the testing kit all use it; ``send`` and
``cast`` inline its unbounded case, which is the append and the wake), and
``deliver_system`` the only way a runtime message does (``Down``,
``Exited``, a behaviour's own tokens). Overflow policies apply to user
messages only: bounds never refuse a system message, and ``DROP_OLDEST``
never evicts one (a bounded ``DROP_OLDEST`` mailbox remembers which queued
messages are system ones; nothing else pays for that).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any, cast

from . import _telemetry
from ._context import calling_process, current_process, task_on
from ._errors import MailboxFull, ReceiveTimeout
from ._state import BUDGET, EXITING, Droppable, Node, Overflow, Process, proc_var
from ._validate import MAX_SECONDS, check_timeout


def deliver(proc: Process, message: object) -> None:
    """Append a user message to ``proc``'s mailbox, applying its bound, and
    wake the actor if it waits. ``MailboxFull`` under ``Overflow.REJECT``."""
    mailbox = proc.mailbox
    if proc.maxlen is not None and len(mailbox) >= proc.maxlen and not _overflow(proc, message):
        return
    mailbox.append(message)
    waiter = proc.waiter
    if waiter is not None:
        proc.waiter = None
        if not waiter.done():
            waiter.set_result(None)


def deliver_system(proc: Process, message: object) -> None:
    """Append a message that bounds never refuse nor evict (``Down``,
    ``Exited``, tokens)."""
    mailbox = proc.mailbox
    mailbox.append(message)
    if proc.maxlen is not None and proc.overflow is Overflow.DROP_OLDEST:
        system = proc.system
        if system is None:
            proc.system = [message]
        else:
            if len(system) >= len(mailbox):  # some were taken since: forget those
                _prune_system(proc)
            system.append(message)
    wake(proc)


def _prune_system(proc: Process) -> None:
    """Forget the system messages that are no longer queued. The list holds
    them alive, so an ``id`` in it cannot belong to another queued message."""
    system = proc.system
    if system:
        queued = {id(m) for m in proc.mailbox}
        system[:] = [m for m in system if id(m) in queued]


def wake(proc: Process) -> None:
    """Resolve the actor's waiter, if it is blocked on its mailbox."""
    waiter = proc.waiter
    if waiter is not None:
        proc.waiter = None
        if not waiter.done():
            waiter.set_result(None)


def _overflow(proc: Process, message: object) -> bool:
    """Apply the overflow policy of a full mailbox; return whether to append
    ``message``."""
    if _telemetry.ANY:
        _telemetry.mailbox_overflow(proc)
    policy = proc.overflow
    if policy is Overflow.REJECT:
        proc.rejected += 1
        droppable = _droppable(message)
        if droppable is not None:
            droppable.dropped(proc)
            return False
        raise MailboxFull(
            f"the mailbox of {proc.pid!r} is full (mailbox_size={proc.maxlen}) and refuses "
            "more (Overflow.REJECT); slow down, retry later, or give it a larger "
            "mailbox_size",
            proc.pid,
        )
    proc.dropped += 1
    if policy is Overflow.DROP_OLDEST:
        mailbox = proc.mailbox
        if not proc.system:
            old = mailbox.popleft()
        else:
            _prune_system(proc)
            protected = {id(m) for m in proc.system}
            for index, old in enumerate(mailbox):
                if id(old) not in protected:
                    del mailbox[index]
                    break
            else:  # only system messages are queued: the new message goes instead
                droppable = _droppable(message)
                if droppable is not None:
                    droppable.dropped(proc)
                return False
        proc.evicted += 1
        droppable = _droppable(old)
        if droppable is not None:
            droppable.dropped(proc)
        return True
    droppable = _droppable(message)  # DROP_NEWEST
    if droppable is not None:
        droppable.dropped(proc)
    return False


def _droppable(message: object) -> Droppable | None:
    """``message`` if it is a ``Droppable``, judged by its type (a user
    object's ``__class__``, which ``isinstance`` would ask, may raise)."""
    return cast(Droppable, message) if issubclass(type(message), Droppable) else None


def intercepted(node: Node, proc: Process, message: object) -> bool:
    """Whether the node's interceptor took ``message`` (testing only)."""
    assert node.intercept is not None
    sender = calling_process()
    return not node.intercept(sender.pid if sender is not None else None, proc.pid, message)


def drop_messages(proc: Process, match: Callable[[Any], bool]) -> int:
    """Remove every message of ``proc``'s mailbox that ``match`` accepts;
    return how many went."""
    mailbox = proc.mailbox
    kept = [m for m in mailbox if not match(m)]
    removed = len(mailbox) - len(kept)
    if removed:
        mailbox.clear()
        mailbox.extend(kept)
    return removed


def _timeout_wake(proc: Process, expired: list[bool]) -> None:
    # Record the expiry even when the actor is not parked on its waiter (a
    # non-matching message woke it just before): it must still time out.
    expired.append(True)
    wake(proc)


async def receive(match: Callable[[Any], bool] | None = None, timeout: float | None = None) -> Any:
    """Take the oldest message of the calling actor's mailbox that ``match``
    accepts (any message when ``match`` is None).

    Messages that do not match stay where they are, in order. Past
    ``timeout`` seconds, ``ReceiveTimeout``; ``timeout=0`` takes a message that
    is already there or raises at once; None or ``math.inf`` wait without
    limit.

    Only the actor's own task may receive: in a plain task, and in a task
    that an actor started (which inherits the actor's context, not its
    identity), ``receive`` raises ``NotAnActorError``, so such a task can
    never take the actor's messages. A killed actor that swallowed the
    cancellation is cancelled again at its next ``receive`` that waits.
    """
    proc = proc_var.get()
    if proc is not None and match is None and timeout is None:
        mailbox = proc.mailbox
        # The fast path: a message is there and this task is the actor.
        if mailbox and proc.task is task_on(proc.node.loop):
            budget = proc.budget
            if budget < BUDGET:
                proc.budget = budget + 1
                return mailbox.popleft()
            proc.budget = 0
            await asyncio.sleep(0)
            if proc.killed or (proc.state >= EXITING and not proc.defers_exits):
                raise asyncio.CancelledError  # it was ended, and swallowed the cancellation
            return mailbox.popleft()
    proc = current_process("receive")  # NotAnActorError / WrongThreadError
    if timeout is not None and (type(timeout) is not float or not 0.0 <= timeout <= MAX_SECONDS):
        timeout = check_timeout(timeout, "receive")
    return await _receive_slow(proc, match, timeout)


async def _receive_slow(
    proc: Process, match: Callable[[Any], bool] | None, timeout: float | None
) -> Any:
    mailbox = proc.mailbox
    loop = proc.node.loop
    start = 0
    evicted = proc.evicted
    handle: asyncio.TimerHandle | None = None
    expired: list[bool] | None = None  # made with the timer, which appends to it on firing
    try:
        while True:
            if proc.killed or (proc.state >= EXITING and not proc.defers_exits):
                raise asyncio.CancelledError  # it was ended, and swallowed the cancellation
            if match is None:
                if mailbox:
                    return mailbox.popleft()
            else:
                if proc.evicted != evicted:
                    evicted = proc.evicted
                    start = 0
                index = start
                # Only the messages not yet looked at (a copy: ``match`` may
                # send to this very mailbox).
                for message in list(itertools.islice(mailbox, start, None)):
                    if match(message):
                        del mailbox[index]
                        return message
                    index += 1
                start = len(mailbox)
            if timeout is not None:
                if handle is None:
                    if timeout <= 0:
                        raise ReceiveTimeout(f"{proc.pid!r}: no matching message (timeout=0)")
                    expired = []
                    handle = loop.call_later(timeout, _timeout_wake, proc, expired)
                elif expired:
                    raise ReceiveTimeout(
                        f"{proc.pid!r}: no matching message arrived within {timeout} s"
                    )
            proc.budget = 0
            waiter = loop.create_future()
            proc.waiter = waiter
            try:
                await waiter
            finally:
                if proc.waiter is waiter:
                    proc.waiter = None
    finally:
        if handle is not None:
            handle.cancel()
