"""send_request / receive_response / check_response: calls to many servers at
once (OTP 25), with the errors ``call`` raises and late replies dropped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncotp
from asyncotp import (
    NOREPLY,
    Caller,
    CallTimeout,
    GenServer,
    MailboxFull,
    Node,
    NoProcess,
    NotAnActorError,
    Overflow,
    Pid,
    RequestId,
    Response,
    ServerExited,
    call,
    cast,
    check_response,
    process_info,
    receive,
    receive_response,
    receive_responses,
    self_pid,
    send_request,
    stop,
    wait_response,
)
from asyncotp.testing import VirtualClock
from tests.helpers import Gate, in_actor, wait


class Echo(GenServer):
    """Answers at once, or holds callers for the test to answer."""

    held: asyncio.Queue[Caller]

    async def init(self) -> None:
        self.held = asyncio.Queue()

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        match request:
            case "hold":
                self.held.put_nowait(caller)
                return NOREPLY
            case ("wait", Gate() as gate, value):
                await gate.pass_through()
                return value
            case "crash":
                raise RuntimeError("crashed before replying")
            case ("get_held",):
                return self.held
        return ("echo", request)


async def held_queue(pid: Pid) -> asyncio.Queue[Caller]:
    queue: asyncio.Queue[Caller] = await call(pid, ("get_held",))
    return queue


async def test_a_plain_task_sends_a_request_and_receives_the_reply(node: Node) -> None:
    pid = await wait(Echo.start())
    req = send_request(pid, "hi")
    assert isinstance(req, RequestId)
    assert await wait(receive_response(req)) == ("echo", "hi")


async def test_an_actor_receives_the_reply_as_its_own_response(node: Node) -> None:
    pid = await wait(Echo.start())

    async def requester() -> object:
        req = send_request(pid, "hi")
        return await receive_response(req, timeout=5.0)

    assert await wait(in_actor(requester)) == ("echo", "hi")


async def test_requests_to_many_servers_are_all_in_flight_at_once(node: Node) -> None:
    gates = [Gate() for _ in range(3)]
    servers = [await wait(Echo.start()) for _ in gates]
    reqs = [
        send_request(pid, ("wait", gate, n))
        for n, (pid, gate) in enumerate(zip(servers, gates, strict=True))
    ]
    # Every server holds its request at the same time: sequential calls could not.
    for gate in gates:
        await wait(gate.entered.wait())
    for gate in reversed(gates):
        gate.open()
    responses = await wait(receive_responses(reqs, timeout=5.0))
    assert [r.value for r in responses] == [0, 1, 2]
    assert all(r.ok and r.request_id is req for r, req in zip(responses, reqs, strict=True))


async def test_a_dead_pid_gives_no_process_in_the_response_not_at_send(node: Node) -> None:
    pid = await wait(Echo.start())
    await wait(stop(pid))
    req = send_request(pid, "hi")
    with pytest.raises(NoProcess, match="not alive"):
        await wait(receive_response(req))


async def test_an_unknown_name_gives_no_process_in_the_response(node: Node) -> None:
    req = send_request("nobody", "hi")
    with pytest.raises(NoProcess, match="nobody"):
        await wait(receive_response(req))


async def test_a_server_that_crashes_before_replying_gives_server_exited(node: Node) -> None:
    pid = await wait(Echo.start())
    req = send_request(pid, "crash")
    with pytest.raises(ServerExited) as info:
        await wait(receive_response(req))
    assert isinstance(info.value.reason, RuntimeError)


async def test_a_full_mailbox_gives_mailbox_full_in_the_response(node: Node) -> None:
    gate = Gate()
    pid = await wait(Echo.start(mailbox_size=1, overflow=Overflow.DROP_NEWEST))
    busy = send_request(pid, ("wait", gate, "busy"))
    await wait(gate.entered.wait())
    queued = send_request(pid, "fills the mailbox")
    refused = send_request(pid, "one too many")
    with pytest.raises(MailboxFull):
        await wait(receive_response(refused))
    gate.open()
    assert await wait(receive_response(busy)) == "busy"
    assert await wait(receive_response(queued)) == ("echo", "fills the mailbox")


async def test_a_timeout_raises_call_timeout_and_the_late_reply_never_reaches_the_mailbox(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    pid = await Echo.start()
    held = await held_queue(pid)

    async def requester() -> tuple[bool, int]:
        req = send_request(pid, "hold")
        with pytest.raises(CallTimeout):
            await receive_response(req, timeout=1.0)
        caller = await held.get()
        waiting = caller.waiting  # the server sees the caller gave up
        caller.reply("too late")
        await call(pid, "sync")  # let any late delivery happen
        info = process_info(self_pid())
        assert info is not None
        return waiting, info.mailbox_length

    assert await in_actor(requester) == (False, 0)
    assert virtual_clock.elapsed == 1.0


async def test_wait_response_times_out_without_abandoning_the_request(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    pid = await Echo.start()
    held = await held_queue(pid)
    req = send_request(pid, "hold")
    with pytest.raises(CallTimeout):
        await wait_response(req, timeout=1.0)
    (await held.get()).reply("later")
    assert await wait_response(req, timeout=1.0) == "later"


async def test_a_response_is_collected_once(node: Node) -> None:
    pid = await wait(Echo.start())
    req = send_request(pid, "once")
    await wait(receive_response(req))
    with pytest.raises(ValueError, match="already collected"):
        await wait(receive_response(req))


async def test_receive_responses_reports_each_failure_in_its_own_response(
    virtual_clock: VirtualClock, otp_node: Node
) -> None:
    pid = await Echo.start()
    reqs = [send_request(pid, "a"), send_request(pid, "hold"), send_request("nobody", "c")]
    responses = await receive_responses(reqs, timeout=2.0)
    assert responses[0].value == ("echo", "a")
    assert isinstance(responses[1].error, CallTimeout)
    assert isinstance(responses[2].error, NoProcess)
    assert [r.ok for r in responses] == [True, False, False]
    with pytest.raises(NoProcess):
        _ = responses[2].value
    assert virtual_clock.elapsed == 2.0  # one deadline for all, not one per request


async def test_only_the_actor_that_sent_a_request_can_receive_its_response(
    node: Node,
) -> None:
    pid = await wait(Echo.start())
    req = await wait(in_actor(lambda: _send(pid)))
    with pytest.raises(NotAnActorError, match="only that actor"):
        await wait(receive_response(req))


async def _send(pid: Pid) -> RequestId:
    return send_request(pid, "x")


class Fanout(GenServer):
    """Asks another server in handle_cast; gets the answer in handle_info."""

    got: list[object]
    pending: RequestId | None

    async def init(self, target: Pid) -> None:
        self.target = target
        self.got = []
        self.pending = None

    async def handle_cast(self, request: Any) -> None:
        self.pending = send_request(self.target, request)

    async def handle_info(self, message: Any) -> None:
        assert self.pending is not None
        reply = check_response(message, self.pending)
        self.got.append(("other", message) if reply is NOREPLY else ("reply", reply))

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return self.got


async def test_a_genserver_gets_responses_in_handle_info_and_check_response_tells_them_apart(
    node: Node,
) -> None:
    echo = await wait(Echo.start())
    fan = await wait(Fanout.start(echo))
    cast(fan, "question")
    # Echo answers the question before this sync call, and the response is in
    # fan's mailbox before the next call: mailboxes keep their order.
    await wait(call(echo, "sync"))
    assert await wait(call(fan, "got")) == [("reply", ("echo", "question"))]


async def test_check_response_says_noreply_for_other_messages(node: Node) -> None:
    pid = await wait(Echo.start())

    async def requester() -> tuple[object, object]:
        mine = send_request(pid, "mine")
        other = send_request(pid, "other")
        first = await receive(lambda m: isinstance(m, Response) and m.request_id is other)
        return check_response(first, mine), check_response(first, other)

    assert await wait(in_actor(requester)) == (NOREPLY, ("echo", "other"))


@settings(max_examples=25, deadline=None)
@given(
    order=st.permutations(range(6)),
    abandoned=st.sets(st.integers(min_value=0, max_value=5)),
)
def test_each_request_gets_its_own_reply_whatever_the_order_and_abandoned_ones_leave_nothing(
    order: list[int], abandoned: set[int]
) -> None:
    async def main() -> tuple[dict[int, object], int]:
        pid = await Echo.start()
        held = await held_queue(pid)
        reqs = [send_request(pid, "hold") for _ in range(6)]
        callers = [await held.get() for _ in range(6)]
        got: dict[int, object] = {}
        for n in sorted(abandoned):
            with pytest.raises(CallTimeout):
                await receive_response(reqs[n], timeout=0)
        for n in order:
            callers[n].reply(n)
        for n, req in enumerate(reqs):
            if n not in abandoned:
                got[n] = await receive_response(req, timeout=5.0)
        await call(pid, "sync")  # any late delivery has happened by now
        info = process_info(self_pid())
        assert info is not None
        return got, info.mailbox_length

    got, left = asyncotp.run(main)
    assert got == {n: n for n in range(6) if n not in abandoned}
    assert left == 0
