"""The NATS server restarting under traffic.

What holds: both nodes reconnect on their own and carry on (calls work
again, no node is declared lost if the outage is shorter than the
heartbeat window), and what arrives arrives once and in order. What may be
lost: casts published while a node was disconnected or not yet
re-subscribed (delivery is at most once, as in Erlang).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from asyncotp import CallTimeout, call, cast
from asyncotp.distribution import NodeUnreachable, nodes, whereis_remote
from tests.distribution.conftest import NATS_SERVER
from tests.distribution.helpers import NatsServer, fast_cluster, hosts
from tests.distribution.test_two_nodes import start_echo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


async def test_nodes_ride_out_a_server_restart_and_lose_at_most_some_casts(
    tmp_path: Path, prefix: str
) -> None:
    if not shutil.which(NATS_SERVER):
        pytest.skip("nats-server is not installed (Debian: apt-get install nats-server)")
    server = NatsServer(NATS_SERVER, tmp_path)
    server.start()
    try:
        cluster = fast_cluster(server.url, prefix, heartbeat_interval=0.5, heartbeat_window=15.0)
        async with hosts(cluster, "a", "b") as (a, b):
            await b.on(start_echo)

            async def traffic() -> tuple[list[Any], list[str]]:
                echo = await whereis_remote("b", "echo")
                assert echo is not None
                for i in range(100):
                    cast(echo, i)
                assert await call(echo, "seen") == list(range(100))
                server.kill()
                for i in range(100, 200):
                    cast(echo, i)  # buffered by the client, or lost
                server.start()
                # Until both have reconnected and subscribed again, a call
                # fails at once (no responders) or times out.
                async with asyncio.timeout(15):
                    while True:
                        try:
                            assert await call(echo, "ping", timeout=0.5) == ("echo", "ping")
                            break
                        except (CallTimeout, NodeUnreachable):
                            await asyncio.sleep(0.05)
                for i in range(200, 300):
                    cast(echo, i)
                return await call(echo, "seen"), nodes()

            seen, up = await a.on(traffic)
        assert up == ["b"]
        assert seen[:100] == list(range(100))
        assert seen[-100:] == list(range(200, 300))
        assert seen == sorted(set(seen))  # once each, in order
    finally:
        server.kill()
