"""Properties of the mailbox: per-sender order and lossless selective receive.

Each example runs on its own node (``asyncotp.run``), so examples cannot
disturb one another.
"""

from __future__ import annotations

import anyio
from hypothesis import given, settings
from hypothesis import strategies as st

import asyncotp
from asyncotp import ReceiveTimeout, receive, self_pid, send, spawn
from tests.helpers import WAIT, drain

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None)


async def yield_times(n: int) -> None:
    for _ in range(n):
        await anyio.lowlevel.checkpoint()


# Each sender is a list of pauses: before its i-th send it yields that many
# times to the event loop, so the senders' sends interleave differently.
senders_strategy = st.lists(
    st.lists(st.integers(min_value=0, max_value=3), max_size=12), min_size=1, max_size=5
)


@PROPERTY_SETTINGS
@given(senders=senders_strategy)
def test_any_interleaving_of_senders_keeps_each_senders_order_at_the_receiver(
    senders: list[list[int]],
) -> None:
    total = sum(len(pauses) for pauses in senders)

    async def sender(receiver: asyncotp.Pid, index: int, pauses: list[int]) -> None:
        for seq, pause in enumerate(pauses):
            await yield_times(pause)
            send(receiver, (index, seq))

    async def main() -> tuple[list[tuple[int, int]], list[object]]:
        me = self_pid()
        for index, pauses in enumerate(senders):
            spawn(sender, me, index, pauses)
        received = [await receive(timeout=WAIT) for _ in range(total)]
        return received, await drain()

    received, extra = asyncotp.run(main)
    assert extra == []
    for index, pauses in enumerate(senders):
        assert [seq for i, seq in received if i == index] == list(range(len(pauses)))


# A predicate is "m % modulus == remainder", so some messages match and some do not.
predicates = st.tuples(st.integers(min_value=1, max_value=4), st.integers(min_value=0, max_value=3))
messages_strategy = st.lists(st.integers(min_value=0, max_value=20), max_size=15)


@PROPERTY_SETTINGS
@given(
    before=messages_strategy,
    after=messages_strategy,
    predicate=predicates,
    pauses=st.lists(st.integers(min_value=0, max_value=2), max_size=15),
)
def test_selective_receive_takes_the_first_match_and_keeps_every_other_message_in_order(
    before: list[int], after: list[int], predicate: tuple[int, int], pauses: list[int]
) -> None:
    # ``before`` is in the mailbox when receive starts; ``after`` arrives while
    # it waits (one by one, with generated pauses), so both the first scan and
    # the rescans of newly arrived messages are exercised.
    modulus, remainder = predicate
    messages = before + after

    def matches(m: object) -> bool:
        return isinstance(m, int) and m % modulus == remainder

    async def late_sender(receiver: asyncotp.Pid) -> None:
        for i, message in enumerate(after):
            await yield_times(pauses[i] if i < len(pauses) else 0)
            send(receiver, message)
        send(receiver, "end")

    async def main() -> tuple[object, list[object]]:
        me = self_pid()
        for message in before:
            send(me, message)
        spawn(late_sender, me)
        taken = await receive(lambda m: m == "end" or matches(m), timeout=WAIT)
        if taken != "end":
            await receive(lambda m: m == "end", timeout=WAIT)  # every message is in now
        return taken, await drain()

    taken, rest = asyncotp.run(main)
    first = next((i for i, m in enumerate(messages) if matches(m)), None)
    if first is None:
        assert taken == "end"
        assert rest == messages
    else:
        assert taken == messages[first]
        assert rest == messages[:first] + messages[first + 1 :]


@PROPERTY_SETTINGS
@given(
    messages=messages_strategy,
    takes=st.lists(st.one_of(st.none(), predicates), max_size=10),
)
def test_a_series_of_selective_receives_matches_a_list_model_and_loses_nothing(
    messages: list[int], takes: list[tuple[int, int] | None]
) -> None:
    # The model: a list; each take removes the oldest matching element (any
    # element for None), or raises when there is none, and leaves the list as
    # it was.
    model: list[object] = list(messages)
    expected: list[object] = []
    for take in takes:
        index = next(
            (
                i
                for i, m in enumerate(model)
                if take is None or (isinstance(m, int) and m % take[0] == take[1])
            ),
            None,
        )
        expected.append("timeout" if index is None else model.pop(index))

    async def main() -> tuple[list[object], list[object]]:
        me = self_pid()
        for message in messages:
            send(me, message)
        results: list[object] = []
        for take in takes:
            match = None if take is None else (lambda m, t=take: m % t[0] == t[1])
            try:
                results.append(await receive(match, timeout=0))
            except ReceiveTimeout:
                results.append("timeout")
        return results, await drain()

    results, rest = asyncotp.run(main)
    assert results == expected
    assert rest == model
