"""The node's one writer: every message to other nodes goes out through it.

Senders never wait: ``put`` queues the envelope (already encoded to JSON
data, so a value that cannot cross the wire fails in the sender) and the
writer task publishes in queue order, which keeps the order of messages
between any two actors. Consecutive messages to the same subject (a burst
of casts to one node) go as one NATS message holding a JSON list: one
serialisation, one publish, one parse and one callback on the other side
for the lot.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Final

import nats.errors
from nats.aio.client import Client as NatsClient

from ._codec import Json

BATCH_COUNT: Final = 512
"""At most this many messages in one batch."""
BATCH_BYTES: Final = 512 * 1024
"""A batch larger than this goes message by message (NATS refuses
payloads over its ``max_payload``, 1 MiB by default)."""

Envelope = dict[str, Json]


class Outbox:
    """The queue of outgoing messages and the task that publishes them."""

    def __init__(self, warn: Callable[..., None]) -> None:
        self.queue: deque[tuple[str, Envelope, str]] = deque()
        self.wake = asyncio.Event()
        self.sent = 0
        self.lost = 0
        self._warn = warn

    def put(self, subject: str, envelope: Envelope, reply: str = "") -> None:
        self.queue.append((subject, envelope, reply))
        self.wake.set()

    async def run(self, nc: NatsClient) -> None:
        queue = self.queue
        while True:
            await self.wake.wait()
            self.wake.clear()
            while queue:
                subject, envelope, reply = queue.popleft()
                if reply or not queue or queue[0][0] != subject or queue[0][2]:
                    await self._publish(nc, subject, [envelope], reply)
                    continue
                batch = [envelope]
                while (
                    queue
                    and queue[0][0] == subject
                    and not queue[0][2]
                    and len(batch) < BATCH_COUNT
                ):
                    batch.append(queue.popleft()[1])
                await self._publish(nc, subject, batch, "")

    async def _publish(
        self, nc: NatsClient, subject: str, envelopes: list[Envelope], reply: str
    ) -> None:
        data = _dumps(envelopes[0] if len(envelopes) == 1 else envelopes)
        if len(data) > BATCH_BYTES and len(envelopes) > 1:
            for envelope in envelopes:
                await self._publish(nc, subject, [envelope], "")
            return
        try:
            await nc.publish(subject, data, reply=reply)
            self.sent += len(envelopes)
        except (nats.errors.Error, OSError) as exc:  # never stop the writer: count, warn
            self.lost += len(envelopes)
            self._warn("%d message(s) to %s were lost: %s", len(envelopes), subject, repr(exc))

    async def drain(self) -> None:
        """Wait until the queue is empty (the caller bounds the wait)."""
        while self.queue:
            self.wake.set()
            await asyncio.sleep(0.005)


def _dumps(value: Json) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
