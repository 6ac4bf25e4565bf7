"""Process groups across nodes (Erlang's ``pg``), in a JetStream key-value bucket.

A member is one key, ``<group>.<node>.<incarnation>.<number>`` (group and
node in base64url), so a group's members are read from the keys alone. An
actor that exits leaves its groups (its node deletes its keys); the members
of a lost node are deleted by the survivors. Joining is idempotent: an
actor is in a group or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from .._core import Pid, is_alive, on_exit, remote_of, safe_repr
from ._codec import BadMessage
from ._global import key_of, name_of_key, open_bucket
from ._peers import Peer
from ._transport import Distribution

logger = logging.getLogger("asyncotp.distribution")


class ProcessGroups:
    """The groups, as one node sees them."""

    def __init__(self, dist: Distribution) -> None:
        self.dist = dist
        self.bucket = f"{dist.prefix}_groups"
        self._kv: KeyValue | None = None
        self._opening = asyncio.Lock()
        self._joined: dict[Pid, set[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        dist.down_callbacks.append(self._reap_soon)

    async def kv(self) -> KeyValue:
        if self._kv is not None:
            return self._kv
        async with self._opening:
            if self._kv is None:
                self._kv = await open_bucket(self.dist, self.bucket, "process groups")
        return self._kv

    def _key(self, group: str, pid: Pid) -> str:
        directory = remote_of(pid)
        if directory is not None:
            name, incarnation = directory.name, directory.incarnation
        else:
            name, incarnation = self.dist.name, self.dist.incarnation
        return f"{key_of(group)}.{key_of(name)}.{incarnation}.{pid.number}"

    async def join(self, group: str, pid: Pid) -> None:
        kv = await self.kv()
        key = self._key(group, pid)
        self.dist.codec.encode(pid)  # the node remembers it: members() finds it again
        await kv.put(key, b"")
        keys = self._joined.get(pid)
        if keys is None:
            keys = self._joined[pid] = set()
            if not on_exit(pid, lambda _reason: self._left_all(pid)):
                del self._joined[pid]
                self._spawn(self._delete([key]))
                return
        keys.add(key)

    async def leave(self, group: str, pid: Pid) -> bool:
        key = self._key(group, pid)
        keys = self._joined.get(pid)
        if keys is None or key not in keys:
            return False
        keys.discard(key)
        await self._delete([key])
        return True

    async def members(self, group: str) -> list[Pid]:
        kv = await self.kv()
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return []
        prefix = f"{key_of(group)}."
        found: list[Pid] = []
        for key in keys:
            if not key.startswith(prefix):
                continue
            pid = self._pid_of(key)
            if pid is not None:
                found.append(pid)
        return found

    async def groups(self) -> list[str]:
        kv = await self.kv()
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return []
        return sorted({name_of_key(key.split(".", 1)[0]) for key in keys})

    def _pid_of(self, key: str) -> Pid | None:
        """The live member a key names, or None (its node is lost, it is dead)."""
        try:
            _group, node, incarnation, number = key.split(".")
            pid = self.dist.pid_in([name_of_key(node), incarnation, int(number)])
        except (ValueError, BadMessage, UnicodeDecodeError):
            return None
        directory = remote_of(pid)
        if directory is None:
            return pid if is_alive(pid) else None
        return pid if self.dist.peer_of(directory) is not None else None

    # -- clean-up -------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self.dist.closed or self._kv is None:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _left_all(self, pid: Pid) -> None:
        keys = self._joined.pop(pid, None)
        if keys:
            self._spawn(self._delete(list(keys)))

    async def _delete(self, keys: list[str]) -> None:
        kv = await self.kv()
        for key in keys:
            with contextlib.suppress(nats.errors.Error, nats.js.errors.APIError):
                await kv.delete(key)

    def _reap_soon(self, peer: Peer) -> None:
        self._spawn(self._reap(peer.name, peer.incarnation))

    async def _reap(self, node: str, incarnation: str) -> None:
        kv = await self.kv()
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return
        except nats.errors.Error as exc:
            logger.warning("could not reap the group members of node %s: %s", node, safe_repr(exc))
            return
        infix = f".{key_of(node)}.{incarnation}."
        await self._delete([key for key in keys if infix in key])

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
