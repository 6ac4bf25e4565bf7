"""Reaching a node from another thread.

asyncotp's functions run on the node's event-loop thread; called from any
other thread they raise ``WrongThreadError`` at once. A thread uses these
instead, with the ``Node`` that ``async with asyncotp.node() as node`` gives
(hand it to the thread when you start it)::

    async with asyncotp.node() as node:
        counter = await Counter.start(name="counter")
        worker = threading.Thread(target=work, args=(node,))
        ...

    def work(node: asyncotp.Node) -> None:
        asyncotp.from_thread.cast(node, "counter", ("add", 1))
        total = asyncotp.from_thread.call(node, "counter", "get", timeout=5.0)

Each function runs its operation on the node's loop and blocks the thread
until it is done, then returns its result or raises its error, exactly as
the function of the same name would on the loop: ``send``, ``cast``,
``call`` and ``run`` (any async function, run in a plain task of the node).
"""

from ._core import publish as _publish
from ._core import thread_call as call
from ._core import thread_cast as cast
from ._core import thread_run as run
from ._core import thread_send as send

__all__ = ("call", "cast", "run", "send")

_publish((call, cast, run, send), __name__)
