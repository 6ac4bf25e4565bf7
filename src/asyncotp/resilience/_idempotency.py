"""Idempotency keys: run a piece of work once per key, however often it is asked.

A client that did not hear back (a timeout, a dropped connection) retries.
When the work has an effect (a payment, an e-mail), the retry must not do it
twice. The client sends an idempotency key with the request; the server asks
``IdempotencyStore.run_once(store, key, work)``:

* the first request with the key runs the work and the store remembers the
  result for ``ttl`` seconds;
* a request with the same key within that time gets the remembered result,
  and the work does not run again;
* a request that arrives while the first one is still running waits for its
  result, so two identical requests at the same moment run the work once.

The work runs in the task that asked, never inside the store: the store only
keeps the book (key -> "running, with these callers waiting" or "done, with
this result, until then"), so it answers other keys while the work runs.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, TypeVar

import attrs

from .._core import (
    NOREPLY,
    Caller,
    Cast,
    Down,
    IdempotencyKeyReused,
    MailboxFull,
    MonitorRef,
    NoNodeError,
    NoProcess,
    Pid,
    ServerExited,
    call,
    deliver_system,
    demonitor,
    lookup,
    monitor,
    now,
    safe_repr,
    self_pid,
    validate,
)
from ..actors import GenServer

logger = logging.getLogger("asyncotp")

R = TypeVar("R")

_claims = itertools.count(1)
"""Claim numbers, unique in the process (so across restarts of a store)."""


@attrs.frozen
class IdempotencyStats:
    """What an ``IdempotencyStore`` holds and did, from ``IdempotencyStore.statistics``.

    ``remembered`` results are kept now and ``running`` keys have their work
    under way. ``runs`` counts the times the work was started; ``hits`` the
    requests answered with a remembered result; ``joined`` those that waited
    for a run already under way; ``failures`` the runs that raised (not
    remembered); ``abandoned`` the runs whose runner went away without an
    answer (cancelled, timed out or dead), handed to a waiting request or
    dropped; ``expired`` the results forgotten after their ``ttl``.
    """

    remembered: int
    running: int
    runs: int
    hits: int
    joined: int
    failures: int
    abandoned: int
    expired: int


# -- messages between run_once and the store -------------------------------------


@attrs.frozen
class _Claim:
    key: Hashable
    claim: int
    fingerprint: Hashable


@attrs.frozen
class _Completed:
    key: Hashable
    claim: int
    result: object
    at: float
    """When the work finished: the time-to-live counts from there."""


@attrs.frozen
class _Failed:
    key: Hashable
    claim: int
    error: BaseException


@attrs.frozen
class _Withdraw:
    key: Hashable
    claim: int


@attrs.frozen
class _Forget:
    key: Hashable


class _StatisticsRequest:
    __slots__ = ()


_STATISTICS: Final = _StatisticsRequest()


@attrs.frozen
class _Run:
    """Reply: you run the work."""


@attrs.frozen
class _Hit:
    """Reply: here is the result."""

    result: object


@attrs.frozen
class _Error:
    """Reply: the run you waited for raised this."""

    error: BaseException


@attrs.frozen
class _Conflict:
    fingerprint: Hashable


_RUN: Final = _Run()


# -- the store's book ------------------------------------------------------------


class _Key:
    """A key in the store's book: hashed once, on the way in, and compared
    without letting a key's ``__eq__`` raise inside the store (one that
    raises compares unequal to everything but itself)."""

    __slots__ = ("hash", "key")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        self.hash = hash(key)

    def __hash__(self) -> int:
        return self.hash

    def __eq__(self, other: object) -> bool:
        if type(other) is not _Key:
            return NotImplemented
        if self.key is other.key:
            return True
        if self.hash != other.hash:
            return False
        try:
            return bool(self.key == other.key)
        except Exception:  # noqa: BLE001 - a user's __eq__ must not crash the store
            return False

    def __repr__(self) -> str:
        return safe_repr(self.key)


def _key_of(key: object, operation: str) -> _Key:
    """The book's key for ``key``; ``TypeError`` naming it if it cannot be hashed."""
    if key is None:
        raise TypeError(f"{operation}: the idempotency key must not be None")
    try:
        return _Key(key)
    except Exception as exc:  # TypeError for a list; whatever a __hash__ raises
        raise TypeError(
            f"{operation}: the idempotency key {safe_repr(key)} cannot be hashed "
            f"({safe_repr(exc)}); keys must be hashable: a str, or a tuple of str and numbers"
        ) from exc


@attrs.define(eq=False)
class _Running:
    claim: int
    caller: Caller
    fingerprint: Hashable
    ref: MonitorRef | None = None
    waiters: list[tuple[int, Caller]] = attrs.field(factory=list)


@attrs.define(eq=False)
class _Remembered:
    result: object
    fingerprint: Hashable
    expires_at: float


class IdempotencyStore(GenServer):
    """Remembers key -> result for a time, so that work runs once per key.

    Example::

        store = await IdempotencyStore.start(ttl=3600.0, name="payments.idem")

        async def pay(key: str, order: Order) -> Receipt:
            return await IdempotencyStore.run_once(
                "payments.idem", key, charge_card, order, fingerprint=order.digest()
            )

    ``run_once(store, key, fn, *args)`` returns ``await fn(*args)``:

    * computed now, if no result is remembered for ``key``;
    * the remembered one, if the same key ran within the last ``ttl``
      seconds (the work does not run again);
    * the one of the run under way, if another request with the same key is
      running it right now: this request waits for it (up to ``timeout``).

    Failures are not remembered: if the work raises, the request that ran it
    and every request waiting for it raise that same exception, and the next
    request with the key runs the work again. If the task running the work
    goes away without an answer (it is cancelled, its call timed out, its
    actor died), the first request still waiting takes over and runs the
    work; with nobody waiting, the key is free again. So the work runs once
    per key while it succeeds, and is retried only after it failed or was
    abandoned.

    ``fingerprint``: a digest of the request (say a hash of the body). When a
    key comes back with a different fingerprint, ``run_once`` raises
    ``IdempotencyKeyReused`` instead of returning another request's result.

    How to supervise it: ``IdempotencyStore.child_spec(ttl=..., name=...)``.
    The book lives in memory: a restarted store has forgotten every key, so
    a retry after a crash of the store may run the work again. When the work
    must run once across restarts, keep the book in a database instead.

    Settings: ``ttl`` (seconds a result is remembered, counted on the loop
    clock from when it was recorded; default 300) and ``max_entries`` (the
    most results kept; beyond it the oldest is forgotten early; default
    None, no bound). Results are shared between the requests that get them:
    return immutable values.

    When *not* to use it: for work without side effects (just run it again),
    or to cache results for speed (the store never evicts by use, and it
    serialises every request through one actor).
    """

    ttl: float
    max_entries: int | None

    async def init(self, ttl: float = 300.0, max_entries: int | None = None) -> None:
        self.ttl = validate.duration(ttl, "ttl", where="IdempotencyStore", unlimited=True)
        self.max_entries = validate.count(
            max_entries, "max_entries", where="IdempotencyStore", optional=True
        )
        self._book: dict[_Key, _Running | _Remembered] = {}
        self._order: deque[tuple[float, _Key, _Remembered]] = deque()
        self._remembered = 0
        self._by_ref: dict[MonitorRef, tuple[_Key, int]] = {}
        self._runs = 0
        self._hits = 0
        self._joined = 0
        self._failures = 0
        self._abandoned = 0
        self._expired = 0

    @classmethod
    async def start(  # type: ignore[override]
        cls,
        ttl: float = 300.0,
        max_entries: int | None = None,
        name: str | None = None,
        **opts: Any,
    ) -> Pid:
        """Start a store that remembers results for ``ttl`` seconds.

        ``opts`` are ``GenServer.start``'s (``link``, ``mailbox_size``, ...).
        """
        validate.duration(ttl, "ttl", where="IdempotencyStore.start", unlimited=True)
        validate.count(max_entries, "max_entries", where="IdempotencyStore.start", optional=True)
        return await super().start(ttl=ttl, max_entries=max_entries, name=name, **opts)

    # -- client API ----------------------------------------------------------

    @staticmethod
    async def run_once(
        store: Pid | str,
        key: Hashable,
        fn: Callable[..., Awaitable[R]],
        *args: Any,
        fingerprint: Hashable = None,
        timeout: float | None = 5.0,
    ) -> R:
        """Return ``await fn(*args)``, running it at most once per ``key``.

        See the class documentation for what happens with a remembered key,
        a key whose work is under way, and a failed run. ``timeout`` bounds
        the wait for the store and for a run under way elsewhere (not the
        work this call runs itself): past it, ``CallTimeout``. Raises what
        the work raises, ``IdempotencyKeyReused`` for a reused key, and
        what ``call`` raises when the store is not there.
        """
        timeout = validate.duration(
            timeout, "timeout", where="run_once", optional=True, zero=True, unlimited=True
        )
        _key_of(key, "run_once")  # refused here, not in the store
        claim = next(_claims)
        try:
            reply = await call(store, _Claim(key, claim, fingerprint), timeout)
        except (NoProcess, ServerExited, MailboxFull, NoNodeError):
            raise  # the claim was never taken (or the store is gone): nothing to undo
        except BaseException:
            # Timed out or cancelled: the store may have just made us the
            # runner, or queued us as a waiter. Let it know we are gone.
            _tell(store, _Withdraw(key, claim))
            raise
        kind = type(reply)
        if kind is _Hit:
            result: R = reply.result
            return result
        if kind is _Error:
            raise reply.error
        if kind is _Conflict:
            raise IdempotencyKeyReused(
                f"idempotency key {safe_repr(key)} was used before for another request (its "
                f"fingerprint was {safe_repr(reply.fingerprint)}, this one is "
                f"{safe_repr(fingerprint)}) in store {store!r}; use a new key for a new request",
                key,
                store if type(store) is Pid else None,
            )
        if kind is not _Run:
            raise TypeError(
                f"run_once: {store!r} is not an IdempotencyStore (it said {safe_repr(reply)})"
            )
        try:
            value = await fn(*args)
        except Exception as exc:
            _tell(store, _Failed(key, claim, exc))
            raise
        except BaseException:
            _tell(store, _Withdraw(key, claim))
            raise
        _tell(store, _Completed(key, claim, value, now()))
        return value

    @staticmethod
    async def forget(store: Pid | str, key: Hashable, timeout: float | None = 5.0) -> bool:
        """Forget the remembered result of ``key``; return whether there was one.

        A run under way is not affected.
        """
        timeout = validate.duration(
            timeout,
            "timeout",
            where="IdempotencyStore.forget",
            optional=True,
            zero=True,
            unlimited=True,
        )
        _key_of(key, "IdempotencyStore.forget")
        forgotten: bool = await call(store, _Forget(key), timeout)
        return forgotten

    @staticmethod
    async def statistics(store: Pid | str, timeout: float | None = 5.0) -> IdempotencyStats:
        """A snapshot of what the store holds and did."""
        timeout = validate.duration(
            timeout,
            "timeout",
            where="IdempotencyStore.statistics",
            optional=True,
            zero=True,
            unlimited=True,
        )
        statistics = await call(store, _STATISTICS, timeout)
        if type(statistics) is not IdempotencyStats:
            raise TypeError(f"IdempotencyStore.statistics: {store!r} is not an IdempotencyStore")
        return statistics

    # -- callbacks -----------------------------------------------------------

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        self._purge(now())
        kind = type(request)
        if kind is _Claim or kind is _Forget:
            try:
                key = _key_of(request.key, "IdempotencyStore")
            except TypeError as exc:
                caller.fail(exc)  # the caller's error, not the store's crash
                return NOREPLY
            if kind is _Claim:
                return self._claim(key, request, caller)
            entry = self._book.get(key)
            if type(entry) is _Remembered:
                del self._book[key]
                self._remembered -= 1
                return True
            return False
        if request is _STATISTICS:
            return IdempotencyStats(
                remembered=self._remembered,
                running=len(self._book) - self._remembered,
                runs=self._runs,
                hits=self._hits,
                joined=self._joined,
                failures=self._failures,
                abandoned=self._abandoned,
                expired=self._expired,
            )
        raise TypeError(
            f"IdempotencyStore does not understand the call {safe_repr(request)}; use "
            "IdempotencyStore.run_once, forget or statistics"
        )

    async def handle_cast(self, request: Any) -> None:
        self._purge(now())
        kind = type(request)
        if kind is _Completed or kind is _Failed or kind is _Withdraw:
            try:
                key = _key_of(request.key, "IdempotencyStore")
            except TypeError:
                logger.exception("idempotency store %r: ignored an outcome", self_pid())
                return
            if kind is _Completed:
                self._completed(key, request)
            elif kind is _Failed:
                self._failed(key, request)
            else:
                self._withdraw(key, request.claim)
        else:
            raise TypeError(f"IdempotencyStore does not understand the cast {safe_repr(request)}")

    async def handle_info(self, message: Any) -> None:
        if type(message) is Down:
            found = self._by_ref.pop(message.ref, None)
            if found is not None:
                self._withdraw(*found)
            return
        await super().handle_info(message)

    # -- the book --------------------------------------------------------------

    def _claim(self, key: _Key, request: _Claim, caller: Caller) -> object:
        entry = self._book.get(key)
        if entry is not None:
            try:
                differs = _differs(entry.fingerprint, request.fingerprint)
            except Exception as exc:  # noqa: BLE001 - a user's __eq__ must not crash the store
                caller.fail(
                    TypeError(
                        f"run_once: the fingerprint {safe_repr(request.fingerprint)} of "
                        f"idempotency key {key!r} cannot be compared with the one "
                        f"recorded, {safe_repr(entry.fingerprint)} (== raised "
                        f"{safe_repr(exc)}); use a str or bytes digest as the fingerprint"
                    )
                )
                return NOREPLY
            if differs:
                return _Conflict(entry.fingerprint)
        if type(entry) is _Remembered:
            self._hits += 1
            return _Hit(entry.result)
        if type(entry) is _Running:
            self._joined += 1
            entry.waiters.append((request.claim, caller))
            return NOREPLY
        self._start_run(key, request.claim, caller, request.fingerprint)
        return NOREPLY

    def _start_run(self, key: _Key, claim: int, caller: Caller, fingerprint: Hashable) -> bool:
        """Make ``caller`` the runner of ``key``; False if it no longer waits."""
        if not caller.reply(_RUN):
            return False
        running = _Running(claim, caller, fingerprint)
        if caller.pid is not None:
            running.ref = monitor(caller.pid)
            self._by_ref[running.ref] = (key, claim)
        self._book[key] = running
        self._runs += 1
        return True

    def _running(self, key: _Key, claim: int) -> _Running | None:
        entry = self._book.get(key)
        if type(entry) is _Running and entry.claim == claim:
            return entry
        return None

    def _end_run(self, key: _Key, running: _Running) -> None:
        del self._book[key]
        if running.ref is not None:
            self._by_ref.pop(running.ref, None)
            demonitor(running.ref, flush=True)

    def _completed(self, key: _Key, request: _Completed) -> None:
        running = self._running(key, request.claim)
        if running is None:
            if key in self._book:
                return  # a stale runner: the key was handed to another one
            fingerprint: Hashable = None  # a store restarted under a runner: keep the result
            waiters: list[tuple[int, Caller]] = []
        else:
            self._end_run(key, running)
            fingerprint = running.fingerprint
            waiters = running.waiters
        remembered = _Remembered(request.result, fingerprint, request.at + self.ttl)
        self._book[key] = remembered
        self._remembered += 1
        self._order.append((remembered.expires_at, key, remembered))
        if self.max_entries is not None and self._remembered > self.max_entries:
            self._drop_oldest()
        hit = _Hit(request.result)
        for _claim, waiter in waiters:
            waiter.reply(hit)

    def _failed(self, key: _Key, request: _Failed) -> None:
        running = self._running(key, request.claim)
        if running is None:
            return
        self._failures += 1
        self._end_run(key, running)
        error = _Error(request.error)
        for _claim, waiter in running.waiters:
            waiter.reply(error)

    def _withdraw(self, key: _Key, claim: int) -> None:
        entry = self._book.get(key)
        if type(entry) is not _Running:
            return
        if entry.claim != claim:
            entry.waiters = [(c, w) for c, w in entry.waiters if c != claim]
            return
        self._abandoned += 1
        self._end_run(key, entry)
        waiters = entry.waiters
        while waiters:
            next_claim, waiter = waiters.pop(0)
            self._joined -= 1  # it runs the work now, it no longer joins a run
            if self._start_run(key, next_claim, waiter, entry.fingerprint):
                new = self._book[key]
                assert type(new) is _Running
                new.waiters = waiters
                return

    def _purge(self, t: float) -> None:
        order = self._order
        while order and order[0][0] <= t:
            _, key, remembered = order.popleft()
            if self._book.get(key) is remembered:
                del self._book[key]
                self._remembered -= 1
                self._expired += 1

    def _drop_oldest(self) -> None:
        order = self._order
        while order:
            _, key, remembered = order.popleft()
            if self._book.get(key) is remembered:
                del self._book[key]
                self._remembered -= 1
                return


def _differs(a: Hashable, b: Hashable) -> bool:
    return a is not None and b is not None and a is not b and bool(a != b)


def _tell(store: Pid | str, message: object) -> None:
    """Cast an outcome to the store as a system message, which no bound of its
    mailbox refuses or drops: a lost outcome would leave its key "running"
    for good. If the store is gone there is nobody left to tell."""
    try:
        pid = lookup(store, "IdempotencyStore")
        if pid is not None:
            deliver_system(pid, Cast(message))
    except (NoProcess, NoNodeError):
        logger.warning(
            "idempotency store %r is gone; could not record %s (a retry may run the work again)",
            store,
            safe_repr(message),
        )
