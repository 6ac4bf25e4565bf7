"""``NatsCluster``: where the nodes meet and how they watch each other."""

from __future__ import annotations

import re
import ssl
from typing import Final

import attrs

from .._core import validate

NODE_NAME: Final = re.compile(r"[A-Za-z0-9_@-]{1,64}")
"""What a node name may hold: one NATS subject token, readable in logs."""

_PREFIX: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")


def check_node_name(name: object, where: str) -> str:
    """``name`` if it is a valid node name; ``TypeError``/``ValueError`` naming it otherwise."""
    text = validate.text(name, "node", where=where)
    if not NODE_NAME.fullmatch(text):
        raise ValueError(
            f"{where}: node name {text!r} is not valid: use 1 to 64 letters, digits, '_', '-' "
            "or '@' (a dot would split the NATS subject), for example 'orders@host-a'"
        )
    return text


def _servers(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (tuple, list)) or not value:
        raise TypeError(
            f"NatsCluster: servers must be a URL or a non-empty list of URLs, not {value!r}"
        )
    urls = tuple(value)
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("nats://", "tls://", "ws://", "wss://")):
            raise ValueError(
                f"NatsCluster: server {url!r} is not a NATS URL; write 'nats://host:4222' "
                "(or tls://)"
            )
    return urls


def _prefix(_instance: object, _attribute: object, value: object) -> None:
    if not isinstance(value, str) or not _PREFIX.fullmatch(value):
        raise ValueError(
            f"NatsCluster: prefix {value!r} must be 1 to 32 letters, digits, '_' or '-' (it "
            "starts every subject and names the registry's bucket)"
        )


def _types(value: object) -> tuple[type, ...]:
    if not isinstance(value, (tuple, list)) or not all(isinstance(t, type) for t in value):
        raise TypeError(f"NatsCluster: types must be a tuple of classes, not {value!r}")
    return tuple(value)


@attrs.frozen
class NatsCluster:
    """How a node joins its cluster: the NATS servers, the heartbeat window,
    the message types the nodes exchange and the credentials.

    ``servers`` is a URL (``"nats://127.0.0.1:4222"``, the default, on
    loopback) or a list of them. ``prefix`` starts every subject the nodes
    use, so several clusters can share one NATS server.

    Every node publishes a heartbeat each ``heartbeat_interval`` seconds; a
    node not heard from (heartbeat or any message) for ``heartbeat_window``
    seconds is declared down: its links and monitors fire with
    ``NOCONNECTION`` and its global names are reaped. The window must hold
    at least two intervals. Lower it to detect faster, at the price of false
    alarms on a loaded machine (a node frozen by a long GC or a blocking
    call in an actor looks dead too).

    ``types`` are the classes (attrs classes, dataclasses, enums) that may
    cross the wire besides built-in values and pids: a node decodes nothing
    else, and never unpickles. Every node of a cluster should list the same
    types.

    Credentials are handed to nats-py: ``user``/``password``, ``token``,
    ``nkeys_seed`` (path of an NKey seed file), ``user_credentials`` (path
    of a ``.creds`` file) and ``tls`` (an ``ssl.SSLContext``; use
    ``tls://`` URLs).
    """

    servers: tuple[str, ...] = attrs.field(default=("nats://127.0.0.1:4222",), converter=_servers)
    prefix: str = attrs.field(default="asyncotp", validator=_prefix, kw_only=True)
    heartbeat_interval: float = attrs.field(default=1.0, kw_only=True)
    heartbeat_window: float = attrs.field(default=5.0, kw_only=True)
    types: tuple[type, ...] = attrs.field(default=(), converter=_types, kw_only=True)
    connect_timeout: float = attrs.field(default=2.0, kw_only=True)
    user: str | None = attrs.field(default=None, kw_only=True)
    password: str | None = attrs.field(default=None, repr=False, kw_only=True)
    token: str | None = attrs.field(default=None, repr=False, kw_only=True)
    nkeys_seed: str | None = attrs.field(default=None, kw_only=True)
    user_credentials: str | None = attrs.field(default=None, kw_only=True)
    tls: ssl.SSLContext | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        interval = validate.duration(
            self.heartbeat_interval, "heartbeat_interval", where="NatsCluster"
        )
        window = validate.duration(self.heartbeat_window, "heartbeat_window", where="NatsCluster")
        validate.duration(self.connect_timeout, "connect_timeout", where="NatsCluster")
        if window < 2 * interval:
            raise ValueError(
                f"NatsCluster: heartbeat_window ({window} s) must hold at least two "
                f"heartbeat intervals ({interval} s each), or a single late heartbeat "
                "declares a live node down; raise the window or lower the interval"
            )
