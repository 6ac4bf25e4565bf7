"""Application: validation, ``start`` inside a node, and ``run`` as a real program.

The ``run`` tests start a real Python process on a small script, and
synchronise on the lines its children print (``ready <tag>`` at the end of
``init``, ``terminated <tag> <reason>`` in ``terminate``), never on sleeps.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncotp import (
    GAVE_UP,
    SHUTDOWN,
    Application,
    Caller,
    ChildSpec,
    DuplicateChild,
    GenServer,
    NameTaken,
    Node,
    Pid,
    ServerExited,
    StartError,
    Strategy,
    call,
    is_alive,
    whereis,
    which_children,
)
from tests.helpers import EXIT_TIMEOUT, AppProcess, watch

Log = list[tuple[str, str, object]]


class Member(GenServer):
    """A child that records its starts and terminations."""

    async def init(self, tag: str, log: Log, fail: bool = False) -> None:
        if fail:
            raise RuntimeError(f"{tag} cannot start")
        self.tag = tag
        self.log = log
        log.append(("start", tag, None))

    async def handle_call(self, request: Any, caller: Caller) -> Any:
        if request == "crash":
            raise RuntimeError(f"{self.tag} crashed on purpose")
        return self.tag

    async def terminate(self, reason: Any) -> None:
        self.log.append(("terminate", self.tag, reason))


def member(tag: str, log: Log, **kwargs: Any) -> ChildSpec:
    return Member.child_spec(tag, log, id=tag, **kwargs)


# -- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "error", "mentions"),
    [
        ({"name": ""}, TypeError, "name"),
        ({"name": 3}, TypeError, "name"),
        ({"children": "abc"}, TypeError, "children"),
        ({"children": [object()]}, TypeError, "ChildSpec"),
        ({"strategy": "one_for_one"}, TypeError, "strategy"),
        ({"max_restarts": -1}, ValueError, "max_restarts"),
        ({"max_restarts": 1.5}, ValueError, "max_restarts"),
        ({"max_seconds": 0}, ValueError, "max_seconds"),
        ({"max_seconds": -2.0}, ValueError, "max_seconds"),
        ({"shutdown_timeout": 0}, ValueError, "shutdown_timeout"),
        ({"shutdown_timeout": -1.0}, ValueError, "shutdown_timeout"),
        ({"shutdown_timeout": True}, ValueError, "shutdown_timeout"),
        ({"shutdown_timeout": "30"}, ValueError, "shutdown_timeout"),
    ],
    ids=repr,
)
def test_invalid_arguments_raise_an_error_naming_the_argument(
    arguments: dict[str, Any], error: type[Exception], mentions: str
) -> None:
    given: dict[str, Any] = {"name": "app", "children": [], **arguments}
    name = given.pop("name")
    children = given.pop("children")

    with pytest.raises(error, match=mentions):
        Application(name, children, **given)


def test_two_children_with_the_same_id_raise_duplicate_child() -> None:
    log: Log = []

    with pytest.raises(DuplicateChild, match="'a'"):
        Application("app", [member("a", log), member("a", log)])


def test_valid_arguments_make_an_application_that_starts_nothing_yet() -> None:
    log: Log = []

    app = Application(
        "app",
        [member("a", log)],
        strategy=Strategy.REST_FOR_ONE,
        max_restarts=0,
        max_seconds=0.5,
        shutdown_timeout=1,
    )

    assert "app" in repr(app)
    assert log == []


# -- start inside a node ------------------------------------------------------------------


async def test_start_returns_the_root_supervisor_registered_under_the_app_name(
    node: Node,
) -> None:
    log: Log = []
    app = Application("shop", [member("a", log), member("b", log)])

    root = await app.start()

    assert is_alive(root)
    assert whereis("shop") is root
    children = await which_children(root)
    assert [c.id for c in children] == ["a", "b"]
    assert all(c.pid is not None and is_alive(c.pid) for c in children)
    assert log == [("start", "a", None), ("start", "b", None)]


async def test_start_uses_the_apps_strategy(node: Node) -> None:
    log: Log = []
    app = Application("shop", [member("a", log), member("b", log)], strategy=Strategy.ONE_FOR_ALL)
    root = await app.start()
    before = [c.pid for c in await which_children(root)]

    first = before[0]
    assert first is not None
    with pytest.raises(ServerExited):
        await call(first, "crash")

    after = [c.pid for c in await which_children(root)]
    assert all(pid is not None for pid in after)
    assert not set(after) & set(before), "one_for_all restarts every child"


async def test_start_uses_the_apps_restart_intensity(node: Node) -> None:
    log: Log = []
    app = Application("shop", [member("a", log)], max_restarts=0)
    root = await app.start()
    reason = await watch(root)
    [child] = await which_children(root)
    assert child.pid is not None

    with pytest.raises(ServerExited):
        await call(child.pid, "crash")

    assert await reason == GAVE_UP
    assert whereis("shop") is None


async def test_start_with_a_child_that_fails_raises_start_error_and_leaves_nothing(
    node: Node,
) -> None:
    log: Log = []
    app = Application("shop", [member("a", log), member("b", log, fail=True), member("c", log)])

    with pytest.raises(StartError, match="cannot start"):
        await app.start()

    assert whereis("shop") is None
    assert log == [("start", "a", None), ("terminate", "a", SHUTDOWN)]
    assert not node.procs


async def test_starting_the_same_app_twice_raises_name_taken(node: Node) -> None:
    log: Log = []
    app = Application("shop", [member("a", log)])
    root = await app.start()

    with pytest.raises(NameTaken):
        await app.start()

    assert whereis("shop") is root
    assert [entry[0] for entry in log] == ["start"], "the second tree started no child"


# -- run as a program ---------------------------------------------------------------------

SCRIPT = """
import asyncio
import signal
import sys

MODE = sys.argv[1]
if MODE == "sigint-ignored":
    # As a program started in the background of a non-interactive shell.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

from asyncotp import Application, GenServer, self_pid, send


class Worker(GenServer):
    async def init(self, tag, crash=False, fail=False, block=False):
        if fail:
            raise RuntimeError(f"{tag} cannot start")
        self.tag = tag
        self.block = block
        print(f"ready {tag}", flush=True)
        if crash:
            send(self_pid(), "crash")

    async def handle_info(self, message):
        raise RuntimeError(f"{self.tag} crashed")

    async def terminate(self, reason):
        print(f"terminated {self.tag} {reason!r}", flush=True)
        if self.block:
            await asyncio.sleep(3600)
            print(f"unblocked {self.tag}", flush=True)


TREES = {
    "plain": dict(children=[Worker.child_spec("a", id="a"), Worker.child_spec("b", id="b")]),
    "crash-loop": dict(
        children=[Worker.child_spec("a", id="a"), Worker.child_spec("c", id="c", crash=True)],
        max_restarts=2,
        max_seconds=3600,
    ),
    "blocking": dict(
        children=[
            Worker.child_spec("a", id="a"),
            Worker.child_spec("b", id="b", block=True, shutdown=3600.0),
        ],
        shutdown_timeout=3600,
    ),
    "slow-shutdown": dict(
        children=[
            Worker.child_spec("a", id="a"),
            Worker.child_spec("b", id="b", block=True, shutdown=3600.0),
        ],
        shutdown_timeout=0.5,
    ),
    "fail-start": dict(
        children=[
            Worker.child_spec("a", id="a"),
            Worker.child_spec("b", id="b", fail=True),
            Worker.child_spec("c", id="c"),
        ]
    ),
}
TREES["sigint-ignored"] = TREES["plain"]

Application("demo", **TREES[MODE]).run()
print("run returned", flush=True)
"""


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Any]:
    """Start the application script in a mode; kill whatever is left at the end."""
    script = tmp_path / "app.py"
    script.write_text(SCRIPT)
    started: list[AppProcess] = []

    def start(mode: str) -> AppProcess:
        app = AppProcess(script, mode, tmp_path / f"stderr-{len(started)}.txt")
        started.append(app)
        return app

    yield start
    for app in started:
        if app.proc.poll() is None:
            app.proc.kill()
            app.proc.wait(timeout=EXIT_TIMEOUT)
        if app.proc.stdout is not None:
            app.proc.stdout.close()


@pytest.mark.timeout(60)
def test_sigterm_shuts_down_in_reverse_start_order_and_exits_0(launch: Any) -> None:
    app = launch("plain")
    app.expect("ready a")
    app.expect("ready b")

    app.send(signal.SIGTERM)
    code = app.finish()

    assert code == 0, app.stderr()
    assert app.lines == [
        "ready a",
        "ready b",
        "terminated b SHUTDOWN",
        "terminated a SHUTDOWN",
    ], "run() exits the process: nothing after it runs"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["plain", "sigint-ignored"])
def test_sigint_shuts_down_cleanly_even_when_inherited_as_ignored(launch: Any, mode: str) -> None:
    app = launch(mode)
    app.expect("ready a")
    app.expect("ready b")

    app.send(signal.SIGINT)
    code = app.finish()

    assert code == 0, app.stderr()
    assert app.lines[2:] == ["terminated b SHUTDOWN", "terminated a SHUTDOWN"]
    assert "KeyboardInterrupt" not in app.stderr()


@pytest.mark.timeout(60)
def test_a_root_supervisor_that_gives_up_makes_the_program_exit_1_by_itself(
    launch: Any,
) -> None:
    app = launch("crash-loop")

    code = app.finish()

    assert code == 1, app.stderr()
    # The first start and two restarts; the third crash is one too many.
    assert app.lines.count("ready c") == 3
    assert app.lines[-1] == "terminated a SHUTDOWN", "the root stopped the other child"
    assert "gave up" in app.stderr()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_second_signal_forces_a_blocked_shutdown_and_exits_1(
    launch: Any, second: signal.Signals
) -> None:
    app = launch("blocking")
    app.expect("ready a")
    app.expect("ready b")
    app.send(signal.SIGTERM)
    app.expect("terminated b SHUTDOWN")  # b now blocks in terminate, for up to an hour

    forced_at = time.monotonic()
    app.send(second)
    code = app.finish()

    assert code == 1, app.stderr()
    assert time.monotonic() - forced_at < EXIT_TIMEOUT
    assert app.lines == ["ready a", "ready b", "terminated b SHUTDOWN"], (
        "a forced shutdown kills the whole tree: b's terminate is cut short and a's never runs"
    )
    assert "forcing" in app.stderr()


@pytest.mark.timeout(60)
def test_shutdown_timeout_bounds_a_blocked_shutdown_which_then_exits_1(launch: Any) -> None:
    app = launch("slow-shutdown")  # shutdown_timeout=0.5; b blocks in terminate for an hour
    app.expect("ready a")
    app.expect("ready b")

    app.send(signal.SIGTERM)
    code = app.finish()

    assert code == 1, app.stderr()
    assert app.lines == ["ready a", "ready b", "terminated b SHUTDOWN"]
    assert "did not stop within 0.5 s" in app.stderr()


@pytest.mark.timeout(60)
def test_a_child_that_fails_to_start_makes_the_program_exit_1(launch: Any) -> None:
    app = launch("fail-start")

    code = app.finish()

    assert code == 1, app.stderr()
    assert app.lines == ["ready a", "terminated a SHUTDOWN"]
    assert "b cannot start" in app.stderr()


def test_run_without_exit_restores_the_signal_handlers_the_program_had() -> None:
    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not expected to be called")

    old_int = signal.signal(signal.SIGINT, mine)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        app = Application("restores", [ChildSpec("bad", _never_starts)])
        assert app.run(exit=False, configure_logging=False) == 1  # it fails to start
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


async def _never_starts() -> Pid:
    raise OSError("no database")
