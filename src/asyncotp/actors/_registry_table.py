"""The tables behind ``Registry``: keys to ``(pid, value)`` entries.

A registry's table is a plain Python object that every task of the node
reads and writes directly, as Elixir's registries read ETS: a lookup is a
dict look-up, not a message to the registry process. That is safe because
everything runs on the node's one event-loop thread and no operation here
awaits, so no other code runs in the middle of one.

Two kinds, one per ``keys=`` setting:

* ``UniqueTable``: a key has at most one entry, ``key -> (pid, value)``.
* ``DuplicateTable``: a key has any number of entries, even several from
  the same process: ``key -> {pid: [value, ...]}``, pids in the order they
  first registered the key (so a publish reaches subscribers in that order,
  and removing a subscriber is one dict operation, not a scan).

Both record what each owner holds (``owned``: ``pid -> {key: count}``), so
that an owner's end removes its entries without scanning the table. The
owner's end is seen through an exit callback installed on its first entry
(``on_exit``), which runs while the runtime finishes the actor: once a
monitor's ``Down`` for the owner can be read, the entries are gone.

An owner is linked to the registry process while it holds at least one
entry (as in Elixir): when the registry dies, its table goes with it, and
the owners hear of it through the link instead of silently holding entries
nobody can see.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal, NamedTuple

from .._core import (
    MailboxFull,
    NameTaken,
    NoProcess,
    Pid,
    Via,
    link_pids,
    on_exit,
    safe_repr,
    send,
    unlink_pids,
)

logger = logging.getLogger("asyncotp")


class RegistryEntry(NamedTuple):
    """One entry of a registry, as ``Registry.select`` returns it:
    ``for key, pid, value in Registry.select(registry): ...``."""

    key: Any
    pid: Pid
    value: Any


class RegistryEvent(NamedTuple):
    """What a registry's ``listeners`` receive (Elixir's listener messages):
    ``RegistryEvent("register", registry, key, pid, value)`` after an
    actor registers, ``RegistryEvent("unregister", registry, key, pid, None)``
    after it unregisters. ``registry`` is the registry's pid.

    Only explicit calls are announced, as in Elixir: an actor's entries that
    vanish because it ended are not (a listener that cares monitors it)."""

    kind: Literal["register", "unregister"]
    registry: Pid
    key: Any
    pid: Pid
    value: Any


class Table:
    """What both kinds of table share: owners, links, meta, the lifetime."""

    __slots__ = (
        "closed",
        "label",
        "linked",
        "listeners",
        "meta",
        "owned",
        "pid",
        "thread",
        "watched",
    )

    duplicate: bool = False

    def __init__(
        self, pid: Pid, label: str, meta: dict[Any, Any], listeners: tuple[Pid | str, ...] = ()
    ) -> None:
        self.pid = pid
        self.listeners = listeners
        """Who hears of each ``register`` and ``unregister`` (``RegistryEvent``)."""
        self.label = label
        """How error messages name the registry (its name, else its pid)."""
        self.meta = meta
        self.owned: dict[Pid, dict[Any, int]] = {}
        """Each live owner's keys, with how many entries it has under each."""
        self.watched: set[Pid] = set()
        """The owners whose end is already watched (one exit callback each)."""
        self.linked: set[Pid] = set()
        """The owners this table linked to the registry (and so may unlink:
        a link someone else made, the registry's parent's, is left alone)."""
        self.closed = False
        self.thread = threading.get_ident()
        """The node's event-loop thread: the only one that may use the table."""

    # -- owners --------------------------------------------------------------

    def own(self, pid: Pid, key: Any, count: int = 1) -> None:
        """Record ``count`` more entries of ``pid`` under ``key``; the first
        entry of an owner links it to the registry and watches its end."""
        keys = self.owned.get(pid)
        if keys is None:
            if pid not in self.watched:
                if not on_exit(pid, functools.partial(self._owner_ended, pid)):
                    raise NoProcess(f"Registry {self.label}: {pid!r} is not alive", pid)
                self.watched.add(pid)
            if link_pids(pid, self.pid):
                self.linked.add(pid)
            keys = self.owned[pid] = {}
        keys[key] = keys.get(key, 0) + count

    def disown(self, pid: Pid, key: Any, count: int) -> None:
        """Forget ``count`` entries of ``pid`` under ``key``; an owner left
        with none is unlinked from the registry."""
        keys = self.owned.get(pid)
        if keys is None:
            return
        left = keys.get(key, 0) - count
        if left > 0:
            keys[key] = left
        else:
            keys.pop(key, None)
        if not keys:
            del self.owned[pid]
            if pid in self.linked:
                self.linked.discard(pid)
                unlink_pids(pid, self.pid)

    def announce(
        self, kind: Literal["register", "unregister"], key: Any, pid: Pid, value: Any
    ) -> None:
        """Tell the listeners (Elixir's ``listeners``) of an explicit register
        or unregister; a listener that is gone or full is skipped."""
        event = RegistryEvent(kind, self.pid, key, pid, value)
        for listener in self.listeners:
            with contextlib.suppress(NoProcess, MailboxFull):
                send(listener, event)

    def keys_of(self, pid: Pid) -> list[Any]:
        """The keys ``pid`` holds, once per entry."""
        keys = self.owned.get(pid)
        if not keys:
            return []
        return [key for key, count in keys.items() for _ in range(count)]

    def _owner_ended(self, pid: Pid, _reason: object) -> None:
        self.watched.discard(pid)
        self.linked.discard(pid)
        keys = self.owned.pop(pid, None)
        if keys is None or self.closed:
            return
        for key in keys:
            try:
                self.drop_owner_key(pid, key)
            except Exception:  # a key whose hash or eq broke since it was registered
                logger.exception(
                    "Registry %s: could not remove the entry %s of %r that ended",
                    self.label,
                    safe_repr(key),
                    pid,
                )

    def close(self) -> None:
        """The registry process ended: its entries are gone with it."""
        self.closed = True
        self.owned.clear()
        self.watched.clear()
        self.linked.clear()
        self.clear()

    # -- what each kind provides ---------------------------------------------

    def register(self, pid: Pid, key: Any, value: Any, taken: Callable[[], Via]) -> None:
        """Add the entry ``(key, pid, value)``; ``taken()`` names the key in
        a ``NameTaken``."""
        raise NotImplementedError

    def lookup(self, key: Any) -> list[tuple[Pid, Any]]:
        """The ``(pid, value)`` entries under ``key``, a list of the caller's own."""
        raise NotImplementedError

    def pids(self, key: Any) -> list[Pid]:
        """The distinct pids under ``key``."""
        raise NotImplementedError

    def values(self, key: Any, pid: Pid) -> list[Any]:
        """The values of ``pid``'s entries under ``key``."""
        raise NotImplementedError

    def unregister(self, pid: Pid, key: Any, pattern: Callable[[Any], bool] | None) -> None:
        """Remove ``pid``'s entries under ``key`` (those ``pattern`` accepts)."""
        raise NotImplementedError

    def count(self) -> int:
        """How many entries the table holds."""
        raise NotImplementedError

    def count_key(self, key: Any) -> int:
        """How many entries ``key`` has."""
        raise NotImplementedError

    def iterate(self) -> Iterator[RegistryEntry]:
        """Every entry, from a snapshot (user code may change the table meanwhile)."""
        raise NotImplementedError

    def drop_owner_key(self, pid: Pid, key: Any) -> None:
        """Remove every entry of ``pid`` under ``key`` (its owner ended)."""
        raise NotImplementedError

    def clear(self) -> None:
        """Remove every entry."""
        raise NotImplementedError


class UniqueTable(Table):
    """``keys="unique"``: ``key -> (pid, value)``."""

    __slots__ = ("entries",)

    def __init__(
        self, pid: Pid, label: str, meta: dict[Any, Any], listeners: tuple[Pid | str, ...] = ()
    ) -> None:
        super().__init__(pid, label, meta, listeners)
        self.entries: dict[Any, tuple[Pid, Any]] = {}

    def register(self, pid: Pid, key: Any, value: Any, taken: Callable[[], Via]) -> None:
        held = self.entries.get(key)
        if held is not None:
            holder = held[0]
            raise NameTaken(
                f"Registry.register: the key {safe_repr(key)} of the unique registry "
                f"{self.label} is already registered to {holder!r}"
                + (
                    " (the caller itself)"
                    if holder is pid
                    else "; choose another key, or use a registry with keys='duplicate'"
                ),
                taken(),
                holder,
            )
        self.own(pid, key)
        self.entries[key] = (pid, value)
        if self.listeners:
            self.announce("register", key, pid, value)

    def claim(self, pid: Pid, key: Any, value: Any) -> bool:
        """For a via name: register ``pid`` (not the caller) under ``key``."""
        if key in self.entries:
            return False
        self.own(pid, key)
        self.entries[key] = (pid, value)
        if self.listeners:
            self.announce("register", key, pid, value)
        return True

    def whereis(self, key: Any) -> Pid | None:
        held = self.entries.get(key)
        return None if held is None else held[0]

    def release(self, key: Any) -> None:
        """For a via name: remove ``key``'s entry, whoever owns it."""
        held = self.entries.pop(key, None)
        if held is not None:
            self.disown(held[0], key, 1)
            if self.listeners:
                self.announce("unregister", key, held[0], None)

    def lookup(self, key: Any) -> list[tuple[Pid, Any]]:
        held = self.entries.get(key)
        return [] if held is None else [held]

    def pids(self, key: Any) -> list[Pid]:
        held = self.entries.get(key)
        return [] if held is None else [held[0]]

    def values(self, key: Any, pid: Pid) -> list[Any]:
        held = self.entries.get(key)
        return [held[1]] if held is not None and held[0] is pid else []

    def unregister(self, pid: Pid, key: Any, pattern: Callable[[Any], bool] | None) -> None:
        held = self.entries.get(key)
        if held is None or held[0] is not pid:
            return
        if pattern is not None and (not pattern(held[1]) or self.entries.get(key) is not held):
            return  # no match, or the predicate (user code) changed the entry
        del self.entries[key]
        self.disown(pid, key, 1)
        if self.listeners:
            self.announce("unregister", key, pid, None)

    def update_value(self, pid: Pid, key: Any, fn: Callable[[Any], Any]) -> tuple[Any, Any] | None:
        held = self.entries.get(key)
        if held is None or held[0] is not pid:
            return None
        new = fn(held[1])
        # fn may have unregistered the key: only an entry still ours changes.
        if self.entries.get(key) is held:
            self.entries[key] = (pid, new)
            return new, held[1]
        return None

    def count(self) -> int:
        return len(self.entries)

    def count_key(self, key: Any) -> int:
        return 1 if key in self.entries else 0

    def iterate(self) -> Iterator[RegistryEntry]:
        for key, (pid, value) in list(self.entries.items()):
            yield RegistryEntry(key, pid, value)

    def drop_owner_key(self, pid: Pid, key: Any) -> None:
        held = self.entries.get(key)
        if held is not None and held[0] is pid:
            del self.entries[key]

    def clear(self) -> None:
        self.entries.clear()


class DuplicateTable(Table):
    """``keys="duplicate"``: ``key -> {pid: [value, ...]}``."""

    __slots__ = ("entries", "size")

    duplicate = True

    def __init__(
        self, pid: Pid, label: str, meta: dict[Any, Any], listeners: tuple[Pid | str, ...] = ()
    ) -> None:
        super().__init__(pid, label, meta, listeners)
        self.entries: dict[Any, dict[Pid, list[Any]]] = {}
        self.size = 0

    def register(self, pid: Pid, key: Any, value: Any, taken: Callable[[], Via]) -> None:
        del taken  # a duplicate key is never taken
        self.own(pid, key)
        subscribers = self.entries.get(key)
        if subscribers is None:
            self.entries[key] = {pid: [value]}
        else:
            values = subscribers.get(pid)
            if values is None:
                subscribers[pid] = [value]
            else:
                values.append(value)
        self.size += 1
        if self.listeners:
            self.announce("register", key, pid, value)

    def lookup(self, key: Any) -> list[tuple[Pid, Any]]:
        subscribers = self.entries.get(key)
        if not subscribers:
            return []
        return [(pid, value) for pid, values in subscribers.items() for value in values]

    def pids(self, key: Any) -> list[Pid]:
        """The distinct pids under ``key``, in the order they first registered it."""
        subscribers = self.entries.get(key)
        return list(subscribers) if subscribers else []

    def values(self, key: Any, pid: Pid) -> list[Any]:
        subscribers = self.entries.get(key)
        if not subscribers:
            return []
        return list(subscribers.get(pid, ()))

    def unregister(self, pid: Pid, key: Any, pattern: Callable[[Any], bool] | None) -> None:
        subscribers = self.entries.get(key)
        if not subscribers:
            return
        values = subscribers.get(pid)
        if values is None:
            return
        if pattern is None:
            gone = len(values)
            kept: list[Any] = []
        else:
            kept = [value for value in values if not pattern(value)]
            gone = len(values) - len(kept)
            if not gone:
                return
        # The predicate is user code: look the entry up again before changing it.
        subscribers = self.entries.get(key)
        if subscribers is None or subscribers.get(pid) is not values:
            return
        if kept:
            subscribers[pid] = kept
        else:
            del subscribers[pid]
            if not subscribers:
                del self.entries[key]
        self.size -= gone
        self.disown(pid, key, gone)
        if self.listeners:
            self.announce("unregister", key, pid, None)

    def count(self) -> int:
        return self.size

    def count_key(self, key: Any) -> int:
        subscribers = self.entries.get(key)
        if not subscribers:
            return 0
        return sum(len(values) for values in subscribers.values())

    def iterate(self) -> Iterator[RegistryEntry]:
        snapshot = [
            RegistryEntry(key, pid, value)
            for key, subscribers in self.entries.items()
            for pid, values in subscribers.items()
            for value in values
        ]
        yield from snapshot

    def drop_owner_key(self, pid: Pid, key: Any) -> None:
        subscribers = self.entries.get(key)
        if subscribers is None:
            return
        values = subscribers.pop(pid, None)
        if values is None:
            return
        self.size -= len(values)
        if not subscribers:
            del self.entries[key]

    def clear(self) -> None:
        self.entries.clear()
        self.size = 0
