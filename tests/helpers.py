"""Helpers shared by the tests of every folder (import them from ``tests.helpers``).

The kit, ``asyncotp.testing``, comes first: ``VirtualClock``, ``Probe``,
``wait_for_exit``, ``wait_for_restart``, ``settle`` and the plugin's fixtures.
What is here is what the tests need besides: running code as an actor and
handing its result back (``in_actor``), reading the calling actor's own
mailbox (``drain``, ``down_of``), a future of an actor's exit reason seen by
a monitor that is in place before the test goes on (``watch``; the kit's
``wait_for_exit`` must already be waiting when the actor ends), holding a
callback busy (``Gate``), and running the examples and application scripts
as programs (``run_example``, ``AppProcess``).

Every wait is bounded (``WAIT``) and waits on an event, never on a sleep.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import anyio
import attrs

from asyncotp import Down, MonitorRef, Pid, ReceiveTimeout, monitor, receive, spawn

T = TypeVar("T")

WAIT = 5.0
"""Upper bound for anything the tests wait on; never reached when they pass."""

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root."""

EXAMPLES = ROOT / "examples"


async def wait(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``, failing the test after ``WAIT`` seconds."""
    with anyio.fail_after(WAIT):
        return await awaitable


async def in_actor(fn: Callable[[], Awaitable[T]], **spawn_options: Any) -> T:
    """Run ``fn()`` as an actor and return its result (or raise its error) here.

    ``spawn_options`` go to ``spawn`` (``name=``, ``trap_exits=``, ...). An
    actor cancelled before it returns cancels the wait; one that ends in any
    other way without returning fails it.
    """
    result: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    async def body() -> None:
        try:
            result.set_result(await fn())
        except asyncio.CancelledError:
            result.cancel()
            raise
        except Exception as exc:
            result.set_exception(exc)
        finally:
            if not result.done():
                result.set_exception(AssertionError("the actor ended before it returned"))

    spawn(body, **spawn_options)
    return await wait(result)


async def watch(pid: Pid) -> asyncio.Future[object]:
    """Monitor ``pid`` from a helper actor; return, once the monitor is in
    place, a future of its exit reason (the reason of its ``Down``)."""
    loop = asyncio.get_running_loop()
    armed: asyncio.Future[None] = loop.create_future()
    reason: asyncio.Future[object] = loop.create_future()

    async def watcher() -> None:
        ref = monitor(pid)
        armed.set_result(None)
        down = await receive(lambda m: isinstance(m, Down) and m.ref is ref)
        reason.set_result(down.reason)

    spawn(watcher)
    await wait(armed)
    return reason


@attrs.define(eq=False)
class Gate:
    """Holds a callback busy: it sets ``entered``, then waits for ``opened``."""

    entered: asyncio.Event = attrs.field(factory=asyncio.Event)
    opened: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def pass_through(self) -> None:
        self.entered.set()
        await self.opened.wait()

    def open(self) -> None:
        self.opened.set()


async def started(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Start ``coro`` in a task and let it run to its first await (a call
    delivers its request synchronously: by then it is in the mailbox)."""
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(0)  # one scheduling step, not a wait for time
    return task


# -- inside an actor ------------------------------------------------------------------


async def down_of(ref: MonitorRef) -> Down:
    """In an actor: wait for the ``Down`` of monitor ``ref``."""
    down = await receive(lambda m: isinstance(m, Down) and m.ref is ref, timeout=WAIT)
    assert isinstance(down, Down)
    return down


async def drain() -> list[object]:
    """In an actor: every message in its mailbox, oldest first, without waiting."""
    messages = []
    while True:
        try:
            messages.append(await receive(timeout=0))
        except ReceiveTimeout:
            return messages


# -- programs -------------------------------------------------------------------------


def run_example(name: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` as a program; its output, as text."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def plugin_args() -> list[str]:
    """pytest arguments that load the asyncotp plugin by hand unless its entry
    point is installed."""
    installed = importlib.metadata.entry_points(group="pytest11", name="asyncotp")
    return [] if installed else ["-p", "asyncotp.testing.plugin"]


LINE_TIMEOUT = 20.0
"""Upper bound for a program to print a line it is expected to print."""
EXIT_TIMEOUT = 20.0
"""Upper bound for a program to exit once it is expected to."""


class AppProcess:
    """A running application script whose stdout is read line by line."""

    def __init__(self, script: Path, mode: str, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        with stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), mode],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=script.parent,
            )
        self.lines: list[str] = []
        self._buffer = b""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def expect(self, wanted: str, timeout: float = LINE_TIMEOUT) -> None:
        """Read stdout until the line ``wanted`` appears."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n", 1)
                line = raw.decode()
                self.lines.append(line)
                if line == wanted:
                    return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no line {wanted!r} within {timeout} s; stdout so far: {self.lines!r}; "
                    f"stderr:\n{self.stderr()}"
                )
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(
                        f"the program ended (exit code {self.proc.wait()}) before printing "
                        f"{wanted!r}; stdout: {self.lines!r}; stderr:\n{self.stderr()}"
                    )
                self._buffer += chunk

    def send(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = EXIT_TIMEOUT) -> int:
        """Wait for the program to exit; return its exit code (all stdout is then in lines)."""
        rest, _ = self.proc.communicate(timeout=timeout)
        text = (self._buffer + rest).decode()
        self._buffer = b""
        self.lines.extend(text.splitlines())
        return self.proc.returncode
