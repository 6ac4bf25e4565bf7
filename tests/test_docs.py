"""The user guides' examples are real programs: run every python block of
docs/actors.md, docs/genserver.md, docs/supervision.md, docs/web.md,
docs/telemetry.md and docs/registry.md on its own.

Each block runs in a fresh interpreter against this checkout's ``src`` (put
first on ``PYTHONPATH``), so a guide is checked against the code beside it,
not against whichever asyncotp the interpreter happens to have installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDES = (
    "actors.md",
    "genserver.md",
    "supervision.md",
    "web.md",
    "telemetry.md",
    "registry.md",
)
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)

Block = tuple[str, int, str]
"""A python block: its guide, the line its code starts on, and the code."""


def python_blocks() -> tuple[list[Block], list[str]]:
    """Every python block of the guides, and a test id for each (``guide:n``)."""
    blocks: list[Block] = []
    ids: list[str] = []
    for guide in GUIDES:
        text = (DOCS / guide).read_text(encoding="utf-8")
        for number, match in enumerate(BLOCK.finditer(text), start=1):
            line = text.count("\n", 0, match.start()) + 2
            blocks.append((guide, line, match.group(1)))
            ids.append(f"{guide}:{number}")
    return blocks, ids


BLOCKS, BLOCK_IDS = python_blocks()


def checkout_env() -> dict[str, str]:
    """The environment with this checkout's ``src`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    paths = [str(ROOT / "src"), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def test_every_guide_has_examples() -> None:
    for guide in GUIDES:
        assert any(block[0] == guide for block in BLOCKS), f"{guide} has no python block"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("guide", "line", "code"), BLOCKS, ids=BLOCK_IDS)
def test_example_runs(guide: str, line: int, code: str) -> None:
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=checkout_env(),
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the example at docs/{guide} line {line} did not end within 60 s")
    assert result.returncode == 0, (
        f"the example at docs/{guide} line {line} failed "
        f"(exit code {result.returncode}):\n{result.stderr}"
    )
