"""A recorder of telemetry events, attached for one test and detached after."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from asyncotp import telemetry


@attrs.frozen
class Event:
    name: telemetry.EventName
    measurements: dict[str, float]
    metadata: dict[str, Any]


@attrs.define
class Recorder:
    """Every event of ``prefixes`` seen while the test runs, in order."""

    events: list[Event] = attrs.Factory(list)

    def __call__(
        self,
        name: telemetry.EventName,
        measurements: dict[str, float],
        metadata: dict[str, Any],
        config: Any,
    ) -> None:
        self.events.append(Event(name, dict(measurements), dict(metadata)))

    def named(self, *name: str) -> list[Event]:
        return [event for event in self.events if event.name == name]


@contextlib.contextmanager
def record(*names: telemetry.EventName) -> Iterator[Recorder]:
    recorder = Recorder()
    telemetry.attach_many("test-recorder", names, recorder)
    try:
        yield recorder
    finally:
        telemetry.detach("test-recorder")


@pytest.fixture(autouse=True)
def _no_handler_left() -> Iterator[None]:
    yield
    left = telemetry.list_handlers()
    for info in left:
        telemetry.detach(info.id)
    assert left == [], f"a test left telemetry handlers attached: {left}"
