"""Opening one node's NATS connection, and saying why it failed.

A node connects once, with nats-py reconnecting for ever afterwards. Two
failures at connect get two different errors, each saying what to do: no
server answered (start one, or fix ``NatsCluster(servers=...)``), or the
server answered and refused the credentials (which nats-py reports only
to the error callback while it keeps retrying: ``Login`` remembers it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client as NatsClient

from .._core import safe_repr
from ._config import NatsCluster

CREDENTIALS = ("user", "password", "token", "nkeys_seed", "user_credentials", "tls")
"""The ``NatsCluster`` fields handed to nats-py as they are, when set."""


class Login:
    """What the server said about our credentials while we connected."""

    __slots__ = ("refused",)

    def __init__(self) -> None:
        self.refused: Exception | None = None

    def heard(self, exc: Exception) -> None:
        """Note ``exc`` (from nats-py's error callback) if it is a refusal."""
        if isinstance(exc, nats.errors.AuthorizationError):
            self.refused = exc
            return
        text = safe_repr(exc).lower()
        if "authorization" in text or "authentication" in text:
            self.refused = exc


async def connect_client(
    node: str,
    cluster: NatsCluster,
    login: Login,
    callbacks: dict[str, Callable[..., Awaitable[None]]],
) -> NatsClient:
    """Connect ``node`` to ``cluster``; ``callbacks`` are nats-py's
    ``error_cb``, ``disconnected_cb`` and ``reconnected_cb`` (the error
    callback passes what it hears to ``login``)."""
    options: dict[str, Any] = {
        "servers": list(cluster.servers),
        "name": f"asyncotp {node}",
        "connect_timeout": cluster.connect_timeout,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        **callbacks,
    }
    for key in CREDENTIALS:
        value = getattr(cluster, key)
        if value is not None:
            options[key] = value
    servers = ", ".join(cluster.servers)
    try:
        async with asyncio.timeout(cluster.connect_timeout + 1.0):
            return await nats.connect(**options)
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        if login.refused is not None:  # the server answered, and refused our credentials
            raise ConnectionError(
                f"node {node!r}: NATS at {servers} refused the credentials "
                f"({safe_repr(login.refused)}); check NatsCluster(user=, password=, token=, "
                "nkeys_seed=, user_credentials=) against the server's configuration"
            ) from exc
        raise ConnectionError(
            f"node {node!r}: cannot connect to NATS at {servers} "
            f"({type(exc).__name__}: {exc or 'no answer'}); start nats-server "
            "(`nats-server -js`) or fix NatsCluster(servers=...)"
        ) from exc
