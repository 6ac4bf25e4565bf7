"""Fault injection: crash or kill an actor, fail a child's next starts, and
drop, delay or hold messages between actors."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, final

import attrs

from .._core import (
    NOPROC,
    ChildSpec,
    MailboxFull,
    Node,
    Pid,
    StartError,
    WaitTimeout,
    current_node,
    deliver,
    exit_future,
    interceptor,
    is_alive,
    loop_of,
    process_info,
    registered_name,
    request_stop,
    set_interceptor,
)
from .._core import kill as core_kill


class InjectedFault(Exception):
    """The default reason of ``crash`` and the cause of a failing start.

    Its repr is valid Python (``InjectedFault('injected')``), so shrunk
    schedules print readably.
    """


def _live(pid: Pid, operation: str) -> bool:
    if type(pid) is not Pid:
        raise TypeError(f"{operation}: expected a Pid, not {pid!r}")
    return is_alive(pid)


async def _await_exit(pid: Pid, fut: asyncio.Future[object], timeout: float, what: str) -> object:
    try:
        async with asyncio.timeout(timeout):
            return await fut
    except TimeoutError:
        info = process_info(pid)
        raise WaitTimeout(
            f"{what}: {pid!r} did not end within {timeout} s "
            f"({info.status if info else 'gone'}); a GenServer ends once its running "
            "callback returns: use kill() to cut it short"
        ) from None


async def crash(pid: Pid, reason: object = None, *, timeout: float = 5.0) -> object:
    """Make the actor ``pid`` end with ``reason`` and return that reason once
    it has ended (``NOPROC`` if it was already gone).

    ``reason`` defaults to ``InjectedFault("injected")``. The crash cannot
    be trapped, as if the actor's own code had failed: a GenServer (a
    supervisor too) ends as soon as its running callback returns and runs
    ``terminate(reason)`` (a supervisor stops its children); a plain actor
    ends at once. Links and monitors see ``reason``; its supervisor handles
    it as any exit. A clean reason (``NORMAL``, ``SHUTDOWN``,
    ``Shutdown(...)``) exercises transient children.
    """
    if not _live(pid, "crash"):
        return NOPROC
    if reason is None:
        reason = InjectedFault("injected")
    fut = exit_future(pid)
    request_stop(pid, reason)
    return await _await_exit(pid, fut, timeout, "crash")


async def kill(pid: Pid, *, timeout: float = 5.0) -> object:
    """Kill the actor ``pid`` (the untrappable ``KILL``: no ``terminate``) and
    return its exit reason, ``KILLED``, once it has ended (``NOPROC`` if it
    was already gone)."""
    if not _live(pid, "kill"):
        return NOPROC
    fut = exit_future(pid)
    core_kill(pid)
    return await _await_exit(pid, fut, timeout, "kill")


_failing_starts: weakref.WeakSet[FailingStart] = weakref.WeakSet()


@final
class FailingStart:
    """A child's start function that fails its next ``remaining`` calls.

    ``fail_init`` puts one in a ``ChildSpec``. Each failing call raises
    ``StartError`` (its reason an ``InjectedFault``) without starting
    anything, as a start whose ``init`` raised would; the supervisor reports
    it and retries (each retry counts toward its restart intensity). Once
    the failures are used up, calls go to the wrapped start function.
    ``fail_next(k)`` arms ``k`` more failures at any time.
    """

    __slots__ = ("__weakref__", "child_id", "inner", "last_pid", "remaining", "starts")

    def __init__(self, inner: Callable[[], Any], child_id: object, times: int) -> None:
        self.inner = inner
        self.child_id = child_id
        self.remaining = times
        self.starts = 0
        """How many times the wrapped start function was called."""
        self.last_pid: Pid | None = None
        """The pid of the last actor it started."""
        _failing_starts.add(self)

    def fail_next(self, times: int = 1) -> None:
        """Make the next ``times`` calls fail too (on top of any still armed)."""
        _check_times(times, "FailingStart.fail_next")
        self.remaining += times

    async def __call__(self) -> Pid | None:
        if self.remaining > 0:
            self.remaining -= 1
            fault = InjectedFault(f"start of {self.child_id!r} failed on purpose")
            raise StartError(
                f"child {self.child_id!r}: start failure injected by asyncotp.testing "
                f"({self.remaining} more to come)",
                fault,
            ) from fault
        self.starts += 1
        pid: Pid | None = await self.inner()
        self.last_pid = pid
        return pid

    def __repr__(self) -> str:
        return f"<FailingStart {self.child_id!r} remaining={self.remaining}>"


def failing_start_of(pid: Pid) -> FailingStart | None:
    """The ``FailingStart`` that started ``pid`` last, if any."""
    for start in list(_failing_starts):
        if start.last_pid is pid:
            return start
    return None


def _check_times(times: object, operation: str) -> None:
    if isinstance(times, bool) or not isinstance(times, int) or times < 0:
        raise ValueError(f"{operation}: times must be an int >= 0, not {times!r}")


def fail_init(spec: ChildSpec, times: int = 1) -> ChildSpec:
    """A copy of ``spec`` whose start fails the next ``times`` times.

    The failures are shared by every (re)start of the returned spec: with
    ``times=2`` under a supervisor, the first two restarts fail and the third
    succeeds. ``times=0`` makes a spec whose failures can be armed later
    through ``spec.start.fail_next(k)`` (``SupervisionMachine`` finds such
    specs in a running tree and injects failures into them).
    """
    if not isinstance(spec, ChildSpec):
        raise TypeError(f"fail_init: expected a ChildSpec, not {spec!r}")
    _check_times(times, "fail_init")
    return attrs.evolve(spec, start=FailingStart(spec.start, spec.id, times))


# -- messages ------------------------------------------------------------------


Endpoint = Pid | str | None
"""A pid, a registered name (whoever holds it when the message is sent), or
None (anyone, including tasks that are not actors, as senders)."""


@final
@attrs.define(eq=False)
class MessageRule:
    """One rule of a ``MessageFaults``: which messages it takes, and what it
    does with them (``"drop"``, ``"delay"`` or ``"hold"``)."""

    action: str
    sender: Endpoint
    dest: Endpoint
    match: Callable[[object], bool] | None
    times: int | None
    seconds: float = 0.0
    taken: list[tuple[Pid | None, Pid, object]] = attrs.field(factory=list)
    """Every message this rule took, as ``(sender, dest, message)`` (a cast
    shown as a ``Cast``)."""
    held: list[tuple[Pid, object]] = attrs.field(factory=list)
    active: bool = True
    _faults: MessageFaults | None = None

    def cancel(self) -> None:
        """Stop taking messages (held ones stay held until ``release``)."""
        self.active = False

    def release(self) -> int:
        """Deliver the held messages now, in order; return how many."""
        held, self.held = self.held, []
        for dest, message in held:
            _redeliver(dest, message)
        return len(held)


def _redeliver(dest: Pid, message: object) -> None:
    with contextlib.suppress(MailboxFull):  # counted in `rejected`; nobody to tell
        deliver(dest, message)


def _endpoint_matches(endpoint: Endpoint, node: Node, pid: Pid | None) -> bool:
    if endpoint is None:
        return True
    if pid is None:
        return False
    if type(endpoint) is Pid:
        return endpoint is pid
    return registered_name(pid) == endpoint


class MessageFaults:
    """Drop, delay or hold messages between actors, through ``Node.intercept``.

    Example::

        with MessageFaults() as faults:
            faults.drop(sender=front, dest="gateway")          # every message
            late = faults.delay(dest=ledger, seconds=2.0, times=1)
            held = faults.hold(dest="cache")
            ...
            held.release()

    Rules see user messages: ``send``, ``cast`` (a ``Cast``) and ``call`` (a
    ``Caller``, whose ``request`` is the request). Exit signals, ``Down`` and
    ``Exited`` messages and ``send_after`` timers are not intercepted. The
    first active rule that matches a message takes it. A dropped call waits
    out its timeout; a delayed one may arrive after its caller gave up. On
    exit the previous interceptor is restored; delayed messages still arrive
    at their time and held ones stay held until released.
    """

    def __init__(self) -> None:
        self.rules: list[MessageRule] = []
        self._node: Node | None = None
        self._previous: Callable[[Pid | None, Pid, object], bool] | None = None
        self._handles: list[asyncio.TimerHandle] = []

    def __enter__(self) -> MessageFaults:
        node = current_node()
        self._node = node
        self._previous = set_interceptor(node, self._intercept)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        node = self._node
        if node is not None and interceptor(node) == self._intercept:
            set_interceptor(node, self._previous)
        self._node = None

    def _add(self, rule: MessageRule) -> MessageRule:
        if self._node is None:
            raise RuntimeError("MessageFaults: add rules inside `with MessageFaults() as faults:`")
        if rule.times is not None:
            _check_times(rule.times, f"MessageFaults.{rule.action}")
        for endpoint in (rule.sender, rule.dest):
            if endpoint is not None and type(endpoint) is not Pid and not isinstance(endpoint, str):
                raise TypeError(
                    f"MessageFaults.{rule.action}: sender and dest are a Pid, a registered name "
                    f"or None, not {endpoint!r}"
                )
        rule._faults = self  # noqa: SLF001 - the rule and its owner, one module
        rule.active = rule.times != 0
        self.rules.append(rule)
        return rule

    def drop(
        self,
        *,
        sender: Endpoint = None,
        dest: Endpoint = None,
        match: Callable[[object], bool] | None = None,
        times: int | None = None,
    ) -> MessageRule:
        """Drop the messages from ``sender`` to ``dest`` that ``match``
        accepts (all if None), the next ``times`` of them (all if None)."""
        return self._add(MessageRule("drop", sender, dest, match, times))

    def delay(
        self,
        seconds: float,
        *,
        sender: Endpoint = None,
        dest: Endpoint = None,
        match: Callable[[object], bool] | None = None,
        times: int | None = None,
    ) -> MessageRule:
        """Deliver those messages ``seconds`` later (loop time) instead of now."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"MessageFaults.delay: seconds must be >= 0, not {seconds!r}")
        return self._add(MessageRule("delay", sender, dest, match, times, float(seconds)))

    def hold(
        self,
        *,
        sender: Endpoint = None,
        dest: Endpoint = None,
        match: Callable[[object], bool] | None = None,
        times: int | None = None,
    ) -> MessageRule:
        """Keep those messages until ``rule.release()`` delivers them, in order."""
        return self._add(MessageRule("hold", sender, dest, match, times))

    def _intercept(self, sender: Pid | None, dest: Pid, message: object) -> bool:
        node = self._node
        if node is not None and self.rules:
            # A cast reaches an interceptor as its public envelope, a Cast.
            view = message
            for rule in self.rules:
                if not rule.active:
                    continue
                if not _endpoint_matches(rule.dest, node, dest):
                    continue
                if not _endpoint_matches(rule.sender, node, sender):
                    continue
                if rule.match is not None and not rule.match(view):
                    continue
                rule.taken.append((sender, dest, view))
                if rule.times is not None and len(rule.taken) >= rule.times:
                    rule.active = False
                if rule.action == "delay":
                    self._handles.append(
                        loop_of(node).call_later(rule.seconds, _redeliver, dest, message)
                    )
                elif rule.action == "hold":
                    rule.held.append((dest, message))
                return False
        previous = self._previous
        return previous is None or previous(sender, dest, message)
