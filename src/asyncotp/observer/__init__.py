"""The observer: see the live node, its supervision trees and its busiest actors.

* ``await snapshot()``: a frozen ``NodeSnapshot`` of every supervision tree
  (every supervisor and child: id, pid, name, kind, state, restarts, restart
  type) and every actor (kind, status, mailbox, links and monitors, parent,
  uptime, a memory estimate), JSON-ready with ``to_dict()``.
* ``await top(n, by="mailbox")`` (or ``snapshot.top(n, by)``): the busiest
  actors, as Erlang's recon.
* ``DashboardApp``: an ASGI app, a web page that draws the trees live over
  server-sent events, with ``/api/snapshot`` as JSON; ``serve_dashboard``
  serves it with uvicorn (the ``asgi`` extra).
* ``python -m asyncotp top URL``: the same in a terminal, read from a
  dashboard's JSON endpoint.
"""

from ._asgi import DashboardApp as DashboardApp
from ._asgi import serve_dashboard as serve_dashboard
from ._snapshot import snapshot as snapshot
from ._snapshot import top as top
from ._values import TOP_KEYS as TOP_KEYS
from ._values import ActorSnapshot as ActorSnapshot
from ._values import ChildSnapshot as ChildSnapshot
from ._values import NodeSnapshot as NodeSnapshot
from ._values import SupervisorSnapshot as SupervisorSnapshot
