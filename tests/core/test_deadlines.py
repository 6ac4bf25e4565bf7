"""The shared call-deadline timer: one loop timer for every pending call."""

from __future__ import annotations

import asyncio

from asyncotp._core._deadlines import Deadlines
from asyncotp.testing import VirtualClock


class Item:
    """Stands for a call: done once answered, expired once its deadline passed."""

    def __init__(self, name: str, log: list[tuple[str, float]], loop: asyncio.AbstractEventLoop):
        self.name = name
        self.log = log
        self.loop = loop
        self.answered = False
        self.expired = False
        self.on_expire: list[tuple[Item, float]] = []
        self.deadlines: Deadlines | None = None

    def done(self) -> bool:
        return self.answered or self.expired

    def expire(self) -> None:
        self.expired = True
        self.log.append((self.name, self.loop.time()))
        for item, timeout in self.on_expire:  # a deadline added while others expire
            assert self.deadlines is not None
            self.deadlines.add(item, timeout)


async def test_items_expire_at_their_deadline_in_order_across_timeouts() -> None:
    with VirtualClock() as clock:
        loop = asyncio.get_running_loop()
        log: list[tuple[str, float]] = []
        deadlines = Deadlines(loop)
        start = loop.time()
        deadlines.add(Item("a5", log, loop), 5.0)
        deadlines.add(Item("b1", log, loop), 1.0)
        await clock.advance(0.5)
        deadlines.add(Item("c1", log, loop), 1.0)
        await clock.advance(10)
        assert [(name, round(t - start, 6)) for name, t in log] == [
            ("b1", 1.0),
            ("c1", 1.5),
            ("a5", 5.0),
        ]
        deadlines.close()


async def test_an_answered_item_never_expires() -> None:
    with VirtualClock() as clock:
        loop = asyncio.get_running_loop()
        log: list[tuple[str, float]] = []
        deadlines = Deadlines(loop)
        answered = Item("answered", log, loop)
        deadlines.add(answered, 1.0)
        deadlines.add(Item("late", log, loop), 1.0)
        answered.answered = True
        await clock.advance(2)
        assert [name for name, _ in log] == ["late"]
        deadlines.close()


async def test_a_deadline_added_while_others_expire_fires_on_time() -> None:
    with VirtualClock() as clock:
        loop = asyncio.get_running_loop()
        log: list[tuple[str, float]] = []
        deadlines = Deadlines(loop)
        start = loop.time()
        first = Item("first", log, loop)
        first.deadlines = deadlines
        # Expiring at 1.0, it adds a deadline due at 1.5, in another queue.
        first.on_expire.append((Item("added", log, loop), 0.5))
        deadlines.add(first, 1.0)
        await clock.advance(0.9)
        deadlines.add(Item("other", log, loop), 1.0)  # due at 1.9
        await clock.advance(5)
        assert [(name, round(t - start, 6)) for name, t in log] == [
            ("first", 1.0),
            ("added", 1.5),
            ("other", 1.9),
        ]
        deadlines.close()


async def test_close_cancels_every_pending_deadline() -> None:
    with VirtualClock() as clock:
        loop = asyncio.get_running_loop()
        log: list[tuple[str, float]] = []
        deadlines = Deadlines(loop)
        deadlines.add(Item("never", log, loop), 1.0)
        deadlines.close()
        await clock.advance(5)
        assert log == []
