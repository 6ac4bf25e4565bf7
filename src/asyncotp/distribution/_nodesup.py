"""Supervising node processes: N nodes from one program, restarted when they die.

Each node process is owned by a small GenServer (``NodePort``) that starts
the OS process in ``init`` and ends when the process ends: with ``NORMAL``
for exit code 0 and ``NodeProcessExited(name, code)`` otherwise. The ports
are children of an ordinary ``Supervisor``, so a dead node process is
restarted with the in-process supervisors' own rules: restart intensity
(``max_restarts`` within ``max_seconds``, then the supervisor gives up),
``Restart`` kinds, shutdown in reverse start order. What PM2 users know:

* ``restart_delay``: seconds to wait before each restart (a ``Backoff``
  with a constant delay);
* ``max_restarts`` / ``max_seconds``: OTP's restart intensity;
* ``min_uptime``: a process that exits within ``min_uptime`` seconds of its
  start has not started: its port's ``start`` fails, which the supervisor
  counts like any failed restart.

Stopping a port (shutdown, ``terminate_child``) sends the process SIGTERM,
waits ``stop_timeout`` seconds, then SIGKILL. If the port itself is
killed, its exit callback kills the process: no node outlives its port.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from .._core import NORMAL, Backoff, ChildSpec, Pid, Restart, Stop, on_exit, self_pid, send
from ..actors import Caller, GenServer
from ..supervision import Supervisor


@attrs.frozen
class NodeProcessExited:
    """The exit reason of a ``NodePort`` whose OS process ended with a
    non-zero ``code`` (negative: killed by that signal)."""

    node: str
    code: int


@attrs.frozen
class _ProcessEnded:
    code: int


class NodePort(GenServer):
    """Owns one node's OS process; ends when it ends."""

    async def init(
        self,
        node: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None,
        min_uptime: float,
        stop_timeout: float,
    ) -> None:
        self.node = node
        self.stop_timeout = stop_timeout
        self.process = await asyncio.create_subprocess_exec(
            *argv, env=None if env is None else dict(env)
        )
        process = self.process
        on_exit(self_pid(), lambda _reason: _kill_if_running(process))
        if min_uptime > 0:
            with contextlib.suppress(TimeoutError):
                code = await asyncio.wait_for(asyncio.shield(process.wait()), min_uptime)
                raise RuntimeError(
                    f"node process {node!r} exited with code {code} within min_uptime "
                    f"({min_uptime} s) of its start: it did not start"
                )
        me = self_pid()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(me))

    async def _watch(self, me: Pid) -> None:
        code = await self.process.wait()
        send(me, _ProcessEnded(code))

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "os_pid":
            return self.process.pid
        raise ValueError(f"NodePort {self.node!r}: unknown request {request!r}")

    async def handle_info(self, message: Any) -> None:
        if isinstance(message, _ProcessEnded):
            code = message.code
            raise Stop(NORMAL if code == 0 else NodeProcessExited(self.node, code))

    async def terminate(self, reason: object) -> None:
        process = self.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self.stop_timeout)
            except TimeoutError:
                _kill_if_running(process)
                await process.wait()


def _kill_if_running(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


def node_child_spec(
    node: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    restart_delay: float = 0.0,
    min_uptime: float = 1.0,
    stop_timeout: float = 5.0,
    restart: Restart = Restart.PERMANENT,
) -> ChildSpec:
    """A child spec for one node process (``argv`` run as is), for a supervisor."""
    if not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError(f"node_child_spec: argv must be a non-empty list of str, not {argv!r}")
    backoff = (
        Backoff(initial=restart_delay, max=restart_delay, multiplier=1.0, jitter=0.0)
        if restart_delay > 0
        else None
    )
    start = functools.partial(
        NodePort.start,
        node,
        list(argv),
        env,
        min_uptime,
        stop_timeout,
        timeout=min_uptime + 5.0,
    )
    return ChildSpec(
        id=node, start=start, restart=restart, shutdown=stop_timeout + 1.0, backoff=backoff
    )


async def start_nodes(
    command: Sequence[str] | Callable[[str], Sequence[str]],
    *,
    count: int | None = None,
    names: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    restart_delay: float = 0.0,
    max_restarts: int = 3,
    max_seconds: float = 5.0,
    min_uptime: float = 1.0,
    stop_timeout: float = 5.0,
    name: str | None = None,
    link: bool = False,
) -> Pid:
    """Start node processes under a supervisor; return the supervisor's pid.

    ``command`` is the argv of one node, in which ``{node}`` is replaced by
    the node's name (or a function of the name returning the argv). The
    nodes are ``names``, or ``node-1`` .. ``node-<count>`` (``count``
    defaults to the number of CPUs). See the module's documentation for
    the restart settings.
    """
    if names is None:
        total = count if count is not None else (os.cpu_count() or 1)
        if not isinstance(total, int) or total < 1:
            raise ValueError(f"start_nodes: count must be an int >= 1, not {count!r}")
        names = [f"node-{i}" for i in range(1, total + 1)]

    def argv_of(node: str) -> list[str]:
        if callable(command):
            return list(command(node))
        return [part.replace("{node}", node) for part in command]

    specs = [
        node_child_spec(
            node,
            argv_of(node),
            env=env,
            restart_delay=restart_delay,
            min_uptime=min_uptime,
            stop_timeout=stop_timeout,
        )
        for node in names
    ]
    return await Supervisor.start(
        specs, max_restarts=max_restarts, max_seconds=max_seconds, name=name, link=link
    )
