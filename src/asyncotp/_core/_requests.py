"""Asynchronous calls: ``send_request`` now, the response later (OTP 25).

``send_request(server, request)`` sends the same ``Caller`` a ``call``
sends and returns at once with a ``RequestId``; the server answers it as
any call (``handle_call``'s return value, ``caller.reply``). The caller
collects the answer with ``await receive_response(req, timeout)``, or, in
a GenServer or an actor that receives its own messages, gets a
``Response`` message in its mailbox and recognises it with
``check_response(message, req)``. Calls to many servers at once::

    reqs = [send_request(pid, "ping") for pid in servers]
    responses = await receive_responses(reqs, timeout=1.0)  # one deadline for all

Errors are the ones ``call`` raises, carried by the response instead of
raised at send time: ``NoProcess`` (a dead pid or an unknown name),
``ServerExited`` (the server ended before it replied), ``MailboxFull`` (a
bounded mailbox refused the request). Past its timeout,
``receive_response`` raises ``CallTimeout`` and abandons the request: a
late reply is dropped, it never reaches the mailbox (OTP does the same with
an alias). ``wait_response`` times out without abandoning.

How the answer travels: the server resolves the request's future, as for
a ``call``. If the requester is an actor, a callback on that future then
puts a ``Response`` in its mailbox (``deliver_system``: a bounded mailbox
never refuses it); ``receive_response`` takes it with a selective receive,
or takes the future's result directly when it has not been delivered yet.
A requester that never collects a response keeps it in its mailbox, as a
message it never reads (as in OTP).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from typing import Any, Final, final

from ._context import calling_process, current_node, resolve
from ._errors import CallTimeout, NoProcess, NotAnActorError, ReceiveTimeout
from ._mailbox import deliver, deliver_system, intercepted, receive
from ._pid import Pid
from ._safe import safe_repr
from ._server import NOREPLY, Caller
from ._state import DEAD, Process
from ._validate import check_timeout

DEFAULT_TIMEOUT: Final = 5.0


class _Phase(enum.Enum):
    PENDING = 0  # no answer yet, or answered but not in the mailbox yet
    DELIVERED = 1  # the Response is in the requester's mailbox
    DONE = 2  # collected (or abandoned): a late answer is dropped


@final
class RequestId:
    """The handle of one ``send_request``: pass it to ``receive_response``,
    ``wait_response``, ``check_response`` or ``receive_responses``.

    ``server`` is the destination as given (a pid or a name), ``request``
    the request sent. Collect it from the task that sent it (for an actor,
    the actor itself: the response is one of its messages).
    """

    __slots__ = ("_fut", "_owner", "_phase", "request", "server")

    def __init__(
        self, fut: asyncio.Future[Any], owner: Process | None, server: object, request: object
    ) -> None:
        self._fut = fut
        self._owner = owner
        self._phase = _Phase.PENDING
        self.server = server
        self.request = request

    @property
    def answered(self) -> bool:
        """Whether the answer (a reply or an error) has come in."""
        return self._fut.done() and not self._fut.cancelled()

    def _arrived(self, fut: asyncio.Future[Any]) -> None:
        """The future's callback: put the answer in the requester's mailbox."""
        if not fut.cancelled():
            fut.exception()  # retrieved here: an abandoned error is not "never retrieved"
        owner = self._owner
        if self._phase is not _Phase.PENDING or owner is None or owner.state == DEAD:
            return
        self._phase = _Phase.DELIVERED
        deliver_system(owner, Response(self))

    def _collect(self) -> Any:
        """The answer: the reply, or the error raised."""
        self._phase = _Phase.DONE
        return self._fut.result()

    def _abandon(self) -> None:
        self._phase = _Phase.DONE
        if not self._fut.done():
            self._fut.cancel()  # the server sees caller.waiting False; its reply vanishes

    def __repr__(self) -> str:
        return f"<RequestId to {safe_repr(self.server)} request={safe_repr(self.request)}>"


@final
class Response:
    """The answer to a ``send_request``, as a message in the requester's
    mailbox (and as an item of ``receive_responses``'s list).

    ``request_id`` is the request; ``ok`` whether it is a reply rather than
    an error; ``value`` the reply (raises the error if it is one); ``error``
    the error (None for a reply).
    """

    __slots__ = ("_error", "_value", "request_id")

    def __init__(self, request_id: RequestId, error: BaseException | None = None) -> None:
        self.request_id = request_id
        fut = request_id._fut
        if error is None and fut.done() and not fut.cancelled():
            error = fut.exception()
        self._error = error
        self._value = fut.result() if error is None and fut.done() else None

    @property
    def ok(self) -> bool:
        """True for a reply, False for an error."""
        return self._error is None

    @property
    def error(self) -> BaseException | None:
        """The error (``NoProcess``, ``ServerExited``, ``CallTimeout``...), or None."""
        return self._error

    @property
    def value(self) -> Any:
        """The reply; raises the error if the request failed."""
        if self._error is not None:
            raise self._error
        return self._value

    def __repr__(self) -> str:
        what = (
            f"value={safe_repr(self._value)}"
            if self._error is None
            else (f"error={safe_repr(self._error)}")
        )
        return f"<Response to {safe_repr(self.request_id.server)} {what}>"


def send_request(server: Pid | str, request: object) -> RequestId:
    """Send ``request`` to a server as a ``call`` would, without waiting.

    Returns a ``RequestId``; collect the answer with ``receive_response``
    (or ``check_response`` on a ``Response`` message, or
    ``receive_responses`` for many). Never raises for a dead or unknown
    server: the answer is then ``NoProcess``, so a loop over many servers
    sends to all of them. From another thread: ``WrongThreadError``.
    """
    node = current_node("send_request")
    me = calling_process()
    fut: asyncio.Future[Any] = node.loop.create_future()
    req = RequestId(fut, me, server, request)
    if me is not None:
        fut.add_done_callback(req._arrived)
    try:
        proc = resolve(server, "send_request")
    except NoProcess as exc:
        fut.set_exception(exc)
        return req
    if proc is None:
        fut.set_exception(
            NoProcess(f"send_request: {safe_repr(server)} is not alive; nothing to call", server)
        )
        return req
    caller = Caller(request, fut, proc, me.pid if me is not None else None, None)
    if node.intercept is None or not intercepted(node, proc, caller):
        try:
            deliver(proc, caller)
        except Exception as exc:  # noqa: BLE001 - a refusal (MailboxFull) is the answer
            if not fut.done():
                fut.set_exception(exc)
    return req


def _check_owner(req: RequestId, operation: str) -> Process | None:
    if type(req) is not RequestId:
        raise TypeError(
            f"{operation}: expected a RequestId from send_request, not {safe_repr(req)}"
        )
    owner = req._owner
    if owner is not None and calling_process() is not owner:
        raise NotAnActorError(
            f"{operation}: {req!r} was sent by {owner.pid!r}; only that actor can receive its "
            "response (it is one of its messages)"
        )
    return owner


async def _wait(req: RequestId, timeout: float | None, operation: str) -> Any:
    """The answer of ``req``; ``CallTimeout`` past ``timeout`` (not abandoned)."""
    owner = _check_owner(req, operation)
    if req._phase is _Phase.DONE:
        raise ValueError(
            f"{operation}: the response to {req!r} was already collected (or abandoned); "
            "a request has one response"
        )
    fut = req._fut
    if fut.done() and req._phase is _Phase.PENDING:
        return req._collect()  # answered, not delivered yet: it never will be
    try:
        if owner is None:
            if timeout is None:
                await asyncio.shield(fut)
            else:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
        else:
            await receive(lambda m: type(m) is Response and m.request_id is req, timeout)
    except (ReceiveTimeout, TimeoutError):
        raise CallTimeout(
            f"{operation}: {safe_repr(req.server)} sent no reply within {timeout} s (request "
            f"{safe_repr(req.request)}); the server is busy or blocked: raise the timeout",
            req.server if type(req.server) is Pid else None,
            timeout,
        ) from None
    return req._collect()


async def receive_response(req: RequestId, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
    """Wait for the answer to ``req``: return the reply or raise its error.

    Errors as ``call``'s: ``NoProcess``, ``ServerExited``, ``MailboxFull``.
    Past ``timeout`` seconds (None or ``math.inf``: no limit),
    ``CallTimeout`` and the request is abandoned: a late reply is dropped
    and never reaches the mailbox. Collect each request once (a second
    time: ``ValueError``), from the task that sent it.
    """
    if timeout is not DEFAULT_TIMEOUT:
        timeout = check_timeout(timeout, "receive_response")
    try:
        return await _wait(req, timeout, "receive_response")
    except CallTimeout:
        req._abandon()
        raise


async def wait_response(req: RequestId, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
    """As ``receive_response``, but past ``timeout`` the request stays
    pending (OTP's ``wait_response``): wait again later, or
    ``receive_response`` to give up on it."""
    if timeout is not DEFAULT_TIMEOUT:
        timeout = check_timeout(timeout, "wait_response")
    return await _wait(req, timeout, "wait_response")


def check_response(message: object, req: RequestId) -> Any:
    """If ``message`` is the ``Response`` to ``req``, its reply (or raise its
    error); otherwise ``NOREPLY`` (OTP's ``no_reply``): the message is for
    something else.

    For a GenServer that sends requests and gets the answers in
    ``handle_info``, as with OTP's ``check_response``::

        async def handle_info(self, message):
            if (reply := check_response(message, self.pending)) is not NOREPLY:
                ...
    """
    if type(req) is not RequestId:
        raise TypeError(
            f"check_response: expected a RequestId from send_request, not {safe_repr(req)}"
        )
    if type(message) is not Response or message.request_id is not req:
        return NOREPLY
    req._phase = _Phase.DONE
    return message.value


async def receive_responses(
    requests: Iterable[RequestId], timeout: float | None = DEFAULT_TIMEOUT
) -> list[Response]:
    """Collect the answers to many requests within one deadline.

    Returns one ``Response`` per request, in the order given: a reply
    (``ok``) or an error, ``CallTimeout`` for those that did not answer
    within ``timeout`` seconds of the start (they are abandoned, as by
    ``receive_response``). Never raises for a failed request: look at each
    response's ``ok`` or ``value``.
    """
    if timeout is not DEFAULT_TIMEOUT:
        timeout = check_timeout(timeout, "receive_responses")
    reqs = list(requests)
    for req in reqs:
        _check_owner(req, "receive_responses")
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    out: list[Response] = []
    for req in reqs:
        left = None if deadline is None else max(0.0, deadline - loop.time())
        try:
            await _wait(req, left, "receive_responses")
        except CallTimeout as exc:
            req._abandon()
            out.append(Response(req, exc))
            continue
        except Exception as exc:  # noqa: BLE001 - a failed request is reported in its Response
            out.append(Response(req, exc))
            continue
        out.append(Response(req))
    return out
