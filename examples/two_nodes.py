"""Two nodes in two OS processes, talking over NATS.

    python examples/two_nodes.py                       # starts its own nats-server
    python examples/two_nodes.py nats://127.0.0.1:4222  # or uses yours (with -js)

The "front" node starts a "worker" node in a second process. The worker
runs a counter server and registers it globally; the front finds it by
that name, calls and casts to it, monitors it, then kills the worker's
process with SIGKILL: the monitor fires with NOCONNECTION within the
heartbeat window. Needs `pip install 'asyncotp[nats]'` and `nats-server`
(Debian: `apt-get install nats-server`).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from asyncotp import Caller, Down, GenServer, call, cast, monitor, receive
from asyncotp.distribution import NOCONNECTION, NatsCluster, register_global, run, whereis_global


def cluster(url: str) -> NatsCluster:
    # A short window so the example ends quickly; the default is 5 s.
    return NatsCluster(servers=url, prefix="example", heartbeat_interval=0.2, heartbeat_window=1.0)


class Counter(GenServer):
    async def init(self) -> None:
        self.count = 0

    async def handle_call(self, request: Any, caller: Caller) -> int:
        if request == "get":
            return self.count
        _add, n = request
        self.count += n
        return self.count

    async def handle_cast(self, request: Any) -> None:
        self.count += request[1]


async def worker() -> None:
    pid = await Counter.start(name="counter")
    assert await register_global("counter", pid)
    print("worker ready", flush=True)
    await receive()  # until the process is killed


async def front(worker_process: subprocess.Popen[bytes]) -> None:
    counter = await whereis_global("counter")
    assert counter is not None
    print(f"front: found the global 'counter' at {counter!r}")
    print(f"front: call add 5 -> {await call(counter, ('add', 5))}")
    cast(counter, ("add", 10))
    print(f"front: cast add 10, then call get -> {await call(counter, 'get')}")
    ref = monitor(counter)
    print("front: monitoring it; killing the worker's process (SIGKILL)")
    killed_at = time.monotonic()
    worker_process.send_signal(signal.SIGKILL)
    down = await receive(lambda m: isinstance(m, Down) and m.ref is ref, timeout=10)
    took = time.monotonic() - killed_at
    assert down.reason is NOCONNECTION
    print(f"front: Down with reason {down.reason!r} after {took:.1f} s")
    print(f"front: whereis_global('counter') -> {await whereis_global('counter')}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def nats_server() -> Iterator[str]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port, monitor_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as store:
        server = subprocess.Popen(
            [
                *(binary, "-a", "127.0.0.1", "-p", str(port)),
                *("-m", str(monitor_port), "-js", "-sd", store),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # Ready once its health check, JetStream included, answers 200.
            health = f"http://127.0.0.1:{monitor_port}/healthz"
            deadline = time.monotonic() + 10
            while True:
                try:
                    with urllib.request.urlopen(health, timeout=1) as answer:
                        if answer.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.02)
            yield f"nats://127.0.0.1:{port}"
        finally:
            server.kill()
            server.wait()


def main(url: str) -> None:
    process = subprocess.Popen([sys.executable, __file__, "--worker", url], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()
        print(line)
        run(front, process, node="front", cluster=cluster(url))
    finally:
        process.kill()
        process.wait()
    print("done: both nodes have stopped")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        run(worker, node="worker", cluster=cluster(sys.argv[2]))
    elif len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with nats_server() as server_url:
            main(server_url)
