"""A throw-away ``nats-server`` for the distribution benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator


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
