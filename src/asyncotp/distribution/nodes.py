"""Run N node processes from one command, restarted when they die.

    python -m asyncotp.distribution.nodes --count 2 -- python app.py {node}

Each node runs the command after ``--`` with ``{node}`` replaced by its
name (``node-1``, ``node-2``, ...; ``--names a,b`` to choose them). The
nodes are children of a supervisor (``start_nodes``): a node process that
dies is restarted after ``--restart-delay`` seconds; more than
``--max-restarts`` restarts within ``--max-seconds`` and the supervisor
gives up (exit code 1); a process that dies within ``--min-uptime``
seconds of its start has not started. SIGINT or SIGTERM stops every node
(SIGTERM, then SIGKILL after ``--stop-timeout`` seconds) and exits 0.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from ..supervision import Application
from ._nodesup import node_child_spec


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m asyncotp.distribution.nodes",
        description="Run node processes under a supervisor.",
        epilog="Everything after -- is the command of one node; {node} is its name.",
    )
    parser.add_argument("--count", type=int, default=os.cpu_count() or 1, help="default: CPUs")
    parser.add_argument("--names", help="comma-separated node names (instead of --count)")
    parser.add_argument("--restart-delay", type=float, default=0.0)
    parser.add_argument("--max-restarts", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=5.0)
    parser.add_argument("--min-uptime", type=float, default=1.0)
    parser.add_argument("--stop-timeout", type=float, default=5.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the nodes until stopped; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        parser.error("give the command of one node after --, for example: -- python app.py {node}")
    if args.names:
        names = [name.strip() for name in args.names.split(",") if name.strip()]
    else:
        if args.count < 1:
            parser.error(f"--count must be at least 1, not {args.count}")
        names = [f"node-{i}" for i in range(1, args.count + 1)]
    specs = [
        node_child_spec(
            name,
            [part.replace("{node}", name) for part in command],
            restart_delay=args.restart_delay,
            min_uptime=args.min_uptime,
            stop_timeout=args.stop_timeout,
        )
        for name in names
    ]
    app = Application(
        "nodes",
        specs,
        max_restarts=args.max_restarts,
        max_seconds=args.max_seconds,
        shutdown_timeout=args.stop_timeout * len(specs) + 5.0,
    )
    return app.run(exit=False)


if __name__ == "__main__":
    raise SystemExit(main())
