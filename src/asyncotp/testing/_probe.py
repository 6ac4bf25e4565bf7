"""``Probe``: an actor that collects its messages for a test to expect.

A test is not an actor: it has no mailbox. A probe is one: other actors send
to ``probe.pid``, and the test takes the messages with ``await
probe.expect(...)``, which waits (bounded) and, when nothing suitable
arrives, fails with the list of what did.
"""

from __future__ import annotations

import asyncio
import pprint
from collections.abc import Callable
from typing import Any, final

from .._core import (
    NORMAL,
    Exited,
    MonitorRef,
    Pid,
    WaitTimeout,
    deliver_system,
    exit_future,
    is_exiting,
    link,
    monitor,
    node_of,
    receive,
    request_stop,
    spawn,
)
from .._core import node_pid as core_node_pid


@final
class _Command:
    """Run ``fn(*args)`` inside the probe actor (for ``monitor``, ``link``)."""

    __slots__ = ("args", "fn", "fut")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], fut: asyncio.Future[Any]
    ) -> None:
        self.fn = fn
        self.args = args
        self.fut = fut


def _matcher(match: object) -> Callable[[object], bool]:
    if match is None:
        return lambda _message: True
    if isinstance(match, type):
        cls = match
        return lambda message: isinstance(message, cls)
    if callable(match):
        return match
    return lambda message: bool(message == match)


def _describe_match(match: object) -> str:
    if match is None:
        return "any message"
    if isinstance(match, type):
        return f"an instance of {match.__qualname__}"
    if callable(match):
        return f"a message accepted by {getattr(match, '__qualname__', None) or match!r}"
    return f"a message equal to {match!r}"


@final
class Probe:
    """An actor that collects every message it receives, for a test to expect.

    Example::

        probe = await Probe.start()
        send_after(1.0, probe.pid, "tick")
        assert await probe.expect("tick", timeout=2.0) == "tick"
        await probe.monitor(worker)
        down = await probe.expect(Down)

    ``match`` (in ``expect`` and ``expect_no_message``) is None (any
    message), a class (its instances), a callable predicate, or a value
    (messages equal to it). Messages that do not match stay pending, in
    order (like a selective receive).
    """

    __slots__ = ("_changed", "_history", "_pending", "pid")

    def __init__(self, pid: Pid) -> None:
        self.pid = pid
        """The probe's pid: give it to the actors that should reach the test."""
        self._pending: list[Any] = []
        self._history: list[Any] = []
        self._changed: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<Probe {self.pid!r} {len(self._pending)} pending>"

    @classmethod
    async def start(cls, *, name: str | None = None, trap_exits: bool = False) -> Probe:
        """Start a probe actor (registered as ``name`` if given).

        ``trap_exits=True``: exit signals from linked actors arrive as
        ``Exited`` messages instead of ending the probe.
        """
        box: list[Probe] = []

        async def collect() -> None:
            probe = box[0]
            node_pid = core_node_pid(node_of(probe.pid))
            while True:
                message = await receive()
                if type(message) is Exited and message.pid is node_pid:
                    return  # the node shuts down (a trapping probe gets it as a message)
                if type(message) is _Command:
                    try:
                        result = message.fn(*message.args)
                    except Exception as exc:  # noqa: BLE001 - handed back to the test
                        if not message.fut.done():
                            message.fut.set_exception(exc)
                    else:
                        if not message.fut.done():
                            message.fut.set_result(result)
                    continue
                probe._arrived(message)  # noqa: SLF001 - the probe's own actor

        pid = spawn(collect, name=name, trap_exits=trap_exits)
        probe = cls(pid)
        box.append(probe)
        return probe

    def _arrived(self, message: object) -> None:
        self._pending.append(message)
        self._history.append(message)
        changed = self._changed
        if changed is not None:
            self._changed = None
            if not changed.done():
                changed.set_result(None)

    # -- reading -----------------------------------------------------------

    @property
    def pending(self) -> list[Any]:
        """Messages received and not yet taken by ``expect``, oldest first."""
        return list(self._pending)

    @property
    def received(self) -> list[Any]:
        """Every message received so far, taken or not, oldest first."""
        return list(self._history)

    def take(self, match: object = None) -> Any | None:
        """Take the oldest pending message that matches, without waiting; None if none."""
        accept = _matcher(match)
        for index, message in enumerate(self._pending):
            if accept(message):
                del self._pending[index]
                return message
        return None

    async def expect(self, match: object = None, *, timeout: float = 5.0) -> Any:
        """Take the oldest message that matches, waiting up to ``timeout``
        seconds (loop time: virtual under a ``VirtualClock``).

        ``WaitTimeout`` if none arrives in time; its message lists the
        messages that did arrive.
        """
        accept = _matcher(match)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                start = 0
                while True:
                    for index in range(start, len(self._pending)):
                        if accept(self._pending[index]):
                            return self._pending.pop(index)
                    start = len(self._pending)
                    changed = self._changed = loop.create_future()
                    await changed
        except TimeoutError:
            raise WaitTimeout(
                f"{self!r} got no {_describe_match(match)} within {timeout} s; "
                + self._what_arrived()
            ) from None

    async def expect_no_message(self, match: object = None, *, within: float = 0.1) -> None:
        """Fail if a matching message is pending or arrives within ``within``
        seconds (cheap under a ``VirtualClock``: time jumps)."""
        accept = _matcher(match)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        start = 0
        while True:
            for index in range(start, len(self._pending)):
                message = self._pending[index]
                if accept(message):
                    raise AssertionError(
                        f"{self!r} received {message!r} ({_describe_match(match)}) and "
                        "expected none"
                    )
            start = len(self._pending)
            left = deadline - loop.time()
            if left <= 0:
                return
            changed = self._changed = loop.create_future()
            try:
                async with asyncio.timeout(left):
                    await changed
            except TimeoutError:
                return

    def _what_arrived(self) -> str:
        if not self._history:
            return "it received no message at all"
        taken = len(self._history) - len(self._pending)
        pending = pprint.pformat(self._pending, width=100) if self._pending else "none"
        return (
            f"it received {len(self._history)} message(s), {taken} already taken; "
            f"pending: {pending}"
        )

    # -- acting as the probe actor ---------------------------------------

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if is_exiting(self.pid):
            raise RuntimeError(f"{self!r} has stopped")
        deliver_system(self.pid, _Command(fn, args, fut))
        return await fut

    async def monitor(self, pid: Pid | str) -> MonitorRef:
        """Make the probe monitor ``pid``: its ``Down`` message arrives here."""
        ref: MonitorRef = await self._run(monitor, pid)
        return ref

    async def link(self, pid: Pid) -> None:
        """Link the probe to ``pid`` (start it with ``trap_exits=True`` to
        receive ``Exited`` instead of ending with it)."""
        await self._run(link, pid)

    async def stop(self) -> None:
        """End the probe actor."""
        if is_exiting(self.pid):
            return
        done = exit_future(self.pid)
        request_stop(self.pid, NORMAL)
        await done
