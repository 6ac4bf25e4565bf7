"""``python -m asyncotp top URL``: the terminal view of a dashboard.

The command runs as a real subprocess (``--iterations 1``) against a
dashboard served by uvicorn on a free loopback port in the test's own node;
the rendering and the URL handling are also checked in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import asyncotp
from asyncotp import Caller, GenServer, Pid, Supervisor, whereis
from asyncotp.observer import serve_dashboard, snapshot
from asyncotp.observer._top import render, snapshot_url
from asyncotp.testing import crash, wait_for_restart
from tests.helpers import ROOT


class Worker(GenServer):
    async def handle_call(self, request: Any, caller: Caller) -> Any:
        return request


async def start_shop() -> Pid:
    payments = Supervisor.child_spec(
        [Worker.child_spec(id="gateway", name="gateway"), Worker.child_spec(id="ledger")],
        id="payments",
        name="payments",
    )
    return await Supervisor.start([Worker.child_spec(id="prices"), payments], name="shop")


@contextlib.asynccontextmanager
async def dashboard() -> AsyncIterator[str]:
    """A dashboard on a free loopback port; its URL."""
    async with anyio.create_task_group() as tg:
        port = await tg.start(functools.partial(serve_dashboard, None, port=0))
        yield f"http://127.0.0.1:{port}/"
        tg.cancel_scope.cancel()


async def run_top(*args: str) -> tuple[int, str, str]:
    """``python -m asyncotp top ARGS`` in a subprocess (this checkout's source
    first on its path); its exit status, output and errors."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncotp",
        "top",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    with anyio.fail_after(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_top_prints_the_tree_and_the_busiest_actors_once(node: asyncotp.Node) -> None:
    await start_shop()
    old = whereis("gateway")
    assert old is not None
    await crash(old)
    new = await wait_for_restart("payments", "gateway", old)
    async with dashboard() as url:
        status, out, err = await run_top(url, "--iterations", "1")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"asyncotp top  {url}  ")
    assert "supervisors 2  restarts 1" in lines[1]
    tree = "\n".join(lines[lines.index("") + 1 :])
    assert tree.startswith("shop  <")
    assert "├─ prices" in tree
    assert "└─ payments" in tree
    gateway = next(line for line in lines if "├─ gateway" in line)
    assert f"<{new.number}>" in gateway
    assert "restarts 1" in gateway
    assert "GEN  Worker" in gateway
    assert "└─ ledger" in tree
    assert "TOP 10 BY MAILBOX" in lines
    assert "\x1b[" not in out  # no screen clearing when the output is not a terminal


async def test_top_reports_an_unreachable_dashboard_and_exits_1() -> None:
    with anyio.fail_after(60):
        status, out, _err = await run_top("http://127.0.0.1:9/", "--iterations", "1")
    assert status == 1
    assert "asyncotp top: cannot read http://127.0.0.1:9/api/snapshot" in out


async def test_top_refuses_a_url_that_is_not_http() -> None:
    status, _out, err = await run_top("ftp://example/", "--iterations", "1")
    assert status == 2
    assert "not an http(s) URL" in err


@pytest.mark.parametrize(
    ("given", "endpoint"),
    [
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765/api/snapshot"),
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765/api/snapshot"),
        ("http://h:1/ops/dashboard", "http://h:1/ops/dashboard/api/snapshot"),
        ("http://h:1/ops/dashboard/index.html", "http://h:1/ops/dashboard/api/snapshot"),
        ("http://h:1/api/snapshot", "http://h:1/api/snapshot"),
        ("http://h:1/api/events?x=1", "http://h:1/api/snapshot?x=1"),
    ],
)
def test_snapshot_url_finds_the_json_endpoint(given: str, endpoint: str) -> None:
    assert snapshot_url(given) == endpoint


async def test_render_ranks_by_the_chosen_figure_and_limits_the_list(
    node: asyncotp.Node,
) -> None:
    await start_shop()
    old = whereis("gateway")
    assert old is not None
    await crash(old)
    new = await wait_for_restart("payments", "gateway", old)
    data = (await snapshot()).to_dict()
    screen = render(data, source="test", by="restarts", limit=2)
    table = screen.splitlines()[screen.splitlines().index("TOP 2 BY RESTARTS") + 2 :]
    assert len(table) == 2
    assert table[0].split()[0] == str(new.number)
    assert "gateway · Worker" in table[0]
    empty = render({**data, "trees": []}, source="test")
    assert "(no supervision tree is running)" in empty
