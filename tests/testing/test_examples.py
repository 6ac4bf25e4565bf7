"""The kit's example, examples/test_demo_app.py, passes against the demo shop."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import EXAMPLES, ROOT, plugin_args


def test_the_demo_apps_example_tests_pass() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *plugin_args(),
            str(EXAMPLES / "test_demo_app.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "5 passed" in done.stdout
