"""A real ``nats-server`` (with JetStream) on a free loopback port, started
once for the module and killed at its end; each test gets a cluster of its
own (a unique subject prefix) with fast heartbeats."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator

import pytest

from tests.distribution.helpers import NatsServer

_prefixes = itertools.count(1)

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    if not shutil.which(NATS_SERVER):
        pytest.skip("nats-server is not installed (Debian: apt-get install nats-server)")
    server = NatsServer(NATS_SERVER, tmp_path_factory.mktemp("jetstream"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def prefix() -> str:
    return f"t{next(_prefixes)}"
