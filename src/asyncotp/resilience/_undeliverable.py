"""Undeliverable messages: seeing what was sent to actors no longer alive.

Messages sent to actors that are no longer alive are "undeliverable" and
dropped silently, as in Erlang. ``observe_undeliverable(dest)`` opts in to
seeing them: each one is forwarded to ``dest`` (a ``DeadLetterQueue``, which
counts and records them, or any actor) as an ``Undeliverable``.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .._core import (
    MailboxFull,
    Node,
    NoNodeError,
    NoProcess,
    Pid,
    current_node,
    dead_letter_hook,
    is_alive,
    now,
    send,
    set_dead_letter_hook,
    validate,
    whereis,
)


@attrs.frozen
class Undeliverable:
    """A message that was sent to an actor no longer alive.

    ``pid`` is the dead destination, ``message`` what was sent (a ``Cast``
    for a cast), ``at`` the loop time. See ``observe_undeliverable``.
    """

    pid: Pid
    message: object
    at: float


@attrs.define(eq=False)
class UndeliverableObserver:
    """An installed ``observe_undeliverable``: counts, and ``close()`` to stop.

    ``forwarded`` messages reached the destination; ``lost`` ones could not
    (the destination was dead, unknown or full). Usable as a context
    manager.
    """

    dest: Pid | str
    node: Node
    previous: Callable[[Pid, object], None] | None
    forwarded: int = 0
    lost: int = 0
    closed: bool = False
    _busy: bool = False

    @property
    def seen(self) -> int:
        """Every undeliverable message observed."""
        return self.forwarded + self.lost

    def __call__(self, pid: Pid, message: object) -> None:
        previous = self.previous
        if previous is not None:
            previous(pid, message)
        if self.closed:
            return
        if self._busy:  # the destination itself is dead: do not recurse
            self.lost += 1
            return
        dest = self.dest
        target = dest if type(dest) is Pid else whereis(dest)
        if target is None or not is_alive(target):
            self.lost += 1
            return
        self._busy = True
        try:
            send(target, Undeliverable(pid, message, now()))
        except (MailboxFull, NoProcess, NoNodeError):
            self.lost += 1
        else:
            self.forwarded += 1
        finally:
            self._busy = False

    def close(self) -> None:
        """Stop observing (and restore the hook that was there before)."""
        self.closed = True
        if dead_letter_hook(self.node) is self:
            set_dead_letter_hook(self.node, self.previous)

    def __enter__(self) -> UndeliverableObserver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def observe_undeliverable(dest: Pid | str) -> UndeliverableObserver:
    """Opt in to seeing messages sent to actors that are no longer alive.

    Every such message (from ``send``, ``cast`` or a timer) is forwarded to
    ``dest`` as an ``Undeliverable(pid, message, at)``: give a
    ``DeadLetterQueue`` (which records them, see
    ``DeadLetterQueue.undeliverable``) or any actor. Returns the installed
    observer, which counts what it forwarded and lost; ``close()`` it (or use
    it as a context manager) to stop. Observers chain: one installed later
    also calls the earlier one. A ``call`` to a dead actor is not
    undeliverable: it raises ``NoProcess`` in the caller.
    """
    node = current_node()
    validate.pid_or_name(dest, "dest", where="observe_undeliverable")
    observer = UndeliverableObserver(dest, node, dead_letter_hook(node))
    set_dead_letter_hook(node, observer)
    return observer
