"""The benchmark harness runs end to end and prints the JSON the issue asks for.

It runs the hidden ``--smoke`` size (tiny workloads, one round): this checks
the harness, not the speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import asyncotp
from tests.helpers import ROOT

RUN = ROOT / "benchmarks" / "run.py"


@pytest.mark.timeout(300)
def test_run_quick_json_has_the_five_figures() -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--smoke", "--json"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    has_supervisor = hasattr(asyncotp, "Supervisor")
    for key in ("cast", "call", "spawn", "memory", "restart"):
        entry = out[key]
        assert "errors" not in entry, (key, entry["errors"])
        if key == "restart" and not has_supervisor:
            assert entry["asyncotp"] is None
            assert "unavailable" in entry
            assert entry["floor"] > 0
            continue
        for side in ("asyncotp", "floor", "ratio"):
            value = entry[side]
            assert isinstance(value, (int, float)), (key, side, value)
            assert value > 0, (key, side, value)
    assert set(out["scale"]) == {"1", "10", "100"}
    statem = out["statem"]
    assert "errors" not in statem, statem["errors"]
    for key in ("statemachine", "genserver", "ratio"):
        assert statem[key] > 0, (key, statem[key])
