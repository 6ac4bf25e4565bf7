"""The global registry: names that hold across nodes, in a JetStream
key-value bucket.

Registration is one atomic ``create`` in the bucket: of two nodes racing
for a name, the server accepts exactly one. A name records its pid; when
the actor exits, its node deletes the name (compare-and-set on the
revision it wrote, so a newer holder is never erased); when a node is lost,
every survivor deletes the names that node held, again by compare-and-set.

Each node also keeps a *mirror* of the bucket, fed by a JetStream watch,
for ``via_global`` names: the runtime looks a via name up synchronously on
every send, so the look-up cannot be a round trip. The mirror lags the
bucket by one message; a node's own registrations enter it at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, Final

import nats.errors
import nats.js.errors
from nats.js.kv import KeyValue

from .._core import Pid, is_alive, on_exit, remote_of, safe_repr
from ._codec import BadMessage
from ._peers import Peer
from ._transport import Distribution

logger = logging.getLogger("asyncotp.distribution")

_TRIES: Final = 3
_MIRROR_RETRY: Final = 1.0
"""Seconds between attempts to start watching the registry bucket."""


def key_of(name: str) -> str:
    """The bucket key of a name: base64url, so any string is a valid key."""
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=") or "_"


def name_of_key(key: str) -> str:
    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)).decode()


async def open_bucket(dist: Distribution, bucket: str, what: str) -> KeyValue:
    """The JetStream key-value bucket ``bucket``, made if missing."""
    nc = dist.nc
    assert nc is not None
    js = nc.jetstream()
    try:
        try:
            return await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            return await js.create_key_value(bucket=bucket, history=1)
    except (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError):
        raise RuntimeError(
            f"{what} needs JetStream, which this NATS server does not offer; start it with "
            "`nats-server -js` (or enable jetstream in its configuration)"
        ) from None


class GlobalRegistry:
    """The global names, as one node sees them."""

    def __init__(self, dist: Distribution) -> None:
        self.dist = dist
        self.bucket = f"{dist.prefix}_names"
        self._kv: KeyValue | None = None
        self._opening: asyncio.Lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._mirror: dict[str, tuple[Pid, int]] = {}
        self._watcher: KeyValue.KeyWatcher | None = None
        self.mirror_error: str | None = None
        self.mirror_loaded: asyncio.Future[None] | None = None
        dist.down_callbacks.append(self._reap_soon)

    async def kv(self) -> KeyValue:
        if self._kv is not None:
            return self._kv
        async with self._opening:
            if self._kv is None:
                self._kv = await open_bucket(self.dist, self.bucket, "the global registry")
        return self._kv

    def _holder(self, value: bytes | None) -> Pid | None:
        if value is None:
            return None
        try:
            holder = self.dist.codec.decode(self.dist.codec.loads(value).get("pid"))
        except BadMessage:
            return None
        return holder if type(holder) is Pid else None

    def _alive(self, pid: Pid) -> bool:
        directory = remote_of(pid)
        if directory is None:
            return is_alive(pid)
        return self.dist.peer_of(directory) is not None

    async def register(self, name: str, pid: Pid) -> bool:
        kv = await self.kv()
        key = key_of(name)
        value = self.dist.codec.dumps({"pid": self.dist.codec.encode(pid)})
        for _try in range(_TRIES):
            try:
                revision = await kv.create(key, value)
            except nats.js.errors.KeyWrongLastSequenceError:
                try:
                    entry = await kv.get(key)
                except nats.js.errors.KeyNotFoundError:
                    continue  # deleted meanwhile: try again
                holder = self._holder(entry.value)
                if holder is pid:
                    return True
                if holder is not None and self._alive(holder):
                    return False
                # Held by a lost node (or garbage): take it over, unless
                # somebody else did first.
                with contextlib.suppress(nats.js.errors.APIError):
                    await kv.delete(key, last=entry.revision)
                continue
            return self._hold(pid, key, revision)
        return False

    def _hold(self, pid: Pid, key: str, revision: int) -> bool:
        if on_exit(pid, lambda _reason: self._release_soon(key, revision)):
            self._mirror_put(key, pid, revision)
            return True
        self._release_soon(key, revision)  # it died while we registered
        return False

    async def whereis(self, name: str) -> Pid | None:
        kv = await self.kv()
        try:
            entry = await kv.get(key_of(name))
        except nats.js.errors.KeyNotFoundError:
            return None
        holder = self._holder(entry.value)
        if holder is None or not self._alive(holder):
            return None
        return holder

    async def unregister(self, name: str, pid: Pid | None) -> bool:
        kv = await self.kv()
        key = key_of(name)
        try:
            entry = await kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return False
        holder = self._holder(entry.value)
        if pid is not None and holder is not pid:
            return False
        try:
            await kv.delete(key, last=entry.revision)
        except nats.js.errors.APIError:
            return False
        return True

    async def names(self) -> list[str]:
        kv = await self.kv()
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return []
        return sorted(name_of_key(k) for k in keys)

    # -- the mirror (for via_global) ------------------------------------------

    def start_mirror(self) -> None:
        """Start watching the bucket, in the background: the mirror fills as
        the names arrive (``mirror_loaded`` is set once every name already
        registered is in). Without JetStream the mirror stays empty and
        ``lookup`` raises, saying why. (A clustered NATS server without
        JetStream answers the JetStream API only with a timeout, so
        ``connect`` does not wait for this.)"""
        loop = asyncio.get_running_loop()
        self.mirror_loaded = loop.create_future()
        task = loop.create_task(self._load_mirror(self.mirror_loaded))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def mirror_ready(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until the mirror holds every name
        that was registered when it started."""
        if self.mirror_loaded is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.mirror_loaded), timeout)

    async def _load_mirror(self, loaded: asyncio.Future[None]) -> None:
        while True:
            try:
                kv = await self.kv()
                watcher = await kv.watchall()
                break
            except RuntimeError as exc:  # no JetStream: for good
                self.mirror_error = str(exc)
                loaded.set_result(None)
                return
            except nats.errors.Error as exc:  # a timeout, a reconnection: try again
                logger.warning(
                    "node %s could not watch the global names (%s); trying again in %s s",
                    self.dist.name,
                    safe_repr(exc),
                    _MIRROR_RETRY,
                )
                await asyncio.sleep(_MIRROR_RETRY)
        self._watcher = watcher
        await self._follow(watcher, loaded)

    async def _follow(self, watcher: KeyValue.KeyWatcher, loaded: asyncio.Future[None]) -> None:
        async for entry in watcher:
            if entry is None:  # every name there was at the start has been seen
                if not loaded.done():
                    loaded.set_result(None)
                continue
            if entry.operation is None and entry.value:
                holder = self._holder(entry.value)
                if holder is not None:
                    self._mirror_put(entry.key, holder, entry.revision or 0)
                    continue
            known = self._mirror.get(entry.key)
            if known is not None and known[1] <= (entry.revision or 0):
                del self._mirror[entry.key]

    def _mirror_put(self, key: str, pid: Pid, revision: int) -> None:
        known = self._mirror.get(key)
        if known is None or known[1] <= revision:
            self._mirror[key] = (pid, revision)

    def lookup(self, name: str) -> Pid | None:
        """The holder of ``name`` in the mirror, if alive (no round trip)."""
        if self.mirror_error is not None:
            raise RuntimeError(f"via_global names need the registry's mirror: {self.mirror_error}")
        known = self._mirror.get(key_of(name))
        if known is None or not self._alive(known[0]):
            return None
        return known[0]

    def forget(self, name: str) -> None:
        """Drop ``name`` from the mirror and delete it from the bucket
        (compare-and-set on the revision the mirror knows)."""
        key = key_of(name)
        known = self._mirror.pop(key, None)
        if known is not None:
            self._release_soon(key, known[1])

    # -- clean-up -------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self.dist.closed or self._kv is None:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release_soon(self, key: str, revision: int) -> None:
        self._spawn(self._release(key, revision))

    async def _release(self, key: str, revision: int) -> None:
        assert self._kv is not None
        # Taken over already, or the connection is gone (the survivors reap it).
        with contextlib.suppress(nats.errors.Error, nats.js.errors.APIError):
            await self._kv.delete(key, last=revision)

    def _reap_soon(self, peer: Peer) -> None:
        self._spawn(self._reap(peer.name, peer.incarnation))

    async def _reap(self, node: str, incarnation: str) -> None:
        kv = self._kv
        assert kv is not None
        try:
            keys = await kv.keys()
        except nats.js.errors.NoKeysError:
            return
        except nats.errors.Error as exc:
            logger.warning("could not reap the names of node %s: %s", node, safe_repr(exc))
            return
        for key in keys:
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                continue
            holder = self._holder(entry.value)
            directory = remote_of(holder) if holder is not None else None
            if directory is not None and (directory.name, directory.incarnation) == (
                node,
                incarnation,
            ):
                with contextlib.suppress(nats.js.errors.APIError):
                    await kv.delete(key, last=entry.revision)
                    logger.info("reaped global name %r of lost node %s", name_of_key(key), node)

    async def close(self) -> None:
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.stop()  # type: ignore[no-untyped-call]  # nats-py is untyped here
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
