"""Test helpers for distribution: a nats-server process, nodes hosted in
this process (each in a task of its own, with its own context), and node
processes started from ``node_script.py``."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import asyncotp
from asyncotp import distribution
from asyncotp.distribution import NatsCluster

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "node_script.py"
ROOT = HERE.parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class NatsServer:
    """One ``nats-server -js`` on loopback."""

    def __init__(self, binary: str, store: Path, *extra: str, jetstream: bool = True) -> None:
        self.binary = binary
        self.store = store
        self.extra = extra
        self.jetstream = jetstream
        self.port = free_port()
        self.monitor_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.start_process()
        self.wait_ready()

    def start_process(self) -> None:
        self.proc = subprocess.Popen(
            [
                *(self.binary, "-a", "127.0.0.1", "-p", str(self.port)),
                *("-m", str(self.monitor_port)),
                *(("-js", "-sd", str(self.store)) if self.jetstream else ()),
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        assert self.proc is not None
        # Ready when its health check (JetStream included) says so: clients
        # that connect while JetStream is still starting can see interest
        # they registered vanish.
        health = f"http://127.0.0.1:{self.monitor_port}/healthz"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=1) as answer:
                if answer.status == 200:
                    return
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}")
            time.sleep(0.02)
        self.kill()
        raise RuntimeError("nats-server did not start within 10 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def fast_cluster(url: str, prefix: str, **options: Any) -> NatsCluster:
    """A cluster with heartbeats fast enough for tests (a node is lost
    after 1 s of silence)."""
    options.setdefault("heartbeat_interval", 0.2)
    options.setdefault("heartbeat_window", 1.0)
    return NatsCluster(servers=url, prefix=prefix, **options)


class Host:
    """A node of this process, running in a task of its own: ``on(fn)``
    runs ``fn()`` in a task of that node."""

    def __init__(self, name: str, cluster: NatsCluster) -> None:
        self.name = name
        self.cluster = cluster
        self._ctx: contextvars.Context | None = None
        self._ready: asyncio.Future[None] | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _main(self) -> None:
        assert self._ready is not None
        try:
            async with asyncotp.node(), distribution.connect(self.name, self.cluster):
                self._ctx = contextvars.copy_context()
                self._ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    async def __aenter__(self) -> Host:
        self._ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.get_running_loop().create_task(self._main())
        try:
            await self._ready
        except BaseException:
            with contextlib.suppress(BaseException):
                await self._task  # retrieve its error too: it is the same one
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def on(self, fn: Callable[[], Awaitable[T]]) -> T:
        assert self._ctx is not None

        async def job() -> T:
            return await fn()

        return await asyncio.get_running_loop().create_task(job(), context=self._ctx.copy())


@contextlib.asynccontextmanager
async def hosts(cluster: NatsCluster, *names: str) -> AsyncIterator[list[Host]]:
    async with contextlib.AsyncExitStack() as stack:
        started = [await stack.enter_async_context(Host(name, cluster)) for name in names]
        yield started


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds (polled every 10 ms), at most ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - for state with no event to wait on
            await asyncio.sleep(0.01)


class NodeProcess:
    """A node in an OS process of its own (``node_script.py``)."""

    def __init__(self, name: str, url: str, prefix: str, *extra: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), name, url, prefix, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    async def ready(self, timeout: float = 15.0) -> None:
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), timeout)
        if line.strip() != b"ready":
            raise RuntimeError(f"the node process did not start: {line!r}")

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
