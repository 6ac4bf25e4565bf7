"""Looking into a running GenServer, Agent or StateMachine, as OTP's ``sys``.

Each function sends the server a system request and waits for the answer,
which the server gives between two callbacks (a server busy in a long
callback answers when it returns; past ``timeout``, ``CallTimeout``)::

    from asyncotp import sys as otp_sys

    state = await otp_sys.get_state(counter)        # {"count": 7}, via format_status
    await otp_sys.suspend(counter)                   # only system requests from now on
    await otp_sys.replace_state(counter, lambda s: {**s, "count": 0})
    await otp_sys.resume(counter)                    # queued requests run, in order
    await otp_sys.trace(counter, True)               # log every message in and out
    stats = await otp_sys.statistics(counter)        # a frozen ServerStatistics

* ``get_state(server)``: the state as the server's ``format_status`` shows it
  (a GenServer's state is its attributes, as a dict; an Agent's, its value).
* ``replace_state(server, fn)``: ``fn(state)`` becomes the state.
* ``suspend(server)`` / ``resume(server)``: a suspended server answers only
  system requests; its calls and casts wait in its mailbox, in order.
* ``statistics(server)``: messages handled, uptime, mailbox length and
  (with ``time_callbacks(server, True)``) the time spent in callbacks.
* ``trace(server, on)``: log every message and what the callback returned
  (logger ``asyncotp.sys``, INFO), switched at run time.

A server hides secrets by overriding ``format_status(state)``: it shapes
what ``get_state`` and crash reports show. A ``StateMachine`` answers
``get_state`` (its ``(state, data)`` pair, through its own
``format_status``), ``replace_state`` (a new pair; in ``STATE_FUNCTIONS``
mode the state must have its ``state_<name>`` method), ``suspend``,
``resume`` and ``statistics`` (events handled); tracing and callback timing
are for GenServers and Agents. Use these for debugging and
operations; a protocol between servers belongs in calls.

Import it as ``from asyncotp import sys as otp_sys`` (or
``import asyncotp.sys``): the name ``sys`` would hide Python's own module.
"""

from ._core import (
    ServerStatistics,
    get_state,
    replace_state,
    resume,
    statistics,
    suspend,
    time_callbacks,
    trace,
)
from ._core import publish as _publish

__all__ = (
    "ServerStatistics",
    "get_state",
    "replace_state",
    "resume",
    "statistics",
    "suspend",
    "time_callbacks",
    "trace",
)

_publish(
    (
        ServerStatistics,
        get_state,
        replace_state,
        resume,
        statistics,
        suspend,
        time_callbacks,
        trace,
    ),
    __name__,
)
