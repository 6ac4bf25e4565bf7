"""docs/telemetry.md documents every event the runtime emits, in one table."""

from __future__ import annotations

import re

from asyncotp import telemetry
from tests.helpers import ROOT


def documented_events() -> set[tuple[str, ...]]:
    text = (ROOT / "docs" / "telemetry.md").read_text(encoding="utf-8")
    table = text[text.index("## The runtime's events") : text.index("## Prometheus")]
    rows = re.findall(r"^\| `(\([^`]*\))` \|", table, re.MULTILINE)
    return {tuple(re.findall(r'"([^"]+)"', row)) for row in rows}


def test_every_runtime_event_is_in_the_docs_table_and_nothing_else() -> None:
    assert documented_events() == set(telemetry.RUNTIME_EVENTS)


def test_runtime_event_names_are_unique_and_start_with_asyncotp() -> None:
    names = telemetry.RUNTIME_EVENTS
    assert len(set(names)) == len(names)
    assert all(name[0] == "asyncotp" and len(name) == 3 for name in names)
