"""examples/web_service.py as a program: SIGTERM under load loses no request.

The service runs as a subprocess on a free loopback port. The test sends it
200 requests at once (150 quick, 50 that hold a pool worker for seconds),
waits until the pool has taken every one of them (its ``/stats``), sends
SIGTERM, and checks what a load balancer behind it would see: every request
accepted before the signal gets a 200 (none cut, no 503 from a pool torn
down under it), a new connection once the shutdown has begun is refused,
and the program exits 0 after logging a clean stop.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.helpers import EXAMPLES

QUICK = 150
SLOW = 50
SLOW_MS = 3000
"""Long enough to be still running when the signal lands, even on a busy machine."""
WAIT = 20.0


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port: int = sock.getsockname()[1]
    return port


class Program:
    """The service's process; its log (stderr) read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def expect(self, text: str) -> str:
        """Read the log until a line contains ``text``; that line."""
        assert self.proc.stderr is not None
        async with asyncio.timeout(WAIT):
            while True:
                raw = await self.proc.stderr.readline()
                if not raw:
                    raise AssertionError(
                        f"the service ended (exit {await self.proc.wait()}) before logging "
                        f"{text!r}:\n" + "\n".join(self.lines)
                    )
                line = raw.decode(errors="replace").rstrip()
                self.lines.append(line)
                if text in line:
                    return line

    async def finish(self) -> int:
        assert self.proc.stderr is not None
        async with asyncio.timeout(WAIT):
            rest = await self.proc.stderr.read()
            self.lines.extend(rest.decode(errors="replace").splitlines())
            return await self.proc.wait()


@pytest.fixture
async def service() -> AsyncIterator[tuple[Program, int]]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "web_service.py"),
        "--port",
        str(port),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    program = Program(proc)
    try:
        await program.expect(f"ASGI server listening on http://127.0.0.1:{port}")
        yield program, port
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def pool_has_taken(port: int, count: int) -> int:
    """Wait until the pool has been handed ``count`` jobs; how many still run."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
        while True:
            stats = (await http.get("/stats")).json()
            if stats["pool"]["submitted"] >= count:
                running: int = stats["pool"]["running"]
                return running
            await asyncio.sleep(0.02)  # polling another process; the wait is bounded


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_sigterm_under_load_answers_every_accepted_request_and_exits_0(
    service: tuple[Program, int],
) -> None:
    program, port = service
    limits = httpx.Limits(max_connections=QUICK + SLOW, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=WAIT, trust_env=False
    ) as http:
        paths = [f"/work?ms={i % 20}" for i in range(QUICK)] + [f"/work?ms={SLOW_MS}"] * SLOW
        requests = [asyncio.ensure_future(http.get(path)) for path in paths]
        try:
            running = await asyncio.wait_for(pool_has_taken(port, len(paths)), WAIT)
            assert running >= 1, "no request was still running when the signal was sent"
            program.proc.send_signal(signal.SIGTERM)
            draining = await program.expect("stopped accepting new connections")
            # Shutdown has begun: new connections are refused from now on,
            # while the slow requests are still being worked on.
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", trust_env=False
            ) as fresh:
                with pytest.raises(httpx.ConnectError):
                    await fresh.get("/work?ms=0")
            assert not all(r.done() for r in requests)
            responses = await asyncio.wait_for(asyncio.gather(*requests), WAIT)
        finally:
            for request in requests:
                request.cancel()
    statuses = sorted({r.status_code for r in responses})
    assert statuses == [200], [r.text for r in responses if r.status_code != 200][:3]
    assert len(responses) == QUICK + SLOW
    assert await program.finish() == 0, "\n".join(program.lines)
    log = "\n".join(program.lines)
    assert "stopped cleanly (" in log
    assert "application 'web_service' stopped cleanly" in log
    assert "request(s) cut" not in log
    in_flight = int(draining.split("draining ")[1].split(" ")[0])
    assert in_flight >= 1  # requests were in flight at the signal, and drained
