"""What a node does with each kind of message on its subject.

Every handler runs in the subscription's task, one message at a time, and
does its work without waiting: a call is queued in the server's mailbox
before the next message is looked at (its reply goes out when the server
answers), which keeps the order of messages between two actors.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from .._core import (
    KILL,
    NOPROC,
    CallTimeout,
    MailboxFull,
    NoProcess,
    Pid,
    ServerExited,
    add_remote_link,
    begin_call,
    cast,
    drop_remote_link,
    exit_future,
    is_alive,
    kill,
    remote_down,
    remote_exit,
    remote_of,
    request_stop,
    send,
)
from ._codec import BadMessage, Json, RemoteError, type_name
from ._peers import Peer
from ._transport import Distribution, Handler


def _local(dist: Distribution, number: Json) -> Pid | None:
    """The local actor a message is for (None: never sent out, or gone)."""
    if type(number) is not int:
        raise BadMessage("'to' is not an actor number")
    return dist.exported.get(number)


def _respond(dist: Distribution, reply: str, answer: dict[str, Json]) -> None:
    if reply:
        dist.publish(reply, answer)


def _on_send(dist: Distribution, _peer: Peer, env: dict[str, Json], _reply: str) -> None:
    pid = _local(dist, env.get("to"))
    message = dist.codec.decode(env.get("m"))
    if pid is None or not is_alive(pid):
        dist.undeliverable += 1
        return
    try:
        if env["k"] == "cast":
            cast(pid, message)
        else:
            send(pid, message)
    except MailboxFull:
        dist.undeliverable += 1


def _on_call(dist: Distribution, _peer: Peer, env: dict[str, Json], reply: str) -> None:
    pid = _local(dist, env.get("to"))
    request = dist.codec.decode(env.get("m"))
    timeout = env.get("t")
    if timeout is not None and (type(timeout) not in (int, float) or not 0 <= timeout < 1e9):
        raise BadMessage("bad call timeout")
    caller = env.get("f")
    caller_pid = None if caller is None else dist.codec.decode(caller)
    if caller_pid is not None and type(caller_pid) is not Pid:
        raise BadMessage("bad caller")
    if pid is None:
        _respond(dist, reply, {"err": {"kind": "noproc"}})
        return
    try:
        fut = begin_call(pid, request, None if timeout is None else float(timeout), caller_pid)
    except NoProcess:
        _respond(dist, reply, {"err": {"kind": "noproc"}})
        return
    except MailboxFull as exc:
        _respond(dist, reply, {"err": {"kind": "full", "text": str(exc)}})
        return
    fut.add_done_callback(lambda done: _answer(dist, reply, done))


def _answer(dist: Distribution, reply: str, fut: asyncio.Future[Any]) -> None:
    if fut.cancelled():
        return
    error = fut.exception()
    if error is None:
        try:
            _respond(dist, reply, {"ok": dist.codec.encode(fut.result())})
        except TypeError as exc:
            _respond(dist, reply, {"err": {"kind": "encode", "text": str(exc)}})
        return
    if isinstance(error, ServerExited):
        answer = {"kind": "exited", "reason": dist.encode_reason(error.reason)}
    elif isinstance(error, CallTimeout):
        answer = {"kind": "timeout"}
    elif isinstance(error, MailboxFull):
        answer = {"kind": "full", "text": str(error)}
    else:  # Caller.fail(error): the caller raises it, as a RemoteError
        failure = (
            error
            if isinstance(error, RemoteError)
            else RemoteError(type_name(type(error)), str(error))
        )
        answer = {"kind": "failed", "reason": dist.encode_reason(failure)}
    _respond(dist, reply, {"err": answer})


def _on_stop(dist: Distribution, _peer: Peer, env: dict[str, Json], reply: str) -> None:
    pid = _local(dist, env.get("to"))
    reason = dist.codec.decode(env.get("r"))
    if pid is None or not is_alive(pid):
        _respond(dist, reply, {"err": {"kind": "noproc"}})
        return
    ended = exit_future(pid)
    if reason is KILL:
        kill(pid)
    else:
        request_stop(pid, reason)
    ended.add_done_callback(
        lambda done: _respond(dist, reply, {"ok": dist.encode_reason(done.result())})
    )


def _remote_pid(dist: Distribution, data: Json) -> Pid:
    pid = dist.codec.decode(data)
    if type(pid) is not Pid or remote_of(pid) is None:
        raise BadMessage("expected a remote pid")
    return pid


def _on_link(dist: Distribution, peer: Peer, env: dict[str, Json], _reply: str) -> None:
    remote = _remote_pid(dist, env.get("f"))
    local = _local(dist, env.get("to"))
    if env["k"] == "unlink":
        if local is not None:
            drop_remote_link(local, remote)
            ties = dist.ties.get(local)
            if ties is not None:
                ties.links.discard(remote)
        peer.links.discard((local, remote))
        return
    if local is None or not add_remote_link(local, remote):
        source = [dist.name, dist.incarnation, env.get("to")]
        dist.post(
            peer,
            {
                "k": "exit",
                "f": {"$p": source},
                "to": remote.number,
                "r": {"$r": NOPROC.value},
                "l": True,
            },
        )
        return
    dist.ties_of(local).links.add(remote)
    peer.links.add((local, remote))


def _on_exit(dist: Distribution, peer: Peer, env: dict[str, Json], _reply: str) -> None:
    local = _local(dist, env.get("to"))
    reason = dist.codec.decode(env.get("r"))
    source = env.get("f")
    sender = _remote_pid(dist, source) if source is not None else None
    if local is None or sender is None:
        return
    if env.get("l") is True:
        ties = dist.ties.get(local)
        if ties is not None:
            ties.links.discard(sender)
        peer.links.discard((local, sender))
        if drop_remote_link(local, sender):
            remote_exit(local, sender, reason, from_link=True)
    else:
        remote_exit(local, sender, reason, from_link=False)


def _on_monitor(dist: Distribution, peer: Peer, env: dict[str, Json], _reply: str) -> None:
    watcher = _remote_pid(dist, env.get("f"))
    rid = env.get("id")
    if type(rid) is not int:
        raise BadMessage("bad monitor id")
    local = _local(dist, env.get("to"))
    if env["k"] == "demon":
        if local is not None:
            ties = dist.ties.get(local)
            if ties is not None:
                ties.watchers.discard((watcher, rid))
            peer.watched.discard((local, watcher, rid))
        return
    if local is None or not is_alive(local):
        target = [dist.name, dist.incarnation, env.get("to")]
        dist.post(
            peer,
            {
                "k": "down",
                "to": watcher.number,
                "id": rid,
                "p": {"$p": target},
                "r": {"$r": NOPROC.value},
            },
        )
        return
    dist.ties_of(local).watchers.add((watcher, rid))
    peer.watched.add((local, watcher, rid))


def _on_down(dist: Distribution, peer: Peer, env: dict[str, Json], _reply: str) -> None:
    rid = env.get("id")
    if type(rid) is not int:
        raise BadMessage("bad monitor id")
    reason = dist.codec.decode(env.get("r"))
    entry = dist.monitors.pop(rid, None)
    if entry is None:
        return  # demonitored meanwhile
    ref, watcher, target, owner = entry
    dist.rid_of.pop(ref, None)
    owner.watching.pop(rid, None)
    ties = dist.ties.get(watcher)
    if ties is not None:
        ties.watching.discard(rid)
    remote_down(watcher, ref, target, reason)


HANDLERS: Final[dict[str, Handler]] = {
    "send": _on_send,
    "cast": _on_send,
    "call": _on_call,
    "stop": _on_stop,
    "link": _on_link,
    "unlink": _on_link,
    "exit": _on_exit,
    "mon": _on_monitor,
    "demon": _on_monitor,
    "down": _on_down,
}
