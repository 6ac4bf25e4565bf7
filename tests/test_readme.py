"""The README's quickstart is a real program: run it as written."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT

README = ROOT / "README.md"


def quickstart() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Quickstart") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README's quickstart has no python block"
    return match.group(1)


@pytest.mark.timeout(60)
def test_readme_quickstart_runs_crashes_and_recovers() -> None:
    result = subprocess.run(
        [sys.executable, "-c", quickstart()],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "recovered"
    # The crash was reported by the supervisor, with its traceback.
    assert "RuntimeError: boom" in result.stderr
