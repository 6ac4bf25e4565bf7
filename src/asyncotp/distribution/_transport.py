"""One node's distribution: its NATS connection, subjects, heartbeats, and
the ``Transport`` the runtime hands remote pids to.

Subjects (``P`` is ``NatsCluster.prefix``):

* ``P.node.<name>.<incarnation>``: everything addressed to the actors of
  one incarnation of a node (send, cast, call, stop, link, monitor, exit
  signals, ``Down``). One subject per node, one connection per node, one
  writer task: NATS keeps one publisher's messages in order, so messages
  between a pair of actors arrive in the order they were sent.
* ``P.reply.<name>.<incarnation>.<token>``: answers to this node's calls.
  A call to an incarnation nobody listens to any more gets the server's
  "no responders" status at once, and fails with ``NodeUnreachable``.
* ``P.hb``: heartbeats and goodbyes of every node.
* ``P.name.<name>``: "is this name taken?" at start; ``whereis_remote``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import secrets
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from .._core import (
    KILL,
    KILLED,
    NOCONNECTION,
    CallTimeout,
    MonitorRef,
    NameTaken,
    Node,
    NodeUnreachable,
    NoProcess,
    Pid,
    RemoteNode,
    ServerExited,
    drop_remote_link,
    node_of,
    on_exit,
    remote_down,
    remote_exit,
    remote_of,
    safe_repr,
    using_node,
    whereis_on,
)
from ._codec import BadMessage, Codec, Json
from ._config import NODE_NAME, NatsCluster
from ._connect import Login, connect_client
from ._outbox import Outbox
from ._peers import LocalTies, Peer, cut_ties
from ._replies import expire, reply_error, same

logger = logging.getLogger("asyncotp.distribution")

Handler = Callable[["Distribution", Peer, dict[str, Json], str], None]
"""What handles one kind of message: ``(dist, sender, envelope, reply subject)``."""

_INCARNATION: Final = re.compile(r"[0-9a-f]{1,32}")
_DEAD_REMEMBERED: Final = 4096
"""How many lost incarnations a node remembers, to refuse them at once."""
_BYE: Final = "it left the cluster"
_CLOSE_GRACE: Final = 1.0
"""Seconds a leaving node gives its last messages (and its goodbye) to go out."""


class Distribution:
    """The transport of one node: made and started by ``connect``."""

    def __init__(
        self, node: Node, name: str, cluster: NatsCluster, handlers: dict[str, Handler]
    ) -> None:
        self.node = node
        self.handlers = handlers
        self.name = name
        self.cluster = cluster
        self.incarnation = secrets.token_hex(8)
        prefix = cluster.prefix
        self.prefix = prefix
        self.subject = f"{prefix}.node.{name}.{self.incarnation}"
        self.reply_prefix = f"{prefix}.reply.{name}.{self.incarnation}"
        self.me: Final = [name, self.incarnation]
        self.codec = Codec(cluster.types, self._pid_out, self.pid_in)
        self.loop = asyncio.get_running_loop()
        self.thread = threading.get_ident()
        self.nc: NatsClient | None = None
        self.peers: dict[tuple[str, str], Peer] = {}
        self.dead: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.directories: weakref.WeakValueDictionary[tuple[str, str], RemoteNode] = (
            weakref.WeakValueDictionary()
        )
        self.exported: weakref.WeakValueDictionary[int, Pid] = weakref.WeakValueDictionary()
        self.ties: dict[Pid, LocalTies] = {}
        self.monitors: dict[int, tuple[MonitorRef, Pid, Pid, Peer]] = {}
        self.rid_of: dict[MonitorRef, int] = {}
        self.pending: dict[str, tuple[asyncio.Future[Any], Peer]] = {}
        self.tokens = itertools.count(1)
        self.rids = itertools.count(1)
        self.outbox = Outbox(self._warn)
        self.tasks: list[asyncio.Task[None]] = []
        self.down_callbacks: list[Callable[[Peer], None]] = []
        self.closed = False
        self.received = 0
        self.malformed = 0
        self.undeliverable = 0
        self.nodes_lost = 0
        self._last_warning = -1e9
        self._quiet = 0
        self._login = Login()  # what the server says of our credentials at connect

    # -- lifetime -------------------------------------------------------------

    async def start(self) -> None:
        cluster = self.cluster
        self.nc = await connect_client(
            self.name,
            cluster,
            self._login,
            {
                "error_cb": self._on_error,
                "disconnected_cb": self._on_disconnected,
                "reconnected_cb": self._on_reconnected,
            },
        )
        nc = self.nc
        try:
            await self._check_name_free(nc)
            await nc.subscribe(self.subject, cb=self._on_message)
            await nc.subscribe(f"{self.reply_prefix}.*", cb=self._on_reply)
            await nc.subscribe(f"{self.prefix}.hb", cb=self._on_heartbeat)
            await nc.subscribe(f"{self.prefix}.name.{self.name}", cb=self._on_name_query)
            await nc.flush()
        except BaseException:
            await nc.close()
            raise
        self.tasks.append(self.loop.create_task(self.outbox.run(nc)))
        self.tasks.append(self.loop.create_task(self._heartbeats()))

    async def _check_name_free(self, nc: NatsClient) -> None:
        try:
            answer = await nc.request(f"{self.prefix}.name.{self.name}", b"", timeout=0.3)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return
        holder = answer.data.decode(errors="replace")
        raise NameTaken(
            f"node name {self.name!r} is already used by a running node (incarnation "
            f"{holder!r}) in cluster {self.prefix!r}; give each node its own name",
            self.name,
            None,
        )

    async def close(self) -> None:
        """Say goodbye, let the last messages go, disconnect; every tie to
        another node fires with ``NOCONNECTION`` here."""
        if self.closed:
            return
        self.closed = True
        self.publish(f"{self.prefix}.hb", {"k": "bye"})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_GRACE):
                await self.outbox.drain()
                if self.nc is not None and self.nc.is_connected:
                    await self.nc.flush(timeout=1)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for peer in list(self.peers.values()):
            self._peer_down(peer, "this node left the cluster")
        if self.nc is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_GRACE):
                    await self.nc.close()

    # -- pids on the wire -----------------------------------------------------

    def _pid_out(self, pid: Pid) -> list[Json]:
        remote = remote_of(pid)
        if remote is not None:
            return [remote.name, remote.incarnation, pid.number]
        if node_of(pid) is not self.node:
            raise TypeError(
                f"{pid!r} belongs to another node of this process, which is not connected "
                f"to the cluster as {self.name!r}; only this node's pids and remote pids "
                "can be sent"
            )
        self.exported.setdefault(pid.number, pid)
        return [self.name, self.incarnation, pid.number]

    def pid_in(self, body: Json) -> Pid:
        if type(body) is not list or len(body) != 3:
            raise BadMessage("a pid is [node, incarnation, number]")
        name, incarnation, number = body
        if (
            type(name) is not str
            or type(incarnation) is not str
            or type(number) is not int
            or number < 0
        ):
            raise BadMessage("a pid is [node, incarnation, number]")
        if name == self.name and incarnation == self.incarnation:
            pid = self.exported.get(number)
            # An actor never sent out, or gone and forgotten: a pid nobody
            # here holds any more, as good as a dead one.
            return pid if pid is not None else Pid(number, self.node)
        return self._directory(name, incarnation).pid(number)

    def _directory(self, name: str, incarnation: str) -> RemoteNode:
        key = (name, incarnation)
        directory = self.directories.get(key)
        if directory is None:
            if not NODE_NAME.fullmatch(name) or not _INCARNATION.fullmatch(incarnation):
                raise BadMessage("not a node name and incarnation")
            directory = RemoteNode(name, incarnation, self, self.thread)
            self.directories[key] = directory
        return directory

    def peer_of(self, directory: RemoteNode) -> Peer | None:
        """The live peer of a remote directory; None if it is known to be lost."""
        key = (directory.name, directory.incarnation)
        peer = self.peers.get(key)
        if peer is None:
            if key in self.dead or self.closed:
                return None
            # Met through a pid: presumed alive for one window.
            peer = Peer(directory, self.loop.time())
            self.peers[key] = peer
        return peer

    def _heard(self, sender: Json) -> Peer:
        if type(sender) is not list or len(sender) != 2:
            raise BadMessage("no sender")
        name, incarnation = sender
        if type(name) is not str or type(incarnation) is not str:
            raise BadMessage("no sender")
        key = (name, incarnation)
        known = self.peers.get(key)
        if known is not None and known.announced:  # the common case
            known.last_seen = self.loop.time()
            return known
        directory = self._directory(name, incarnation)
        self.dead.pop(key, None)
        peer = self.peer_of(directory)
        assert peer is not None
        peer.last_seen = self.loop.time()
        if not peer.announced:
            peer.announced = True
            logger.info("node %s (incarnation %s) is up", name, incarnation)
        return peer

    def _route(self, pid: Pid) -> Peer | None:
        directory = remote_of(pid)
        assert directory is not None
        return self.peer_of(directory)

    def publish(self, subject: str, envelope: dict[str, Json], reply: str = "") -> None:
        envelope["n"] = self.me
        self.outbox.put(subject, envelope, reply)

    def post(self, peer: Peer, envelope: dict[str, Json], reply: str = "") -> None:
        self.publish(f"{self.prefix}.node.{peer.name}.{peer.incarnation}", envelope, reply)

    async def _heartbeats(self) -> None:
        interval = self.cluster.heartbeat_interval
        window = self.cluster.heartbeat_window
        while True:
            self.publish(f"{self.prefix}.hb", {"k": "hb"})
            await asyncio.sleep(interval)
            now = self.loop.time()
            for peer in list(self.peers.values()):
                if peer.alive and now - peer.last_seen > window:
                    try:
                        self._peer_down(peer, f"not heard from for {window:g} s")
                    except Exception:  # never stop the heartbeats: this node would look lost
                        logger.exception("declaring node %s lost failed", peer.name)

    def encode_reason(self, reason: object) -> Json:
        try:
            return self.codec.encode(reason)
        except TypeError:
            return {"$x": [type(reason).__qualname__, safe_repr(reason)]}

    # -- the Transport, for the runtime --------------------------------------

    def send(self, pid: Pid, message: object) -> None:
        data = self.codec.encode(message)
        peer = self._route(pid)
        if peer is None:
            self.undeliverable += 1
            return
        self.post(peer, {"k": "send", "to": pid.number, "m": data})

    def cast(self, pid: Pid, request: object) -> None:
        data = self.codec.encode(request)
        peer = self._route(pid)
        if peer is None:
            self.undeliverable += 1
            return
        self.post(peer, {"k": "cast", "to": pid.number, "m": data})

    async def call(self, pid: Pid, request: object, timeout: float | None, me: Pid | None) -> Any:
        data = self.codec.encode(request)
        caller = None if me is None else self.codec.encode(me)
        envelope = {"k": "call", "to": pid.number, "m": data, "t": timeout, "f": caller}
        answer = await self._request(pid, envelope, timeout, "call", request)
        if "ok" in answer:
            return self._decode_reply(answer["ok"], pid)
        raise reply_error(answer.get("err"), pid, request, timeout, self._decode_reply)

    async def stop(self, pid: Pid, reason: object, timeout: float | None) -> None:
        envelope = {"k": "stop", "to": pid.number, "r": self.encode_reason(reason), "t": timeout}
        answer = await self._request(pid, envelope, timeout, "stop", reason)
        if "ok" not in answer:
            raise reply_error(answer.get("err"), pid, reason, timeout, self._decode_reply)
        ended = self._decode_reply(answer["ok"], pid)
        expected = KILLED if reason is KILL else reason
        if ended is not expected and not same(ended, expected):
            raise ServerExited(
                f"stop: {pid!r} was asked to stop with reason {safe_repr(reason)} but ended "
                f"with reason {safe_repr(ended)} (its terminate failed, or it ended "
                "otherwise first)",
                pid,
                ended,
            )

    async def whereis(self, node: str, name: str, timeout: float) -> Pid | None:
        """Ask node ``node`` (whichever incarnation runs now) for its local name."""
        nc = self.nc
        if nc is None or self.closed:
            raise NodeUnreachable(f"whereis_remote: node {node!r} is not up{self._left()}", node)
        query = self.codec.dumps({"k": "whereis", "name": name, "n": self.me})
        # A node just started may not be visible yet (in a NATS cluster interest
        # spreads between servers asynchronously): ask again for up to 1 s.
        give_up = self.loop.time() + min(timeout, 1.0)
        try:
            while True:
                try:
                    msg = await nc.request(f"{self.prefix}.name.{node}", query, timeout=timeout)
                    break
                except nats.errors.NoRespondersError:
                    if self.loop.time() >= give_up:
                        raise
                    await asyncio.sleep(0.05)
        except nats.errors.NoRespondersError:
            raise NodeUnreachable(
                f"whereis_remote: node {node!r} is not up (no node of that name listens)", node
            ) from None
        except nats.errors.TimeoutError:
            raise CallTimeout(
                f"whereis_remote: node {node!r} did not answer within {timeout} s", None, timeout
            ) from None
        answer = self.codec.loads(msg.data)
        self._heard(answer.get("n"))
        found = self._decode_reply(answer.get("ok"), None)
        if found is not None and type(found) is not Pid:
            raise BadMessage("whereis_remote: the answer is not a pid")
        return found

    async def _request(
        self,
        pid: Pid,
        envelope: dict[str, Json],
        timeout: float | None,
        operation: str,
        request: object,
    ) -> dict[str, Json]:
        peer = self._route(pid)
        if peer is None:
            directory = remote_of(pid)
            assert directory is not None
            raise NodeUnreachable(
                f"{operation}: the node of {pid!r} ({directory.name}, incarnation "
                f"{directory.incarnation}) is down{self._left()}",
                directory.name,
                pid,
            )
        return await self._request_peer(peer, envelope, timeout, operation, request, pid)

    async def _request_peer(
        self,
        peer: Peer,
        envelope: dict[str, Json],
        timeout: float | None,
        operation: str,
        request: object,
        pid: Pid | None,
    ) -> dict[str, Json]:
        fut: asyncio.Future[Any] = self.loop.create_future()
        token = str(next(self.tokens))
        self.pending[token] = (fut, peer)
        peer.calls.add(fut)
        self.post(peer, envelope, reply=f"{self.reply_prefix}.{token}")
        handle = None
        if timeout is not None:
            handle = self.loop.call_later(
                timeout,
                expire,
                fut,
                CallTimeout(
                    f"{operation} to {safe_repr(pid) if pid else peer.name} got no reply within "
                    f"{timeout} s (request {safe_repr(request)}); the server or its node is busy "
                    "or blocked: raise the timeout, or look at what it is doing",
                    pid,
                    timeout,
                ),
            )
        try:
            return await fut  # type: ignore[no-any-return]
        finally:
            if handle is not None:
                handle.cancel()
            self.pending.pop(token, None)
            peer.calls.discard(fut)

    def _decode_reply(self, data: Json, pid: Pid | None) -> Any:
        try:
            return self.codec.decode(data)
        except BadMessage as exc:
            self.malformed += 1
            raise BadMessage(f"the reply of {safe_repr(pid)} did not decode: {exc}") from None

    def link(self, me: Pid, pid: Pid) -> None:
        peer = self._route(pid)
        if peer is None:
            if drop_remote_link(me, pid):
                remote_exit(me, pid, NOCONNECTION, from_link=True)
            return
        self.ties_of(me).links.add(pid)
        peer.links.add((me, pid))
        self.post(peer, {"k": "link", "f": self.codec.encode(me), "to": pid.number})

    def unlink(self, me: Pid, pid: Pid) -> None:
        ties = self.ties.get(me)
        if ties is not None:
            ties.links.discard(pid)
        peer = self._route(pid)
        if peer is not None:
            peer.links.discard((me, pid))
            self.post(peer, {"k": "unlink", "f": self.codec.encode(me), "to": pid.number})

    def monitor(self, me: Pid, ref: MonitorRef, pid: Pid) -> None:
        peer = self._route(pid)
        if peer is None:
            remote_down(me, ref, pid, NOCONNECTION)
            return
        rid = next(self.rids)
        self.monitors[rid] = (ref, me, pid, peer)
        self.rid_of[ref] = rid
        peer.watching[rid] = (ref, me, pid)
        self.ties_of(me).watching.add(rid)
        self.post(peer, {"k": "mon", "f": self.codec.encode(me), "to": pid.number, "id": rid})

    def demonitor(self, me: Pid, ref: MonitorRef, pid: Pid) -> None:
        rid = self.rid_of.pop(ref, None)
        if rid is None:
            return
        _ref, _watcher, _target, peer = self.monitors.pop(rid)
        peer.watching.pop(rid, None)
        ties = self.ties.get(me)
        if ties is not None:
            ties.watching.discard(rid)
        if peer.alive:
            self.post(peer, {"k": "demon", "f": self.codec.encode(me), "to": pid.number, "id": rid})

    def send_exit(self, sender: Pid | None, pid: Pid, reason: object) -> None:
        peer = self._route(pid)
        if peer is None:
            self.undeliverable += 1
            return
        source = self.codec.encode(sender) if sender is not None else None
        envelope = {"k": "exit", "f": source, "to": pid.number, "r": self.encode_reason(reason)}
        envelope["l"] = False
        self.post(peer, envelope)

    # -- local actors' ties ---------------------------------------------------

    def ties_of(self, pid: Pid) -> LocalTies:
        ties = self.ties.get(pid)
        if ties is None:
            ties = LocalTies()
            self.ties[pid] = ties
            if not on_exit(pid, lambda reason: self._local_exit(pid, reason)):
                del self.ties[pid]
                raise NoProcess(f"{pid!r} is not alive", pid)
        return ties

    def _local_exit(self, pid: Pid, reason: object) -> None:
        ties = self.ties.pop(pid, None)
        if ties is None or self.closed:
            return
        encoded: Json = None
        source: Json = None
        if ties.links or ties.watchers:
            encoded = self.encode_reason(reason)
            source = self.codec.encode(pid)
        for remote in ties.links:
            peer = self._route(remote)
            if peer is not None:
                peer.links.discard((pid, remote))
                envelope = {"k": "exit", "f": source, "to": remote.number, "r": encoded}
                envelope["l"] = True
                self.post(peer, envelope)
        for watcher, rid in ties.watchers:
            peer = self._route(watcher)
            if peer is not None:
                peer.watched.discard((pid, watcher, rid))
                self.post(
                    peer, {"k": "down", "to": watcher.number, "id": rid, "p": source, "r": encoded}
                )
        for rid in ties.watching:
            entry = self.monitors.pop(rid, None)
            if entry is not None:
                ref, _me, target, peer = entry
                self.rid_of.pop(ref, None)
                peer.watching.pop(rid, None)
                if peer.alive:
                    self.post(
                        peer,
                        {"k": "demon", "f": self.codec.encode(pid), "to": target.number, "id": rid},
                    )

    def _peer_down(self, peer: Peer, why: str) -> None:
        if not peer.alive:
            return
        peer.alive = False
        key = (peer.name, peer.incarnation)
        self.peers.pop(key, None)
        self.dead[key] = None
        if len(self.dead) > _DEAD_REMEMBERED:
            self.dead.popitem(last=False)
        if peer.announced:
            self.nodes_lost += 1
            # A node lost to silence is news; an orderly goodbye is not.
            level = logging.INFO if self.closed or why == _BYE else logging.WARNING
            logger.log(
                level, "node %s (incarnation %s) is down: %s", peer.name, peer.incarnation, why
            )
        with using_node(self.node):
            cut_ties(peer, self.ties, self.monitors, self.rid_of, why)
            for callback in self.down_callbacks:
                try:
                    callback(peer)
                except Exception:
                    logger.exception("a node-down callback failed; the others still ran")

    def _left(self) -> str:  # for error messages
        return " (this node has left the cluster)" if self.closed else ""

    # -- receiving ------------------------------------------------------------

    async def _on_message(self, msg: Msg) -> None:
        if self.closed:
            self.received += 1
            self.undeliverable += 1
            return
        try:
            envelopes = self.codec.loads_batch(msg.data)
        except BadMessage as exc:
            self.received += 1
            self._dropped_malformed(msg.subject, exc)
            return
        self.received += len(envelopes)
        reply = msg.reply if len(envelopes) == 1 else ""
        for envelope in envelopes:
            # The subscription's task runs in the node's context (it was
            # made inside connect()), so the runtime's functions find it.
            self._handle(msg.subject, envelope, reply)

    def _handle(self, subject: str, envelope: Json, reply: str) -> None:
        try:
            if type(envelope) is not dict:
                raise BadMessage("not a JSON object")
            peer = self._heard(envelope.get("n"))
            handler = self.handlers.get(envelope.get("k"))  # type: ignore[arg-type]
            if handler is None:
                raise BadMessage(f"unknown kind {safe_repr(envelope.get('k'))}")
            handler(self, peer, envelope, reply)
        except BadMessage as exc:
            self._dropped_malformed(subject, exc)
        except Exception:
            self.undeliverable += 1
            logger.exception("a message on %s could not be handled; dropped", subject)

    def _dropped_malformed(self, subject: str, exc: BaseException) -> None:
        self.malformed += 1
        self._warn("dropped a malformed message on %s: %s", subject, exc)

    def _warn(self, text: str, *args: object) -> None:
        # At most one warning a second: a flood must not become a log flood.
        now = self.loop.time()
        if now - self._last_warning < 1.0:
            self._quiet += 1
            return
        if self._quiet:
            text += f" ({self._quiet} similar messages suppressed)"
            self._quiet = 0
        self._last_warning = now
        logger.warning(text, *args)

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject.rpartition(".")[2]
        entry = self.pending.get(token)
        if entry is None:
            return  # a late answer: its caller gave up
        fut, peer = entry
        if fut.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            fut.set_exception(
                NodeUnreachable(
                    f"node {peer.name} (incarnation {peer.incarnation}) is not connected: "
                    "nobody listens on its subject (NATS no responders)",
                    peer.name,
                )
            )
            # Not declared down for that: after a NATS server restart a live
            # node may not have subscribed again yet. Heartbeats decide.
            return
        try:
            answer = self.codec.loads(msg.data)
            self._heard(answer.get("n"))
        except BadMessage as exc:
            self._dropped_malformed(msg.subject, exc)
            fut.set_exception(BadMessage(f"the reply from node {peer.name} is malformed: {exc}"))
            return
        fut.set_result(answer)

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            envelope = self.codec.loads(msg.data)
            sender = envelope.get("n")
            if sender == self.me:
                return
            if envelope.get("k") == "bye":
                if type(sender) is list and len(sender) == 2:
                    peer = self.peers.get((str(sender[0]), str(sender[1])))
                    if peer is not None:
                        self._peer_down(peer, _BYE)
                return
            self._heard(sender)
        except BadMessage as exc:
            self._dropped_malformed(msg.subject, exc)

    async def _on_name_query(self, msg: Msg) -> None:
        if not msg.reply:
            return
        if not msg.data:  # a starting node asks whether the name is taken
            answer = self.incarnation.encode()
        else:
            try:
                query = self.codec.loads(msg.data)
                name = query.get("name")
                if query.get("k") != "whereis" or type(name) is not str:
                    raise BadMessage("not a whereis query")
                pid = whereis_on(self.node, name)
                found = None if pid is None else self.codec.encode(pid)
                answer = self.codec.dumps({"ok": found, "n": self.me})
            except BadMessage as exc:
                self._dropped_malformed(msg.subject, exc)
                return
        with contextlib.suppress(nats.errors.Error):
            await msg.respond(answer)

    async def _on_error(self, exc: Exception) -> None:
        if self.nc is None:  # while connecting: start() says so instead of timing out
            self._login.heard(exc)
        self._warn("NATS error on node %s: %s", self.name, safe_repr(exc))

    async def _on_disconnected(self) -> None:
        if not self.closed:
            logger.warning("node %s lost its NATS connection; reconnecting", self.name)

    async def _on_reconnected(self) -> None:
        logger.info("node %s reconnected to NATS", self.name)
