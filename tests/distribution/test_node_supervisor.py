"""Supervising node processes: a killed node process is restarted after
its restart delay, one that dies within min_uptime has not started, and
stopping the supervisor stops the processes (no NATS needed: the
supervisor does not care what the process runs)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import pytest

import asyncotp
from asyncotp import Down, StartError, call, monitor, receive, stop, which_children
from asyncotp.distribution import start_nodes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(30)]

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)", "{node}"]


def gone(os_pid: int) -> bool:
    try:
        os.kill(os_pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_killed_node_process_is_restarted_after_its_restart_delay(
    node: asyncotp.Node,
) -> None:
    async def body() -> None:
        sup = await start_nodes(SLEEPER, count=2, min_uptime=0.1, restart_delay=0.4)
        children = await which_children(sup)
        assert [c.id for c in children] == ["node-1", "node-2"]
        port = children[0].pid
        assert port is not None
        os_pid = await call(port, "os_pid")
        ref = monitor(port)
        os.kill(os_pid, signal.SIGKILL)
        down = await receive(lambda m: isinstance(m, Down) and m.ref is ref, timeout=5)
        assert down.reason.code == -signal.SIGKILL
        lost_at = time.monotonic()
        while (new_port := (await which_children(sup))[0].pid) is None:
            await _tick()
        assert time.monotonic() - lost_at >= 0.35
        new_os_pid = await call(new_port, "os_pid")
        assert new_os_pid != os_pid
        pids = [await call(c.pid, "os_pid") for c in await which_children(sup) if c.pid]
        await stop(sup, timeout=10)
        assert all(gone(p) for p in pids)

    await _as_actor(body)


async def test_a_node_process_that_dies_within_min_uptime_has_not_started(
    node: asyncotp.Node,
) -> None:
    async def body() -> None:
        quitter = [sys.executable, "-c", "raise SystemExit(3)"]
        with pytest.raises(StartError):
            await start_nodes(quitter, count=1, min_uptime=2.0)

    await _as_actor(body)


async def _tick() -> None:
    """Wait 20 ms inside the actor (the supervisor's restart has no event to wait on)."""
    with pytest.raises(asyncotp.ReceiveTimeout):
        await receive(lambda _m: False, timeout=0.02)


async def _as_actor(fn: Callable[[], Awaitable[None]]) -> None:
    """Run ``fn`` as an actor (it monitors and receives) and re-raise its error."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def actor() -> None:
        try:
            await fn()
        except BaseException as exc:
            done.set_exception(exc)
            raise
        done.set_result(None)

    asyncotp.spawn(actor)
    await asyncio.wait_for(done, 25)


def test_the_command_line_runs_the_nodes_restarts_a_killed_one_and_stops_on_sigterm() -> None:
    node_code = (
        "import os, sys, time; print('up', sys.argv[1], os.getpid(), flush=True); time.sleep(60)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asyncotp.distribution.nodes",
            "--count",
            "2",
            "--min-uptime",
            "0.1",
            "--",
            sys.executable,
            "-c",
            node_code,
            "{node}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert cli.stdout is not None
        ups = [cli.stdout.readline().split() for _ in range(2)]
        assert sorted(up[1] for up in ups) == ["node-1", "node-2"]
        os.kill(int(ups[0][2]), signal.SIGKILL)
        again = cli.stdout.readline().split()
        assert again[1] == ups[0][1]
        assert again[2] != ups[0][2]
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(timeout=20) == 0
        assert gone(int(again[2]))
        assert gone(int(ups[1][2]))
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if cli.stdout is not None:
            cli.stdout.close()
