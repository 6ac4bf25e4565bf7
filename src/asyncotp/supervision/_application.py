"""Application: a root supervision tree run as a program."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from .._core import (
    NORMAL,
    SHUTDOWN,
    ChildSpec,
    Node,
    Pid,
    StartError,
    Strategy,
    is_clean_exit,
    kill,
    live_pids,
    node,
    request_stop,
    safe_repr,
    wait_exit,
)
from ._base import AutoShutdown, _check_settings, _check_specs, _gave_up, _seconds, _Starting
from ._supervisor import Supervisor, _check_auto_shutdown

logger = logging.getLogger("asyncotp")


class Application:
    """A root supervision tree as a program.

    Example::

        app = Application("shop", [Db.child_spec(url), Api.child_spec(port=8080)])
        if __name__ == "__main__":
            app.run()

    ``app.run()`` starts a node and the tree and blocks. SIGINT or SIGTERM
    starts an orderly shutdown (children stopped in reverse start order, each
    within its own shutdown time), bounded by ``shutdown_timeout`` seconds; a
    second signal, or the end of ``shutdown_timeout``, forces it: the whole
    tree is killed at once and no further ``terminate`` runs. A signal that
    comes while the tree is still starting stops the part that started (the
    same bounds apply). The process then exits 0 after a clean shutdown, 1
    when the root supervisor gave up (or failed to start, or was stopped
    before it had started, or had to be forced). ``await app.start()`` starts the
    same tree inside a running node and returns the root supervisor's pid.

    ``auto_shutdown`` (see ``AutoShutdown``) lets the program end by itself
    when its work is done: with a significant child (a batch job, say)
    under ``AutoShutdown.ANY_SIGNIFICANT``, the root shuts down with
    ``SHUTDOWN`` once that child ends cleanly, and ``run`` returns 0::

        app = Application(
            "import",
            [Db.child_spec(url), ChildSpec("job", job_start, Restart.TRANSIENT, significant=True)],
            auto_shutdown=AutoShutdown.ANY_SIGNIFICANT,
        )
    """

    def __init__(
        self,
        name: str,
        children: Sequence[ChildSpec],
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        shutdown_timeout: float = 30.0,
        *,
        auto_shutdown: AutoShutdown = AutoShutdown.NEVER,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"Application: name must be a non-empty str, not {safe_repr(name)}")
        self.name = name
        self.children = _check_specs(children, f"Application({safe_repr(name)})")
        if not isinstance(strategy, Strategy):
            raise TypeError(
                f"Application({safe_repr(name)}): strategy must be a Strategy, "
                f"not {safe_repr(strategy)}"
            )
        _check_settings(max_restarts, max_seconds, f"Application({safe_repr(name)})")
        _check_auto_shutdown(auto_shutdown, self.children, f"Application({safe_repr(name)})")
        self.auto_shutdown = auto_shutdown
        seconds = _seconds(shutdown_timeout)
        if seconds is None or not seconds > 0:  # `not >` also refuses NaN
            raise ValueError(
                f"Application({safe_repr(name)}): shutdown_timeout must be seconds > 0 "
                f"(math.inf: no limit), not {safe_repr(shutdown_timeout)}"
            )
        self.strategy = strategy
        self.max_restarts = max_restarts
        self.max_seconds = float(max_seconds)
        self.shutdown_timeout = seconds

    def __repr__(self) -> str:
        return f"<Application {self.name!r} {len(self.children)} children>"

    async def start(self) -> Pid:
        """Start the root supervisor (registered under the application's name)."""
        pid, _ = await self._start_watched()
        return pid

    async def _start_watched(self) -> tuple[Pid, asyncio.Future[object]]:
        """Start the root; also return a future of its exit reason, watched
        from its init on: a root that shuts itself down at once (a finished
        significant child) is not mistaken for one that is already gone."""
        exited: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        pid = await Supervisor._start_with(  # noqa: SLF001 - the same package
            _Starting(exited=exited),
            self.children,
            self.strategy,
            self.max_restarts,
            self.max_seconds,
            name=self.name,
            link=False,
            auto_shutdown=self.auto_shutdown,
        )
        return pid, exited

    def run(
        self,
        *,
        exit: bool = True,  # noqa: A002 - reads naturally: app.run(exit=False)
        backend_options: dict[str, Any] | None = None,
        configure_logging: bool = True,
    ) -> int:
        """Run the application until it is told to stop or its root gives up.

        Exits the process with the exit code (0 clean, 1 otherwise) unless
        ``exit=False``, which returns the code instead. When the program has
        not configured logging, reports are printed to standard error.
        """
        if configure_logging and not logging.getLogger().handlers:
            logging.basicConfig(
                level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
            )
        code: int = anyio.run(self._main, backend="asyncio", backend_options=backend_options)
        if exit:
            sys.exit(code)
        return code

    async def _main(self) -> int:
        async with node(shutdown_timeout=self.shutdown_timeout) as the_node:
            loop = asyncio.get_running_loop()
            stop_requested = asyncio.Event()
            force_requested = asyncio.Event()
            received: list[signal.Signals] = []

            def on_signal(signum: signal.Signals) -> None:
                received.append(signum)
                if len(received) == 1:
                    logger.warning(
                        "application %r: received %s; shutting down (a second signal forces it)",
                        self.name,
                        signum.name,
                        extra={"event": "application_stopping", "application": self.name},
                    )
                    stop_requested.set()
                else:
                    logger.warning(
                        "application %r: received %s again; forcing the shutdown",
                        self.name,
                        signum.name,
                        extra={"event": "application_forced", "application": self.name},
                    )
                    force_requested.set()

            installed: list[tuple[signal.Signals, Any]] = []
            for signum in (signal.SIGINT, signal.SIGTERM):
                try:
                    previous = signal.getsignal(signum)
                    loop.add_signal_handler(signum, on_signal, signum)
                    installed.append((signum, previous))
                except (NotImplementedError, RuntimeError, ValueError):
                    pass  # not the main thread, or a platform without them
            try:
                return await self._supervise(the_node, stop_requested, force_requested)
            finally:
                for signum, previous in installed:
                    loop.remove_signal_handler(signum)
                    if previous is not None:
                        signal.signal(signum, previous)  # as the program had it

    async def _supervise(
        self, the_node: Node, stop_requested: asyncio.Event, force_requested: asyncio.Event
    ) -> int:
        # The tree starts in a task of its own, so that a signal is heard
        # while it starts (a child's init can take long, or hang).
        starting = asyncio.ensure_future(self._start_watched())
        stop_wait = asyncio.ensure_future(stop_requested.wait())
        try:
            await asyncio.wait((starting, stop_wait), return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            starting.cancel()
            raise
        finally:
            stop_wait.cancel()
        if not starting.done():
            code = await self._stop_starting(the_node, starting, force_requested)
            if code is not None:
                return code
        try:
            root, exited = starting.result()
        except StartError as exc:
            logger.error(  # noqa: TRY400 - the cause is in the message; no traceback wanted
                "application %r failed to start: %s",
                self.name,
                exc,
                extra={"event": "application_start_failed", "application": self.name},
            )
            return 1
        logger.info(
            "application %r started (root supervisor %r)",
            self.name,
            root,
            extra={"event": "application_started", "application": self.name},
        )
        stop_wait = asyncio.ensure_future(stop_requested.wait())
        try:
            await asyncio.wait((exited, stop_wait), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
        if exited.done():
            reason = exited.result()
            if _gave_up(reason) or not is_clean_exit(reason):
                logger.error(
                    "application %r: the root supervisor ended with %r; exiting with 1",
                    self.name,
                    reason,
                    extra={"event": "application_failed", "application": self.name},
                )
                return 1
            logger.info(
                "application %r: the root supervisor shut down by itself (%r); exiting with 0",
                self.name,
                reason,
                extra={"event": "application_stopped", "application": self.name},
            )
            return 0
        request_stop(root, SHUTDOWN)
        force_wait = asyncio.ensure_future(force_requested.wait())
        try:
            await asyncio.wait(
                (exited, force_wait),
                timeout=self.shutdown_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            force_wait.cancel()
        if exited.done():
            logger.info(
                "application %r stopped cleanly",
                self.name,
                extra={"event": "application_stopped", "application": self.name},
            )
            return 0 if is_clean_exit(exited.result()) or exited.result() is NORMAL else 1
        logger.error(
            "application %r did not stop within %.1f s (or was forced); killing its "
            "supervision tree",
            self.name,
            self.shutdown_timeout,
            extra={"event": "application_killed", "application": self.name},
        )
        # Kill the whole tree at once, not just the root: a child stuck in its
        # terminate ignores exit signals (it is already exiting), so the
        # node's own shutdown would wait up to shutdown_timeout for it again;
        # and the root's end would make the other children run terminate.
        await self._kill_all(the_node)
        await exited
        return 1

    async def _stop_starting(
        self,
        the_node: Node,
        starting: asyncio.Task[tuple[Pid, asyncio.Future[object]]],
        force_requested: asyncio.Event,
    ) -> int | None:
        """Told to stop while the tree starts: cancel the start, which stops
        what it started (a child cut off in its init is killed, the others
        stop in reverse start order), within ``shutdown_timeout``; a second
        signal or the end of that time kills the whole tree. Returns the
        exit code, or None if the start finished first (the tree is then
        stopped as usual)."""
        starting.cancel()
        force_wait = asyncio.ensure_future(force_requested.wait())
        try:
            await asyncio.wait(
                (starting, force_wait),
                timeout=self.shutdown_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            force_wait.cancel()
        if starting.done():
            if not starting.cancelled() and starting.exception() is None:
                return None
            logger.warning(
                "application %r stopped before its supervision tree had started; exiting with 1",
                self.name,
                extra={"event": "application_stopped", "application": self.name},
            )
            return 1
        logger.error(
            "application %r did not stop its partly started supervision tree within %.1f s "
            "(or was forced); killing it",
            self.name,
            self.shutdown_timeout,
            extra={"event": "application_killed", "application": self.name},
        )
        await self._kill_all(the_node)
        await asyncio.wait((starting,))
        if not starting.cancelled():
            starting.exception()  # retrieved: the exit code says it
        return 1

    @staticmethod
    async def _kill_all(the_node: Node) -> None:
        """Kill every actor of the node (this application's tree) and wait for them."""
        left = list(reversed(live_pids(the_node)))
        for pid in left:
            kill(pid)
        for pid in left:
            await wait_exit(pid, 5.0)
