"""Types that catch mistakes: mypy, run on user-style code, accepts the good
uses and reports every deliberate mistake, at its line.

``tests/typing/good_usage.py`` must be clean under the project's strict
configuration (and its ``main`` really runs). ``tests/typing/mistakes.py``
marks each mistake with ``# E: <text>``: mypy must report an error
containing ``<text>`` on every marked line, and no error on any other line.
One mypy run (the real ``mypy.api.run``) per file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api as mypy_api

import asyncotp
from tests.typing import good_usage

ROOT = Path(__file__).resolve().parent.parent
TYPING = ROOT / "tests" / "typing"
EXPECTED = re.compile(r"\S\s+#\s*E:\s*(?P<text>.+?)\s*$")
"""A mark: code, then ``# E: <text>`` (a mark quoted in a docstring is not one)."""
REPORTED = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*)$")


def run_mypy(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[int, list[str]], str]:
    """Run mypy with the project's configuration on ``path``; return its
    errors by line, and its whole output for failure messages."""
    monkeypatch.chdir(ROOT)  # the configuration's mypy_path ("src") is relative
    stdout, stderr, _status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-pretty",
            "--no-error-summary",
            "--hide-error-context",
            str(path.relative_to(ROOT)),
        ]
    )
    assert not stderr, stderr
    errors: dict[int, list[str]] = {}
    for line in stdout.splitlines():
        match = REPORTED.match(line)
        if match is not None:
            assert Path(match["path"]).name == path.name, line
            errors.setdefault(int(match["line"]), []).append(match["message"])
    return errors, stdout


def expected_errors(path: Path) -> dict[int, str]:
    """The ``# E: <text>`` marks of ``path``, by line."""
    marks: dict[int, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = EXPECTED.search(line)
        if match is not None:
            marks[number] = match["text"]
    return marks


def test_user_style_typed_code_passes_mypy_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    errors, output = run_mypy(TYPING / "good_usage.py", monkeypatch)
    assert errors == {}, output


def test_user_style_typed_code_also_runs() -> None:
    asyncotp.run(good_usage.main)
    assert asyncotp.run(good_usage.plain_actor_main, 3) == 3


def test_every_marked_mistake_fails_mypy_and_nothing_else_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = TYPING / "mistakes.py"
    marks = expected_errors(path)
    assert len(marks) >= 20, "the mistakes file lost its marks"
    errors, output = run_mypy(path, monkeypatch)
    missing = {
        line: text
        for line, text in marks.items()
        if not any(text in message for message in errors.get(line, ()))
    }
    unexpected = {line: messages for line, messages in errors.items() if line not in marks}
    assert not missing, f"mistakes mypy did not report as marked: {missing}\n{output}"
    assert not unexpected, f"errors on lines not marked as mistakes: {unexpected}\n{output}"


def test_the_project_mypy_run_leaves_out_only_the_mistakes_file() -> None:
    config = (ROOT / "pyproject.toml").read_text()
    assert "exclude = ['^tests/typing/mistakes\\.py$']" in config
