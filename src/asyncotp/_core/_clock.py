"""The one time seam of asyncotp.

All library time (receive and call timeouts, timers, restart windows,
backoff, shutdown deadlines) is read from the running event loop's clock and
waits on the loop's own timers. A test that runs the loop on a virtual clock
therefore moves every deadline of the library at once.
"""

from __future__ import annotations

import asyncio


def now() -> float:
    """Seconds on the running loop's monotonic clock."""
    return asyncio.get_running_loop().time()
