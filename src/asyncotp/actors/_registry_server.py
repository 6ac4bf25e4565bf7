"""Registry: a key-value process registry with pub/sub, after Elixir's.

The ``Registry`` class (the registry process and its client functions) and
``via`` (names held by a registry). The tables themselves, and the rules of
who owns which entry, are ``_registry_table``'s.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal, final

from .._core import (
    ChildSpec,
    Exited,
    MailboxFull,
    Name,
    NoProcess,
    NotAnActorError,
    Pid,
    Restart,
    ShutdownSetting,
    Via,
    calling_pid,
    current_node,
    lookup,
    on_exit,
    safe_repr,
    self_pid,
    send,
    set_trap_exits,
    whereis_on,
)
from ._genserver import GenServer
from ._registry_table import DuplicateTable, RegistryEntry, Table, UniqueTable

Keys = Literal["unique", "duplicate"]
"""A registry's kind: each key has at most one entry, or any number."""

RegistryRef = Pid | Name
"""How a registry is given to its functions: its pid or its name."""

_tables: dict[Pid, Table] = {}
"""The table of every running registry, by the registry's pid."""

get_ident = threading.get_ident


def _table(registry: RegistryRef, operation: str) -> Table:
    """The table of a running registry; ``NoProcess`` naming ``operation``
    otherwise (``WrongThreadError`` off the node's thread).

    The hot path of every read: a registry given by pid is one dict look-up
    and a thread check (a table is in ``_tables`` exactly while its process
    lives); by local name, the node's name table first."""
    if type(registry) is Pid:
        table = _tables.get(registry)
        if table is not None and table.thread == get_ident():
            return table
    elif type(registry) is str:
        pid = whereis_on(current_node(operation), registry)
        if pid is not None:
            table = _tables.get(pid)
            if table is not None:
                return table
    return _resolve_table(registry, operation)


def _resolve_table(registry: RegistryRef, operation: str) -> Table:
    """``_table``'s slow path: a ``via`` name, or an error to raise."""
    try:
        pid = lookup(registry, operation)
    except NoProcess:
        raise NoProcess(
            f"{operation}: no Registry is registered as {safe_repr(registry)}; start one "
            "with Registry.start(keys=..., name=...) (or as a child: Registry.child_spec(...)) "
            "before using it",
            registry,
        ) from None
    table = _tables.get(pid) if pid is not None else None
    if table is None:
        state = "is not alive" if pid is None else "is not a Registry"
        raise NoProcess(
            f"{operation}: {safe_repr(registry)} {state}; start one with "
            "Registry.start(keys=..., name=...) (or as a child: Registry.child_spec(...)) "
            "before using it",
            registry,
        )
    return table


def _find(registry: RegistryRef) -> Table | None:
    """The table of a running registry, or None (for ``via`` names: a name in
    a registry that is not running is a name nobody holds)."""
    if type(registry) is Pid:
        table = _tables.get(registry)
        if table is not None and table.thread == get_ident():
            return table
    elif type(registry) is str:
        pid = whereis_on(current_node("via"), registry)
        return _tables.get(pid) if pid is not None else None
    try:
        pid = lookup(registry, "via")
    except NoProcess:
        return None
    return _tables.get(pid) if pid is not None else None


def _owner(operation: str) -> Pid:
    pid = calling_pid()
    if pid is None:
        raise NotAnActorError(
            f"{operation} registers the calling actor, and was called from a plain task; "
            "call it from the actor that the entry belongs to (its entries vanish when it "
            "ends), or name a server at its start with name=via(registry, key)"
        )
    return pid


def _check_callable(fn: object, what: str, operation: str) -> None:
    if not callable(fn):
        raise TypeError(f"{operation}: {what} must be a callable, not {safe_repr(fn)}")


def _unique(table: Table, operation: str) -> UniqueTable:
    if type(table) is not UniqueTable:
        raise ValueError(
            f"{operation} needs a registry with keys='unique'; {table.label} has "
            "keys='duplicate' (a key there may have many entries)"
        )
    return table


@final
class _RegistryNames:
    """The ``NameRegistry`` of one ``Registry`` for ``via`` names.

    Holds the registry's pid or name, not its table: a name given by name
    reaches whichever registry process holds that name now (after a restart
    too). Equal (and hashed) by the registry alone, so that
    ``via("reg", key) == via("reg", key)``, whatever values they carry.
    """

    __slots__ = ("registry", "value")

    def __init__(self, registry: RegistryRef, value: Any) -> None:
        self.registry = registry
        self.value = value

    def register_name(self, key: object, pid: Pid) -> bool:
        table = _unique(_table(self.registry, "via"), f"via({safe_repr(self.registry)}, ...)")
        return table.claim(pid, key, self.value)

    def unregister_name(self, key: object) -> None:
        table = _find(self.registry)
        if type(table) is UniqueTable:
            table.release(key)

    def whereis_name(self, key: object) -> Pid | None:
        table = _find(self.registry)
        if type(table) is UniqueTable:
            return table.whereis(key)
        return None

    def __eq__(self, other: object) -> bool:
        if type(other) is not _RegistryNames:
            return NotImplemented
        return bool(self.registry == other.registry)

    def __hash__(self) -> int:
        return hash(self.registry)

    def __repr__(self) -> str:
        return f"Registry({safe_repr(self.registry)})"


def via(registry: RegistryRef, key: Hashable, value: Any = None) -> Via:
    """A name held by ``registry`` (a ``Registry`` with ``keys="unique"``)
    under ``key``; ``value`` is the entry's value (``Registry.lookup`` shows it).

    Accepted wherever a name is (Elixir's ``{:via, Registry, {registry, key}}``)::

        await Room.start("lobby", name=via("rooms", "lobby"))
        await call(via("rooms", "lobby"), ("say", "hi"))
        Room.child_spec("lobby", name=via("rooms", "lobby"))

    The entry belongs to the named actor, not to whoever started it, and
    goes when that actor ends. Starting a second actor with the same name
    raises ``NameTaken``, as a taken local name does. ``registry`` is the
    registry's pid or name; by name, it follows the registry across
    restarts. For any other registry object (one that implements
    ``NameRegistry``), write ``Via(that_object, key)``.
    """
    return Via(_RegistryNames(registry, value), key)


class Registry(GenServer):
    """A local, decentralised key-value process registry, after Elixir's ``Registry``.

    Example: a registry of rooms by name (unique keys), and a pub/sub of
    topics (duplicate keys)::

        await Registry.start(keys="unique", name="rooms")
        await Room.start("lobby", name=via("rooms", "lobby"))
        await call(via("rooms", "lobby"), "who")

        await Registry.start(keys="duplicate", name="pubsub")
        # in each subscriber actor:
        Registry.register("pubsub", "news", None)
        # anywhere:
        Registry.publish("pubsub", "news", ("news", "asyncotp 1.0 is out"))

    **Entries.** An entry is ``(key, pid, value)``. The calling actor
    registers itself (``register``), and its entries vanish when it ends:
    the registry watches every owner, and removes its entries while the
    runtime finishes it, before anyone can read its ``Down``. With
    ``keys="unique"`` a key has at most one entry (``register`` raises
    ``NameTaken`` if it is taken); with ``keys="duplicate"`` a key has any
    number, even several from the same actor, which makes it a local pub/sub:
    ``dispatch(registry, topic, fn)`` hands every subscriber's entry to
    ``fn``, ``publish`` sends them a message.

    **Reads are direct.** Lookups, ``match``, ``select``, ``count``,
    ``dispatch`` and ``publish`` read the registry's table in the calling
    task, as Elixir reads its ETS tables, and ``register`` writes it there:
    no message goes to the registry process. This is safe because the whole
    node runs on one event-loop thread and no registry function awaits, so
    nothing runs in the middle of one. They are plain functions (no
    ``await``), for the node's thread only (``WrongThreadError`` elsewhere).

    **The process.** ``Registry.start`` (or ``Registry.child_spec`` in a
    supervisor) runs the process that owns the table: the table lives as
    long as it does. Each actor holding an entry is linked to it (Elixir
    does the same), so a registry that crashes takes its owners along
    rather than leave them registered in a table that is gone; an actor
    that unregisters its last entry is unlinked (a link it made itself
    stays). Start the registry before the actors that use it, in a
    ``Strategy.REST_FOR_ONE`` supervisor, so that they restart (and
    register again) after it.

    **Where it differs from Elixir.** No partitions (one loop has nothing
    to spread), so ``partitions=`` is not an option; ``match`` and
    ``select`` take Python predicates instead of match specifications;
    ``register`` raises ``NameTaken`` instead of returning an error tuple;
    ``meta`` returns a default instead of ``:error``; ``listeners`` get a
    ``RegistryEvent`` record rather than a tuple.
    """

    _asyncotp_table: Table | None = None

    async def init(
        self, keys: Keys, meta: Mapping[Any, Any] | None, listeners: tuple[Pid | str, ...] = ()
    ) -> None:
        """Make the table and publish it to the client functions."""
        set_trap_exits(True)  # the owners' ends arrive as Exited, and are dropped
        pid = self_pid()
        label = repr(pid)
        kind = UniqueTable if keys == "unique" else DuplicateTable
        table = kind(pid, label, dict(meta) if meta else {}, listeners)
        self._asyncotp_table = table
        _tables[pid] = table
        on_exit(pid, functools.partial(_close, pid, table))

    async def handle_info(self, message: Any) -> None:
        """An owner's end (``Exited``, through its link) needs nothing: its
        entries went when it ended. Anything else is logged and dropped."""
        if type(message) is Exited:
            return
        await super().handle_info(message)

    # -- start ------------------------------------------------------------------

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        keys: Keys,
        *,
        name: Name | None = None,
        meta: Mapping[Any, Any] | None = None,
        listeners: Sequence[Pid | str] = (),
        **opts: Any,
    ) -> Pid:
        """Start a registry; ``keys`` is ``"unique"`` or ``"duplicate"``.

        ``name`` (a local name, usually) is how the client functions find it;
        its pid works too. ``meta`` is the registry's initial metadata
        (``Registry.meta``). ``listeners`` (pids or local names) receive a
        ``RegistryEvent`` after every ``register`` and ``unregister``, as
        Elixir's listeners do. ``opts`` are ``GenServer.start``'s: ``link``,
        ``mailbox_size``, ``overflow``, ``timeout``.
        """
        _check_keys(keys, "Registry.start")
        _check_meta(meta, "Registry.start")
        heard = _check_listeners(listeners, "Registry.start")
        return await super().start(keys, meta, heard, name=name, **opts)

    @classmethod
    def child_spec(  # type: ignore[override]
        cls,
        keys: Keys,
        *,
        id: Hashable | None = None,  # noqa: A002 - the contract's name, as in OTP
        name: Name | None = None,
        meta: Mapping[Any, Any] | None = None,
        listeners: Sequence[Pid | str] = (),
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownSetting | None = None,
        **opts: Any,
    ) -> ChildSpec:
        """A child spec for supervisors. ``id`` defaults to the registry's
        ``name`` (Elixir's rule), else ``"Registry"``. Put it before the
        children that use it, with ``Strategy.REST_FOR_ONE``."""
        _check_keys(keys, "Registry.child_spec")
        _check_meta(meta, "Registry.child_spec")
        _check_listeners(listeners, "Registry.child_spec")
        if id is None:
            id = name if name is not None else "Registry"  # noqa: A001 - the contract's name
        if name is not None:
            opts["name"] = name
        return super().child_spec(
            keys,
            id=id,
            restart=restart,
            shutdown=shutdown,
            meta=meta,
            listeners=tuple(listeners),
            **opts,
        )

    # -- entries of the calling actor ------------------------------------------

    @staticmethod
    def register(registry: RegistryRef, key: Hashable, value: Any = None) -> None:
        """Register the calling actor under ``key`` with ``value``.

        The entry goes when the actor ends (or ``unregister``). In a unique
        registry a taken key raises ``NameTaken`` (its ``holder`` is the
        actor that has it, perhaps the caller itself); in a duplicate
        registry the same actor may register a key many times. From a plain
        task: ``NotAnActorError`` (an entry belongs to an actor).
        """
        table = _table(registry, "Registry.register")
        pid = _owner("Registry.register")
        table.register(pid, key, value, lambda: via(registry, key))

    @staticmethod
    def unregister(registry: RegistryRef, key: Hashable) -> None:
        """Remove every entry of the calling actor under ``key`` (nothing if
        it has none)."""
        table = _table(registry, "Registry.unregister")
        table.unregister(_owner("Registry.unregister"), key, None)

    @staticmethod
    def unregister_match(
        registry: RegistryRef, key: Hashable, pattern: Callable[[Any], bool]
    ) -> None:
        """Remove the calling actor's entries under ``key`` whose value
        ``pattern(value)`` accepts (Elixir's ``unregister_match``)."""
        _check_callable(pattern, "pattern", "Registry.unregister_match")
        table = _table(registry, "Registry.unregister_match")
        table.unregister(_owner("Registry.unregister_match"), key, pattern)

    @staticmethod
    def update_value(
        registry: RegistryRef, key: Hashable, fn: Callable[[Any], Any]
    ) -> tuple[Any, Any] | None:
        """Replace the value of the calling actor's entry under ``key`` with
        ``fn(value)``; return ``(new, old)``, or None if the caller does not
        hold ``key``. Unique registries only (``ValueError`` otherwise)."""
        _check_callable(fn, "fn", "Registry.update_value")
        table = _unique(_table(registry, "Registry.update_value"), "Registry.update_value")
        return table.update_value(_owner("Registry.update_value"), key, fn)

    # -- reads --------------------------------------------------------------------

    @staticmethod
    def lookup(registry: RegistryRef, key: Hashable) -> list[tuple[Pid, Any]]:
        """The entries under ``key`` as ``(pid, value)`` pairs: none or one in
        a unique registry, in registration order in a duplicate one (an
        actor that registered the key several times appears once per entry,
        next to its first)."""
        return _table(registry, "Registry.lookup").lookup(key)

    @staticmethod
    def match(
        registry: RegistryRef, key: Hashable, pattern: Callable[[Any], bool]
    ) -> list[tuple[Pid, Any]]:
        """The entries under ``key`` whose value ``pattern(value)`` accepts.

        Elixir matches values against a pattern and guards; a predicate
        says both: ``Registry.match(reg, "orders", lambda v: v["region"] == "eu")``.
        """
        _check_callable(pattern, "pattern", "Registry.match")
        entries = _table(registry, "Registry.match").lookup(key)
        return [(pid, value) for pid, value in entries if pattern(value)]

    @staticmethod
    def count(registry: RegistryRef) -> int:
        """How many entries the registry holds."""
        return _table(registry, "Registry.count").count()

    @staticmethod
    def count_match(
        registry: RegistryRef, key: Hashable, pattern: Callable[[Any], bool] | None = None
    ) -> int:
        """How many entries under ``key`` (whose value ``pattern`` accepts, if given)."""
        table = _table(registry, "Registry.count_match")
        if pattern is None:
            return table.count_key(key)
        _check_callable(pattern, "pattern", "Registry.count_match")
        return sum(1 for _pid, value in table.lookup(key) if pattern(value))

    @staticmethod
    def select(
        registry: RegistryRef, where: Callable[[RegistryEntry], bool] | None = None
    ) -> list[RegistryEntry]:
        """Every entry (that ``where(entry)`` accepts), as ``RegistryEntry(key,
        pid, value)`` tuples, in registration order of the keys.

        Elixir's ``select`` takes a match specification; here a predicate
        filters and a comprehension shapes::

            [e.key for e in Registry.select(reg, lambda e: e.pid is me)]
        """
        if where is not None:
            _check_callable(where, "where", "Registry.select")
        entries = _table(registry, "Registry.select").iterate()
        if where is None:
            return list(entries)
        return [entry for entry in entries if where(entry)]

    @staticmethod
    def count_select(registry: RegistryRef, where: Callable[[RegistryEntry], bool]) -> int:
        """How many entries ``where(entry)`` accepts."""
        _check_callable(where, "where", "Registry.count_select")
        entries = _table(registry, "Registry.count_select").iterate()
        return sum(1 for entry in entries if where(entry))

    @staticmethod
    def keys(registry: RegistryRef, pid: Pid) -> list[Any]:
        """The keys ``pid`` holds entries under (once per entry); [] for an
        actor with none, or one that has ended."""
        return _table(registry, "Registry.keys").keys_of(pid)

    @staticmethod
    def values(registry: RegistryRef, key: Hashable, pid: Pid) -> list[Any]:
        """The values of ``pid``'s entries under ``key``."""
        return _table(registry, "Registry.values").values(key, pid)

    # -- pub/sub ------------------------------------------------------------------

    @staticmethod
    def dispatch(
        registry: RegistryRef, key: Hashable, fn: Callable[[list[tuple[Pid, Any]]], object]
    ) -> None:
        """Call ``fn(entries)`` with every ``(pid, value)`` entry under
        ``key``, in the calling task; not at all if there is none.

        ``fn`` gets a list of its own, so it may register, unregister or
        send freely. An error in ``fn`` propagates to the caller. For the
        common case, sending one message to every subscriber, see ``publish``.
        """
        _check_callable(fn, "fn", "Registry.dispatch")
        entries = _table(registry, "Registry.dispatch").lookup(key)
        if entries:
            fn(entries)

    @staticmethod
    def publish(registry: RegistryRef, key: Hashable, message: object) -> int:
        """Send ``message`` to every actor registered under ``key``, once per
        actor (even if it registered the key several times), in the order
        they first registered it; return how many took it.

        Sends are ``send``'s: they never wait, and a full bounded mailbox
        applies its overflow policy. One slow subscriber never stops the
        others: a subscriber whose mailbox refuses the message
        (``Overflow.REJECT``) is skipped, left out of the count, and counted
        in its ``process_info(pid).rejected``.
        """
        pids = _table(registry, "Registry.publish").pids(key)
        took = 0
        for pid in pids:
            try:
                send(pid, message)
            except MailboxFull:
                continue
            took += 1
        return took

    # -- metadata -----------------------------------------------------------------

    @staticmethod
    def meta(registry: RegistryRef, key: Hashable, default: Any = None) -> Any:
        """The registry's metadata under ``key`` (``default`` if unset)."""
        return _table(registry, "Registry.meta").meta.get(key, default)

    @staticmethod
    def put_meta(registry: RegistryRef, key: Hashable, value: Any) -> None:
        """Set the registry's metadata under ``key``."""
        _table(registry, "Registry.put_meta").meta[key] = value

    @staticmethod
    def delete_meta(registry: RegistryRef, key: Hashable) -> None:
        """Remove the registry's metadata under ``key`` (nothing if unset)."""
        _table(registry, "Registry.delete_meta").meta.pop(key, None)

    @staticmethod
    def kind(registry: RegistryRef) -> Keys:
        """``"unique"`` or ``"duplicate"``."""
        return "duplicate" if _table(registry, "Registry.kind").duplicate else "unique"


def _close(pid: Pid, table: Table, _reason: object) -> None:
    if _tables.get(pid) is table:
        del _tables[pid]
    table.close()


def _check_keys(keys: object, operation: str) -> None:
    if not isinstance(keys, str) or keys not in ("unique", "duplicate"):
        raise ValueError(
            f"{operation}: keys must be 'unique' or 'duplicate', not {safe_repr(keys)}"
        )


def _check_listeners(listeners: object, operation: str) -> tuple[Pid | str, ...]:
    if isinstance(listeners, (str, bytes)) or not isinstance(listeners, Sequence):
        raise TypeError(
            f"{operation}: listeners must be a list of pids or names, not {safe_repr(listeners)}"
        )
    for listener in listeners:
        if type(listener) is not Pid and not (isinstance(listener, str) and listener):
            raise TypeError(
                f"{operation}: every listener must be a Pid or a registered name, "
                f"not {safe_repr(listener)}"
            )
    return tuple(listeners)


def _check_meta(meta: object, operation: str) -> None:
    if meta is not None and not isinstance(meta, Mapping):
        raise TypeError(f"{operation}: meta must be a mapping or None, not {safe_repr(meta)}")
