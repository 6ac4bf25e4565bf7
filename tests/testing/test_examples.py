"""The kit's example, examples/test_demo_app.py, passes against the demo shop."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_apps_example_tests_pass() -> None:
    installed = importlib.metadata.entry_points(group="pytest11", name="asyncotp")
    plugin = [] if installed else ["-p", "asyncotp.testing.plugin"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *plugin,
            str(ROOT / "examples" / "test_demo_app.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
