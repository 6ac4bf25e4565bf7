"""The two-node example runs as documented (it starts its own nats-server)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.distribution.helpers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def test_the_two_node_example_calls_casts_and_sees_the_worker_lost() -> None:
    if not shutil.which("nats-server") and not os.path.exists("/usr/sbin/nats-server"):
        pytest.skip("nats-server is not installed (Debian: apt-get install nats-server)")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "two_nodes.py")],
        capture_output=True,
        text=True,
        timeout=45,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "worker ready" in out
    assert "call add 5 -> 5" in out
    assert "then call get -> 15" in out
    assert "Down with reason NOCONNECTION" in out
    assert "whereis_global('counter') -> None" in out
    assert out.rstrip().endswith("done: both nodes have stopped")
