"""Fixtures of the resilience tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from asyncotp import Node
from asyncotp.testing import VirtualClock


@pytest.fixture
async def clock(node: Node) -> AsyncIterator[VirtualClock]:
    """Virtual time on the running loop, moved only by ``await clock.advance(s)``."""
    with VirtualClock(autojump=False) as virtual:
        yield virtual
