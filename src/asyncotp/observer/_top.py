"""``python -m asyncotp top URL``: the dashboard in a terminal.

It reads a ``DashboardApp``'s JSON endpoint (``URL/api/snapshot``) with
urllib every second and prints the supervision trees and the busiest actors,
until Ctrl-C (or after ``--iterations N``). It needs nothing but the
standard library and talks to the node over HTTP, so it runs anywhere the
dashboard can be reached, in another process or on another machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any, Final

from ._values import TOP_KEYS

_CLEAR: Final = "\x1b[H\x1b[2J"
_KIND: Final = {"supervisor": "SUP", "genserver": "GEN", "actor": "ACT", "worker": "WRK"}
_SORT_FIELD: Final = {"mailbox": "mailbox_length"}


def snapshot_url(url: str) -> str:
    """The JSON endpoint of the dashboard at ``url`` (its page, its mount
    point, or the endpoint itself)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r} (for example http://127.0.0.1:8765/)")
    path = parts.path
    for tail in ("/api/snapshot", "/api/events", "/index.html"):
        if path.endswith(tail):
            path = path[: -len(tail)]
            break
    path = path.rstrip("/") + "/api/snapshot"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def fetch(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The snapshot the endpoint ``url`` serves (proxies are not used: the
    dashboard is an operations endpoint, reached directly)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        data: dict[str, Any] = json.load(response)
    return data


def _id(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _window(tree: dict[str, Any]) -> str:
    """A supervisor's strategy and restart window, and its state if not running."""
    parts = [tree["strategy"] or ""]
    if tree.get("max_restarts") is not None:
        window = f"{tree['restarts_in_window']}/{tree['max_restarts']}"
        parts.append(f"{window} restarts in {tree['max_seconds']:g}s")
    if tree["state"] != "running":
        parts.append(tree["state"].upper())
    return "  ".join(part for part in parts if part)


def _tree_rows(tree: dict[str, Any], prefix: str, rows: list[list[str]]) -> None:
    children = tree["children"]
    for index, child in enumerate(children):
        last = index == len(children) - 1
        nested = child.get("supervisor")
        kind = "supervisor" if nested is not None else child["kind"]
        state = child["status"] if child["state"] == "running" else child["state"].upper()
        extra = [f"mailbox {child['mailbox_length']}"] if child["mailbox_length"] else []
        if nested is not None:
            extra.append(_window(nested))
        rows.append(
            [
                f"{prefix}{'└─ ' if last else '├─ '}{_id(child['id'])}",
                f"<{child['pid']}>" if child["pid"] is not None else "-",
                _KIND.get(kind, kind),
                child["behaviour"] or "",
                state or "",
                f"restarts {child['restarts']}",
                "  ".join(extra),
            ]
        )
        if nested is not None:
            _tree_rows(nested, prefix + ("   " if last else "│  "), rows)


def _table(rows: list[list[str]]) -> list[str]:
    """Rows as aligned columns (the pid column right-aligned)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i == 1 else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def render(data: dict[str, Any], *, source: str, by: str = "mailbox", limit: int = 10) -> str:
    """The screen for one snapshot (``NodeSnapshot.to_dict()``)."""
    totals = data["totals"]
    clock = time.strftime("%H:%M:%S", time.localtime(data["taken_at"]))
    lines = [
        f"asyncotp top  {source}  {clock}",
        f"actors {totals['actors']}  supervisors {totals['supervisors']}  "
        f"restarts {totals['restarts']}  queued {totals['mailbox']}  "
        f"memory ~{_bytes(totals['memory'])}",
        "",
    ]
    if not data["trees"]:
        lines.append("(no supervision tree is running)")
    for tree in data["trees"]:
        title = tree["name"] if tree["name"] is not None else tree["behaviour"]
        lines.append(f"{title}  <{tree['pid']}>  {tree['behaviour']}  {_window(tree)}")
        rows: list[list[str]] = []
        _tree_rows(tree, "", rows)
        if rows:
            lines.extend(_table(rows))
        lines.append("")
    field = _SORT_FIELD.get(by, by)
    ranked = sorted(data["actors"], key=lambda a: (-a[field], a["pid"]))[:limit]
    lines.append(f"TOP {limit} BY {by.upper()}")
    header = (
        f"{'PID':>5}  {'ACTOR':<28} {'KIND':<10} {'STATUS':<8} {'MAILBOX':>7} "
        f"{'MEMORY':>9} {'RESTARTS':>8} {'UPTIME':>7}"
    )
    lines.append(header)
    for actor in ranked:
        who = actor["name"] or (_id(actor["child_id"]) if actor["child_id"] is not None else None)
        label = (
            f"{who} · {actor['behaviour']}"
            if who and who != actor["behaviour"]
            else actor["behaviour"]
        )
        if len(label) > 28:
            label = label[:27] + "…"
        lines.append(
            f"{actor['pid']:>5}  {label:<28} {actor['kind']:<10} {actor['status']:<8} "
            f"{actor['mailbox_length']:>7} {_bytes(actor['memory']):>9} "
            f"{actor['restarts']:>8} {_duration(actor['uptime']):>7}"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m asyncotp",
        description="Tools for a running asyncotp node.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    top = commands.add_parser(
        "top",
        help="the supervision trees and the busiest actors, live, in the terminal",
        description="Show the supervision trees and the busiest actors of the node whose "
        "dashboard (asyncotp.observer.DashboardApp) is at URL, refreshed every second; "
        "Ctrl-C quits.",
    )
    top.add_argument("url", metavar="URL", help="the dashboard, e.g. http://127.0.0.1:8765/")
    top.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )
    top.add_argument(
        "--iterations", type=int, default=None, help="quit after N refreshes (default: never)"
    )
    top.add_argument("--limit", type=int, default=10, help="how many actors to list (default 10)")
    top.add_argument(
        "--by", choices=TOP_KEYS, default="mailbox", help="what to rank actors by (default mailbox)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m asyncotp``; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.interval <= 0 or (args.iterations is not None and args.iterations < 1):
        parser.error("--interval must be > 0 and --iterations >= 1")
    try:
        url = snapshot_url(args.url)
    except ValueError as exc:
        parser.error(str(exc))
    clear = sys.stdout.isatty()
    done = 0
    try:
        while True:
            try:
                screen = render(fetch(url), source=args.url, by=args.by, limit=args.limit)
                ok = True
            except (OSError, ValueError, KeyError, TypeError) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                screen = f"asyncotp top: cannot read {url}: {reason}"
                ok = False
            sys.stdout.write((_CLEAR if clear else "") + screen + "\n")
            sys.stdout.flush()
            done += 1
            if args.iterations is not None and done >= args.iterations:
                return 0 if ok else 1
            time.sleep(args.interval)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        return 0
