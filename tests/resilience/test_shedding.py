"""Load shedding: SheddingServer drops requests by age and by priority.

The tests hold the server busy on a ``Gate`` the test opens. Requests sent
meanwhile wait in the server's mailbox and enter its queue together as soon
as the held request returns, so the queue fills deterministically. Time
moves only when the test moves the loop's clock (``clock.advance``), never by
sleeping.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from asyncotp import (
    NOREPLY,
    ActorError,
    Caller,
    CallTimeout,
    GenServer,
    Node,
    NoProcess,
    Pid,
    ServerExited,
    Stop,
    call,
    cast,
    is_alive,
)
from asyncotp.resilience import (
    Overloaded,
    RequestEnvelope,
    SheddingServer,
    SheddingStats,
    ShedReason,
    call_with_deadline,
)
from asyncotp.testing import VirtualClock
from tests.helpers import Gate, run_example, started

# -- helpers -------------------------------------------------------------------


class Worker(SheddingServer):
    """Records what it handles; a ``("hold", gate)`` request waits on the gate."""

    max_queue: int | None = 3

    async def init(self, max_queue: int | None = 3, default_deadline: float | None = None) -> None:
        self.max_queue = max_queue
        self.default_deadline = default_deadline
        self.handled: list[object] = []
        self.casts: list[object] = []

    async def handle_request(self, request: Any, caller: Caller) -> Any:
        match request:
            case ("hold", Gate() as gate):
                gate.entered.set()
                await gate.opened.wait()
                self.handled.append("hold")
                return "held"
            case "handled":
                return list(self.handled)
            case "casts":
                return list(self.casts)
            case ("stop", reply):
                raise Stop("asked", reply=reply)
            case "crash":
                raise ValueError("boom")
            case ("later", value):
                asyncio.get_running_loop().call_soon(caller.reply, value)
                self.handled.append(request)
                return NOREPLY
            case _:
                self.handled.append(request)
                return ("done", request)

    async def handle_cast(self, request: Any) -> None:
        self.casts.append((request, list(self.handled)))


async def busy(server: Pid) -> tuple[Gate, asyncio.Task[Any]]:
    """Make the server busy with a held request; return the gate and the call."""
    gate = Gate()
    task = await started(call(server, ("hold", gate)))
    await gate.entered.wait()
    return gate, task


async def overloaded(task: asyncio.Task[Any]) -> Overloaded:
    with pytest.raises(Overloaded) as info:
        await task
    return info.value


# -- shedding by age ---------------------------------------------------------------


async def test_a_request_that_waited_past_its_deadline_is_shed_not_handled(
    node: Node, clock: VirtualClock
) -> None:
    server = await Worker.start()
    gate, held = await busy(server)
    late = await started(call_with_deadline(server, "late", deadline=1.0))
    await clock.advance(1.5)
    gate.opened.set()
    error = await overloaded(late)
    assert error.reason is ShedReason.EXPIRED
    assert error.pid is server
    assert error.waited >= 1.5
    assert await held == "held"
    assert await call(server, "handled") == ["hold"]  # "late" never ran


async def test_a_request_within_its_deadline_is_handled(node: Node, clock: VirtualClock) -> None:
    server = await Worker.start()
    gate, held = await busy(server)
    on_time = await started(call_with_deadline(server, "on time", deadline=1.0))
    await clock.advance(0.5)
    gate.opened.set()
    assert await on_time == ("done", "on time")
    await held


async def test_a_request_already_past_its_deadline_on_arrival_is_shed_at_once(
    node: Node,
) -> None:
    server = await Worker.start()
    stale = RequestEnvelope("stale", sent_at=asyncio.get_running_loop().time() - 10, deadline=1)
    with pytest.raises(Overloaded) as info:
        await call(server, stale)
    assert info.value.reason is ShedReason.EXPIRED
    assert await call(server, "handled") == []


async def test_a_plain_call_waits_in_the_queue_at_most_the_default_deadline(
    node: Node, clock: VirtualClock
) -> None:
    server = await Worker.start(default_deadline=0.5)
    gate, held = await busy(server)
    gate2 = Gate()
    second = await started(call_with_deadline(server, ("hold", gate2), None, priority=1))
    plain = await started(call(server, "plain"))
    gate.opened.set()
    await gate2.entered.wait()  # "plain" is queued now, behind the second hold
    await clock.advance(1.0)
    gate2.opened.set()
    assert (await overloaded(plain)).reason is ShedReason.EXPIRED
    await asyncio.gather(held, second)
    assert await call(server, "handled") == ["hold", "hold"]


async def test_a_request_whose_caller_gave_up_is_dropped_without_being_handled(
    node: Node, clock: VirtualClock
) -> None:
    server = await Worker.start()
    gate, held = await busy(server)
    impatient = await started(call(server, "impatient", timeout=1.0))
    await clock.advance(2.0)
    with pytest.raises(CallTimeout):
        await impatient
    gate.opened.set()
    await held
    stats = await SheddingServer.statistics(server)
    assert stats.abandoned == 1
    assert stats.expired == 0
    assert await call(server, "handled") == ["hold"]


async def test_expired_requests_make_room_in_a_full_queue_before_anything_is_refused(
    node: Node, clock: VirtualClock
) -> None:
    server = await Worker.start(max_queue=2)
    gate, held = await busy(server)
    old = await started(call_with_deadline(server, "old", deadline=1.0))
    gate2 = Gate()
    second = await started(call_with_deadline(server, ("hold", gate2), None, priority=1))
    gate.opened.set()
    await gate2.entered.wait()  # "old" is queued now
    filler = await started(call_with_deadline(server, "filler", None))
    new = await started(call_with_deadline(server, "new", None))
    await clock.advance(2.0)
    gate2.opened.set()
    # "filler" fills the queue; "new" finds it full, but "old" has expired.
    assert (await overloaded(old)).reason is ShedReason.EXPIRED
    assert await filler == ("done", "filler")
    assert await new == ("done", "new")
    await asyncio.gather(held, second)


# -- shedding by priority ------------------------------------------------------------


async def test_requests_are_handled_by_priority_then_in_arrival_order(node: Node) -> None:
    server = await Worker.start(max_queue=10)
    gate, held = await busy(server)
    tasks = [
        await started(call_with_deadline(server, name, None, priority=priority))
        for name, priority in [("a0", 0), ("b5", 5), ("c0", 0), ("d5", 5), ("e9", 9)]
    ]
    gate.opened.set()
    await asyncio.gather(held, *tasks)
    assert await call(server, "handled") == ["hold", "e9", "b5", "d5", "a0", "c0"]


async def test_a_full_queue_evicts_the_newest_of_the_least_important_requests(
    node: Node,
) -> None:
    server = await Worker.start(max_queue=3)
    gate, held = await busy(server)
    low_old = await started(call_with_deadline(server, "low old", None, priority=0))
    low_new = await started(call_with_deadline(server, "low new", None, priority=0))
    mid = await started(call_with_deadline(server, "mid", None, priority=1))
    high = await started(call_with_deadline(server, "high", None, priority=5))
    gate.opened.set()
    error = await overloaded(low_new)
    assert error.reason is ShedReason.EVICTED
    assert await high == ("done", "high")
    assert await mid == ("done", "mid")
    assert await low_old == ("done", "low old")
    await held
    assert await call(server, "handled") == ["hold", "high", "mid", "low old"]


async def test_a_request_no_more_important_than_a_full_queue_is_refused(node: Node) -> None:
    server = await Worker.start(max_queue=2)
    gate, held = await busy(server)
    first = await started(call_with_deadline(server, "first", None, priority=1))
    second = await started(call_with_deadline(server, "second", None, priority=1))
    same = await started(call_with_deadline(server, "same", None, priority=1))
    lower = await started(call_with_deadline(server, "lower", None, priority=0))
    gate.opened.set()
    assert (await overloaded(same)).reason is ShedReason.QUEUE_FULL
    assert (await overloaded(lower)).reason is ShedReason.QUEUE_FULL
    assert await first == ("done", "first")
    assert await second == ("done", "second")
    await held


async def test_a_request_that_arrives_during_handling_can_outrank_older_ones(
    node: Node,
) -> None:
    server = await Worker.start(max_queue=10)
    gate, held = await busy(server)
    low = await started(call_with_deadline(server, "low", None, priority=0))
    gate2 = Gate()
    second_hold = await started(call_with_deadline(server, ("hold", gate2), None, priority=1))
    gate.opened.set()
    await gate2.entered.wait()  # the priority-1 hold runs before "low"
    urgent = await started(call_with_deadline(server, "urgent", None, priority=3))
    gate2.opened.set()
    await asyncio.gather(held, low, second_hold, urgent)
    assert await call(server, "handled") == ["hold", "hold", "urgent", "low"]


def priority_model(
    priorities: list[int], max_queue: int
) -> tuple[list[int], dict[int, ShedReason]]:
    """What a bounded priority queue should do: the order in which the
    requests (by index) are handled, and why the others were shed."""
    queue: list[tuple[int, int]] = []
    shed: dict[int, ShedReason] = {}
    for index, priority in enumerate(priorities):
        if len(queue) < max_queue:
            queue.append((priority, index))
            continue
        lowest = min(p for p, _ in queue)
        if priority > lowest:
            victim = max((q for q in queue if q[0] == lowest), key=lambda q: q[1])
            queue.remove(victim)
            shed[victim[1]] = ShedReason.EVICTED
            queue.append((priority, index))
        else:
            shed[index] = ShedReason.QUEUE_FULL
    return [i for _, i in sorted(queue, key=lambda q: (-q[0], q[1]))], shed


@pytest.mark.parametrize("seed", range(20))
async def test_a_bounded_priority_queue_behaves_like_its_model(node: Node, seed: int) -> None:
    rng = random.Random(seed)
    max_queue = rng.randint(1, 4)
    priorities = [rng.randint(0, 3) for _ in range(rng.randint(0, 10))]
    server = await Worker.start(max_queue=max_queue)
    gate, held = await busy(server)
    tasks = [
        await started(call_with_deadline(server, i, None, priority=p))
        for i, p in enumerate(priorities)
    ]
    gate.opened.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    await held
    order, shed = priority_model(priorities, max_queue)
    handled = await call(server, "handled")
    assert handled == ["hold", *order]
    assert {
        i: outcome.reason for i, outcome in enumerate(outcomes) if isinstance(outcome, Overloaded)
    } == shed


async def test_an_unbounded_queue_never_refuses(node: Node) -> None:
    server = await Worker.start(max_queue=None)
    gate, held = await busy(server)
    tasks = [await started(call(server, i)) for i in range(50)]
    gate.opened.set()
    assert await asyncio.gather(*tasks) == [("done", i) for i in range(50)]
    await held
    stats = await SheddingServer.statistics(server)
    assert (stats.handled, stats.shed, stats.queued) == (51, 0, 0)


# -- the rest of the GenServer ----------------------------------------------------------


async def test_casts_are_handled_between_queued_requests_in_arrival_order(node: Node) -> None:
    server = await Worker.start(max_queue=10)
    gate, held = await busy(server)
    one = await started(call(server, "one"))
    two = await started(call(server, "two"))
    cast(server, "note")
    gate.opened.set()
    await asyncio.gather(held, one, two)
    assert await call(server, "handled") == ["hold", "one", "two"]
    # The cast arrived while "hold" ran, so it was handled right after it.
    assert await call(server, "casts") == [("note", ["hold"])]


async def test_noreply_lets_handle_request_answer_later(node: Node) -> None:
    server = await Worker.start()
    assert await call(server, ("later", 42)) == 42


async def test_stop_with_a_reply_answers_the_caller_then_stops(node: Node) -> None:
    server = await Worker.start()
    assert await call(server, ("stop", "bye")) == "bye"
    assert not is_alive(server)


async def test_a_crash_in_handle_request_ends_the_server_and_fails_queued_callers(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    server = await Worker.start(max_queue=10)
    gate, held = await busy(server)
    crash = await started(call(server, "crash"))
    behind = await started(call(server, "behind"))
    gate.opened.set()
    await held
    for task in (crash, behind):
        with pytest.raises(ServerExited) as info:
            await task
        assert isinstance(info.value.reason, ValueError)
    assert not is_alive(server)


async def test_statistics_count_what_was_handled_and_shed(node: Node) -> None:
    server = await Worker.start(max_queue=1)
    gate, held = await busy(server)
    kept = await started(call_with_deadline(server, "kept", None, priority=0))
    refused = await started(call_with_deadline(server, "refused", None, priority=0))
    evicting = await started(call_with_deadline(server, "evicting", None, priority=1))
    gate.opened.set()
    assert (await overloaded(refused)).reason is ShedReason.QUEUE_FULL
    assert (await overloaded(kept)).reason is ShedReason.EVICTED
    await asyncio.gather(held, evicting)
    stats = await SheddingServer.statistics(server)
    assert stats == SheddingStats(
        queued=0,
        max_queue=1,
        handled=2,
        expired=0,
        evicted=1,
        rejected=1,
        abandoned=0,
        mean_service_time=stats.mean_service_time,
    )
    assert stats.shed == 2
    assert stats.mean_service_time >= 0
    # Shed requests are answered: the server owes nobody a reply any more.
    assert not node.procs[server].callers


async def test_overloaded_names_the_server_and_says_what_to_do(node: Node) -> None:
    server = await Worker.start(max_queue=0)
    with pytest.raises(Overloaded) as info:
        await call(server, "anything")
    error = info.value
    assert isinstance(error, ActorError)
    assert error.reason is ShedReason.QUEUE_FULL
    assert repr(server) in str(error)
    assert "retry later" in str(error)


def test_defining_handle_call_on_a_shedding_server_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="handle_request"):

        class Wrong(SheddingServer):
            async def handle_call(self, request: Any, caller: Caller) -> Any:
                return request


class Echo(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


async def test_statistics_of_a_plain_server_is_a_type_error(node: Node) -> None:
    echo = await Echo.start()
    with pytest.raises(TypeError, match="not a SheddingServer"):
        await SheddingServer.statistics(echo)


def test_request_envelopes_are_validated_and_repr_as_python() -> None:
    envelope = RequestEnvelope("r", priority=2, sent_at=1.5, deadline=0.25)
    assert eval(repr(envelope), {"RequestEnvelope": RequestEnvelope}) == envelope
    assert envelope.expires_at == 1.75
    assert RequestEnvelope("r").expires_at == float("inf")
    with pytest.raises(ValueError, match="deadline"):
        RequestEnvelope("r", deadline=0)
    with pytest.raises(TypeError, match="priority"):
        RequestEnvelope("r", priority=1.5)  # type: ignore[arg-type]
    assert repr(ShedReason.EXPIRED) == "ShedReason.EXPIRED"


async def test_call_with_deadline_to_a_dead_server_raises_like_call(node: Node) -> None:
    with pytest.raises(NoProcess):
        await call_with_deadline("nobody", "x", deadline=1.0)


# -- the example ---------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_load_shedding_example_answers_429_and_503_and_keeps_serving() -> None:
    result = run_example("load_shedding.py", timeout=50)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "never retrieved" not in result.stderr
    assert "200 OK" in out
    assert "429 Too Many Requests" in out
    assert "503 Service Unavailable" in out
    assert "the service is still up" in out
