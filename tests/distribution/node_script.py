"""A node process for the tests: ``node_script.py NAME URL PREFIX [global] [failover] [window=S]``.

It starts an ``echo`` server (registered locally, and globally as
``echo-NAME`` when ``global`` is given), prints ``ready`` and runs until
killed or told to stop with a call ``"quit"``. With ``failover``, it also
runs a supervisor with ``global_child_spec(Echo, "svc")``: one node of the
cluster holds ``svc``, the others stand by. ``window=S`` sets the
heartbeat window (1 s by default; heartbeats every 0.2 s).
"""

from __future__ import annotations

import sys
from typing import Any

import asyncotp
from asyncotp import GenServer, distribution
from asyncotp.distribution import NatsCluster


class Echo(GenServer):
    async def init(self) -> None:
        self.seen: list[Any] = []

    async def handle_call(self, request: Any, caller: asyncotp.Caller) -> Any:
        if request == "seen":
            return list(self.seen)
        if request == "statistics":
            stats = distribution.statistics()
            return {"malformed": stats.malformed, "received": stats.received}
        if request == "node":
            return distribution.node_name()
        if request == "quit":
            raise asyncotp.Stop(reply="bye")
        return ("echo", request)

    async def handle_cast(self, request: Any) -> None:
        self.seen.append(request)


async def main(name: str, global_name: bool, failover: bool) -> None:
    pid = await Echo.start(name="echo")
    if global_name:
        assert await distribution.register_global(f"echo-{name}", pid)
    if failover:
        await asyncotp.Supervisor.start([distribution.global_child_spec(Echo, "svc")])
    print("ready", flush=True)
    ref = asyncotp.monitor(pid)
    await asyncotp.receive(lambda m: isinstance(m, asyncotp.Down) and m.ref is ref)


if __name__ == "__main__":
    node, url, prefix = sys.argv[1:4]
    options = sys.argv[4:]
    window = next((float(o[7:]) for o in options if o.startswith("window=")), 1.0)
    cluster = NatsCluster(
        servers=url, prefix=prefix, heartbeat_interval=0.2, heartbeat_window=window
    )
    distribution.run(
        main, node, "global" in options, "failover" in options, node=node, cluster=cluster
    )
