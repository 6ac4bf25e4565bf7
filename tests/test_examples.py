"""Every example is a real program: run each one and check what it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.timeout(90)
def test_demo_crashes_recovers_and_ends_by_itself() -> None:
    result = run_example("demo.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The gateway crashes, and rest_for_one restarts it and the ledger after it.
    assert "CRASH" in out
    assert "sup:payments child 'gateway' crashed" in out
    assert "restarted 'gateway'" in out
    assert "restarted 'ledger'" in out
    # The burst exceeds the payments supervisor's intensity; the root restarts it.
    assert "GIVING UP" in out
    assert "sup:shop   child 'payments' gave up" in out
    assert "restarted 'payments'" in out
    # Payments keep succeeding after each recovery, and the program ends cleanly.
    assert out.count(": 200 charged") >= 8
    assert out.rstrip().endswith("done: the node has stopped and nothing is left running")
    # Shutdown runs in reverse start order: the ledger stops before the gateway.
    tail = out[out.index("the program ends") :]
    assert tail.index("ledger     stopping") < tail.index("gateway    stopping")
