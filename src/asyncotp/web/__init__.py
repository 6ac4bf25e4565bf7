"""Web servers inside the supervision tree: an ASGI application served by
uvicorn as a supervised child (``AsgiServer``) or in a task group
(``serve_asgi``), started after the workers its requests use and stopped,
drained, before them. Needs the ``asgi`` extra (uvicorn)."""

from ._asgiserver import AsgiServer as AsgiServer
from ._uvicorn import AsgiStats as AsgiStats
from ._uvicorn import serve_asgi as serve_asgi
