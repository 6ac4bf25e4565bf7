"""Shared fixtures: every test that needs a node gets a fresh one, and fails
if it leaves a task running after the node has stopped.

The kit's fixtures (``otp_node``, ``virtual_clock``, ``crash_reports``) come
from the asyncotp pytest plugin; they are named here too, for runs where its
pytest11 entry point is not installed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import asyncotp
from asyncotp.testing import plugin

_asyncotp_clock_first = plugin._asyncotp_clock_first  # noqa: SLF001 - the plugin's fixture
_crash_reports = plugin.crash_reports
_otp_node = plugin.otp_node
_virtual_clock = plugin.virtual_clock


@pytest.fixture
async def node() -> AsyncIterator[asyncotp.Node]:
    """A running node for the test body; checks nothing outlives it."""
    before = asyncio.all_tasks()
    async with asyncotp.node() as the_node:
        yield the_node
    assert not the_node.procs, f"actors left after the node stopped: {list(the_node.procs)}"
    await asyncio.sleep(0)
    left = {t for t in asyncio.all_tasks() - before if not t.done()}
    left.discard(asyncio.current_task())
    assert not left, f"tasks left running after the node stopped: {left}"
