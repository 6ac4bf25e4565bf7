"""Credentials against a real nats-server that requires them: a node with
the right user and password joins and serves calls; one with a wrong
password, or none, is refused at connect with a clear error, not left
waiting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncotp import Caller, GenServer, Pid, call
from asyncotp.distribution import whereis_remote
from tests.distribution.conftest import NATS_SERVER
from tests.distribution.helpers import NatsServer, fast_cluster, hosts

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def secured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    store: Path = tmp_path_factory.mktemp("secured")
    server = NatsServer(NATS_SERVER, store, "--user", "orders", "--pass", "s3cret")
    server.start()
    try:
        yield server
    finally:
        server.kill()


class Echo(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return ("echo", request)


async def start_echo() -> Pid:
    return await Echo.start(name="echo")


async def test_nodes_with_the_servers_user_and_password_call_each_other(
    secured_server: NatsServer, prefix: str
) -> None:
    cluster = fast_cluster(secured_server.url, prefix, user="orders", password="s3cret")
    async with hosts(cluster, "a", "b") as (a, b):
        await b.on(start_echo)

        async def client() -> Any:
            echo = await whereis_remote("b", "echo")
            assert echo is not None
            return await call(echo, "hi")

        assert await a.on(client) == ("echo", "hi")


@pytest.mark.parametrize(
    "credentials",
    [{"user": "orders", "password": "wrong"}, {}],
    ids=["wrong password", "no credentials"],
)
async def test_a_node_without_valid_credentials_is_refused_at_connect(
    secured_server: NatsServer, prefix: str, credentials: dict[str, str]
) -> None:
    cluster = fast_cluster(secured_server.url, prefix, connect_timeout=2.0, **credentials)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="refused the credentials") as info:
        async with hosts(cluster, "intruder"):
            pass
    assert "check NatsCluster(user=, password=" in str(info.value)
    assert "s3cret" not in str(info.value)
    assert time.monotonic() - started < 6.0
