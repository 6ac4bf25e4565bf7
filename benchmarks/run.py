"""Benchmarks: asyncotp against a hand-written raw-asyncio floor.

    python benchmarks/run.py            # a readable table (a few minutes)
    python benchmarks/run.py --json     # one JSON object on stdout
    python benchmarks/run.py --quick    # the same, smaller, in well under a minute
    python benchmarks/run.py --uvloop   # both sides on uvloop

Every measured round of every workload runs in a fresh process of this
interpreter (``run.py --worker ...``), which first runs the same workload
once, smaller, as a warm-up, then the measured run. The two sides alternate
within each round. The figures reported are medians over the rounds. See
benchmarks/README.md for what each workload measures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIDES = ("asyncotp", "floor")
WORKLOADS = (
    "cast",
    "statem",
    "call",
    "spawn",
    "restart",
    "scale",
    "registry",
    "cast_telemetry",
    "call_telemetry",
    "cast_slow_callbacks",
)

# Variants of a workload run with telemetry handlers attached on the asyncotp
# side (the floor runs the plain workload): the workload they vary, and what
# is attached (see ``attach_telemetry``).
TELEMETRY_VARIANTS = {
    "cast_telemetry": ("cast", "counting"),
    "call_telemetry": ("call", "counting"),
    "cast_slow_callbacks": ("cast", "slow_callbacks"),
}

# The targets of issue 4: asyncotp's cost divided by the floor's.
TARGETS = {"cast": 1.0, "call": 1.3, "spawn": 2.0, "memory": 1.5, "restart": 3.0}

# StateMachine cast events per second over GenServer casts per second, measured
# in the same process: at least this (higher is faster).
STATEM_TARGET = 0.8

SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "rounds": 5,
        "scale_rounds": 3,
        "cast": {"n": 200_000},
        "statem": {"n": 200_000, "pairs": 3},
        "call": {"n": 50_000},
        "spawn": {"n": 10_000, "traced": 2_000},
        "restart": {"n": 200},
        "scale": [{"actors": k, "casts": 200_000} for k in (1, 1_000, 100_000)],
        "registry": {"n": 200_000, "keys": 1_000, "subscribers": 1_000, "publishes": 200},
    },
    "quick": {
        "rounds": 3,
        "scale_rounds": 1,
        "cast": {"n": 50_000},
        "statem": {"n": 50_000, "pairs": 3},
        "call": {"n": 5_000},
        "spawn": {"n": 2_000, "traced": 500},
        "restart": {"n": 50},
        "scale": [{"actors": k, "casts": 20_000} for k in (1, 100, 10_000)],
        "registry": {"n": 50_000, "keys": 1_000, "subscribers": 1_000, "publishes": 50},
    },
    "smoke": {
        "rounds": 1,
        "scale_rounds": 1,
        "cast": {"n": 2_000},
        "statem": {"n": 2_000, "pairs": 1},
        "call": {"n": 500},
        "spawn": {"n": 300, "traced": 0},
        "restart": {"n": 10},
        "scale": [{"actors": k, "casts": 1_000} for k in (1, 10, 100)],
        "registry": {"n": 1_000, "keys": 100, "subscribers": 100, "publishes": 5},
    },
}


def warmup_params(workload: str, params: dict[str, Any]) -> dict[str, Any]:
    """The same workload, smaller: enough to load and specialise every code
    path, too small to leave memory behind that the measured run would reuse."""
    workload = TELEMETRY_VARIANTS.get(workload, (workload, None))[0]
    if workload == "cast":
        return {"n": min(params["n"], 20_000)}
    if workload == "statem":
        return {"n": min(params["n"], 20_000), "pairs": 1}
    if workload == "call":
        return {"n": min(params["n"], 2_000)}
    if workload == "spawn":
        return {"n": min(params["n"], 200), "traced": 0}
    if workload == "restart":
        return {"n": min(params["n"], 20)}
    if workload == "registry":
        return {"n": min(params["n"], 20_000), "keys": 100, "subscribers": 100, "publishes": 5}
    return {"actors": min(params["actors"], 100), "casts": min(params["casts"], 2_000)}


# -- the worker: one workload, one side, in this fresh process -------------------


def attach_telemetry(mode: str) -> dict[str, int]:
    """Attach one counting handler, as a metrics exporter would: to every
    runtime event but the slow-callback one (``counting``), or to the
    slow-callback event only (``slow_callbacks``: servers then time every
    callback). Returns the counts, by event name."""
    from asyncotp import telemetry

    counts: dict[str, int] = {}

    def count(event: Any, measurements: Any, metadata: Any, config: dict[str, int]) -> None:
        key = ".".join(event)
        config[key] = config.get(key, 0) + 1

    slow = ("asyncotp", "callback", "slow")
    if mode == "slow_callbacks":
        events = [slow]
    else:
        events = [e for e in telemetry.RUNTIME_EVENTS if e != slow]
    telemetry.attach_many("benchmark-counter", events, count, config=counts)
    return counts


def worker(side: str, workload: str, params: dict[str, Any], uvloop: bool, clock: str) -> None:
    sys.path.insert(0, str(HERE))
    from _common import Unavailable, quiet_logging, set_clock

    quiet_logging()
    set_clock(clock)
    counts: dict[str, int] | None = None
    base, mode = TELEMETRY_VARIANTS.get(workload, (workload, None))
    try:
        if side == "asyncotp":
            import workloads_asyncotp as module

            if mode is not None:
                counts = attach_telemetry(mode)
        else:
            import workloads_floor as module
        workload = base
        fn = module.WORKLOADS[workload]
        fn(warmup_params(workload, params), uvloop)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = fn(params, uvloop)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        # How much of the measured run this process spent on a CPU: well
        # below 1.0 means the machine was busy with something else.
        result["cpu_share"] = cpu / wall
        if counts is not None:
            result["telemetry_events"] = sum(counts.values())
    except Unavailable as exc:
        result = {"unavailable": str(exc)}
    print(json.dumps(result))


def run_worker(
    side: str, workload: str, params: dict[str, Any], uvloop: bool, clock: str, timeout: float
) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", side, workload]
    cmd += [json.dumps(params), "--clock", clock]
    if uvloop:
        cmd.append("--uvloop")
    env = dict(os.environ, PYTHONHASHSEED="0")
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"error": f"worker exited with {proc.returncode}:\n{tail}"}
    try:
        return json.loads(lines[-1])  # type: ignore[no-any-return]
    except json.JSONDecodeError:
        return {"error": f"worker printed no JSON: {lines[-1]!r}"}


# -- the driver -------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    values = sorted(v for v in values if isinstance(v, (int, float)) and not math.isnan(v))
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2.0


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of every numeric field over the good rounds, plus what went wrong."""
    good = [r for r in rounds if "error" not in r and "unavailable" not in r]
    out: dict[str, Any] = {}
    if good:
        spread: dict[str, list[float]] = {}
        for key in good[0]:
            values = [r[key] for r in good if isinstance(r.get(key), (int, float))]
            value = median(values)
            if value is not None:
                out[key] = value
                spread[key] = [min(values), max(values)]
        out["rounds"] = len(good)
        out["spread"] = spread
    for r in rounds:
        if "unavailable" in r:
            out["unavailable"] = r["unavailable"]
        if "error" in r:
            out.setdefault("errors", []).append(r["error"])
    return out


def measure(
    workloads: list[str], size: str, rounds: int | None, uvloop: bool, clock: str, log: Any
) -> dict[str, Any]:
    sizes = SIZES[size]
    raw: dict[str, Any] = {}
    for workload in workloads:
        base = TELEMETRY_VARIANTS.get(workload, (workload, None))[0]
        cases = sizes[workload] if workload == "scale" else [sizes[base]]
        n_rounds = rounds or (sizes["scale_rounds"] if workload == "scale" else sizes["rounds"])
        for params in cases:
            key = f"scale/{params['actors']}" if workload == "scale" else workload
            per_side: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
            for r in range(n_rounds):
                order = SIDES if r % 2 == 0 else SIDES[::-1]
                for side in order:
                    previous = per_side[side]
                    if previous and "unavailable" in previous[0]:
                        continue
                    t0 = time.perf_counter()
                    result = run_worker(side, workload, params, uvloop, clock, timeout=900)
                    previous.append(result)
                    status = (
                        "unavailable"
                        if "unavailable" in result
                        else ("ERROR" if "error" in result else "ok")
                    )
                    share = result.get("cpu_share")
                    log(
                        f"  {key:<14} {side:<8} round {r + 1}/{n_rounds}: {status} "
                        f"({time.perf_counter() - t0:.1f} s"
                        + (f", cpu share {share:.2f})" if share else ")")
                    )
                    if "error" in result:
                        log("    " + result["error"].replace("\n", "\n    "))
            raw[key] = {side: per_side[side] for side in SIDES}
    return raw


def _ratio(cost_asyncotp: float | None, cost_floor: float | None) -> float | None:
    if not cost_asyncotp or not cost_floor:
        return None
    return cost_asyncotp / cost_floor


def _entry(
    a: dict[str, Any], f: dict[str, Any], field: str, *, inverse: bool = False
) -> dict[str, Any]:
    va, vf = a.get(field), f.get(field)
    # For a throughput, the cost is 1/throughput: the ratio is floor / asyncotp.
    ratio = _ratio(vf, va) if inverse else _ratio(va, vf)
    entry: dict[str, Any] = {"asyncotp": va, "floor": vf, "ratio": ratio}
    spread = {
        side: summary["spread"][field]
        for side, summary in (("asyncotp", a), ("floor", f))
        if field in summary.get("spread", {})
    }
    if spread:
        entry["min_max"] = spread
    for side, summary in (("asyncotp", a), ("floor", f)):
        if "unavailable" in summary:
            entry["unavailable"] = summary["unavailable"]
        if "errors" in summary:
            entry.setdefault("errors", {})[side] = summary["errors"]
    return entry


def _statem_entry(a: dict[str, Any]) -> dict[str, Any]:
    """StateMachine against GenServer: both measured by the asyncotp side, in
    the same process (the floor has no such workload)."""
    ratio = a.get("ratio")
    entry: dict[str, Any] = {
        "statemachine": a.get("statem_msgs_per_s"),
        "genserver": a.get("genserver_msgs_per_s"),
        "ratio": ratio,
        "unit": "cast events/s; ratio = StateMachine / GenServer throughput (higher is faster)",
        "target": STATEM_TARGET,
        "meets_target": None if ratio is None else ratio >= STATEM_TARGET,
        "details": {k: v for k, v in a.items() if k != "spread"},
    }
    if "ratio" in a.get("spread", {}):
        entry["min_max"] = a["spread"]["ratio"]
    for key in ("unavailable", "errors"):
        if key in a:
            entry[key] = a[key]
    return entry


def report(raw: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    s = {key: {side: summarise(raw[key][side]) for side in SIDES} for key in raw}
    out: dict[str, Any] = {}

    def details(key: str) -> dict[str, Any]:
        return {side: {k: v for k, v in s[key][side].items() if k != "spread"} for side in SIDES}

    if "cast" in s:
        a, f = s["cast"]["asyncotp"], s["cast"]["floor"]
        out["cast"] = _entry(a, f, "msgs_per_s", inverse=True)
        out["cast"].update(unit="messages/s", cost="1/throughput", details=details("cast"))
    if "statem" in s:
        out["statem"] = _statem_entry(s["statem"]["asyncotp"])
    for variant, (base, mode) in TELEMETRY_VARIANTS.items():
        if variant in s:
            field = "msgs_per_s" if base == "cast" else "mean_us"
            a, f = s[variant]["asyncotp"], s[variant]["floor"]
            entry = _entry(a, f, field, inverse=base == "cast")
            plain = s.get(base, {}).get("asyncotp", {}).get(field)
            with_it = a.get(field)
            # The price of the handler: asyncotp's cost with it over without
            # it, both from this run (> 1.0 is slower).
            overhead = None
            if plain and with_it:
                overhead = plain / with_it if base == "cast" else with_it / plain
            entry.update(
                unit=out.get(base, {}).get("unit", field),
                attached=mode,
                overhead_vs_plain=overhead,
                telemetry_events=a.get("telemetry_events"),
                details=details(variant),
            )
            out[variant] = entry
    if "registry" in s:
        a, f = s["registry"]["asyncotp"], s["registry"]["floor"]
        out["registry"] = _entry(a, f, "lookup_ns")
        out["registry"].update(
            unit="ns per Registry.lookup (floor: dict.get)", details=details("registry")
        )
        for q in ("publish_us", "dispatch_us", "delivered_us"):
            out["registry"][q] = {
                "asyncotp": a.get(q),
                "floor": f.get(q),
                "ratio": _ratio(a.get(q), f.get(q)),
            }
    if "call" in s:
        a, f = s["call"]["asyncotp"], s["call"]["floor"]
        out["call"] = _entry(a, f, "mean_us")
        out["call"].update(unit="µs per call (mean)", details=details("call"))
        for q in ("p50_us", "p99_us"):
            out["call"][q] = {"asyncotp": a.get(q), "floor": f.get(q)}
    if "spawn" in s:
        a, f = s["spawn"]["asyncotp"], s["spawn"]["floor"]
        out["spawn"] = _entry(a, f, "us_per_actor")
        out["spawn"].update(unit="µs per actor (start + stop)", details=details("spawn"))
        out["memory"] = _entry(a, f, "rss_bytes_per_actor")
        out["memory"].update(unit="bytes of RSS per idle actor")
        for extra in ("tracemalloc_bytes_per_actor", "gc_objects_per_actor"):
            out["memory"][extra] = {"asyncotp": a.get(extra), "floor": f.get(extra)}
    if "restart" in s:
        a, f = s["restart"]["asyncotp"], s["restart"]["floor"]
        out["restart"] = _entry(a, f, "name_us")
        out["restart"].update(
            unit="µs from the crashing cast to the restarted server's reply (median)",
            path="registered name",
            which_children=_entry(a, f, "which_children_us"),
            details=details("restart"),
        )
    scale_keys = [key for key in s if key.startswith("scale/")]
    if scale_keys:
        out["scale"] = {}
        for key in scale_keys:
            a, f = s[key]["asyncotp"], s[key]["floor"]
            out["scale"][key.split("/")[1]] = {
                "hot_msgs_per_s": _entry(a, f, "hot_msgs_per_s", inverse=True),
                "fanout_msgs_per_s": _entry(a, f, "fanout_msgs_per_s", inverse=True),
                "rss_bytes_per_actor": _entry(a, f, "rss_bytes_per_actor"),
                "start_us_per_actor": _entry(a, f, "start_us_per_actor"),
                "rss_mb": {"asyncotp": a.get("rss_mb"), "floor": f.get("rss_mb")},
                "gc_share": {
                    phase: {
                        "asyncotp": a.get(f"{phase}_gc_share"),
                        "floor": f.get(f"{phase}_gc_share"),
                    }
                    for phase in ("start", "fanout", "hot")
                },
            }
    for key, target in TARGETS.items():
        if key in out:
            ratio = out[key]["ratio"]
            out[key]["target"] = target
            out[key]["meets_target"] = None if ratio is None else ratio <= target
    out["meta"] = meta
    return _rounded(out)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# -- the table ----------------------------------------------------------------------


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit == "M":
        return f"{value / 1e6:.3f} M"
    if unit == "KB":
        return f"{value / 1024:.2f} KB"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _rat(entry: dict[str, Any]) -> str:
    ratio = entry.get("ratio")
    return "n/a" if ratio is None else f"{ratio:.2f}"


def table(out: dict[str, Any]) -> str:
    meta = out["meta"]
    lines = [
        f"asyncotp {meta['asyncotp']} vs raw asyncio: Python {meta['python']}, "
        f"{meta['loop']} loop, {meta['cpus']} CPUs, size {meta['size']}",
        f"medians of {meta['rounds']}, each a fresh process after a warm-up; "
        f"{meta.get('clock', 'wall')} clock for totals, wall clock for per-event latencies",
        "ratio = asyncotp's cost / the floor's (higher = slower; for throughput, cost = 1/rate)",
        "",
    ]
    head = f"{'workload':<9} {'measure':<34} {'asyncotp':>12} {'floor':>12} {'ratio':>6}  target"
    lines += [head, "-" * len(head)]

    def row(work: str, what: str, entry: dict[str, Any], unit: str = "", key: str = "") -> None:
        target = ""
        if key in TARGETS:
            ok = entry.get("meets_target")
            verdict = "n/a" if ok is None else ("ok" if ok else "MISSED")
            target = f"<= {TARGETS[key]:.1f} {verdict}"
        lines.append(
            f"{work:<9} {what:<34} {_num(entry.get('asyncotp'), unit):>12} "
            f"{_num(entry.get('floor'), unit):>12} {_rat(entry):>6}  {target}"
        )

    sizes = meta["sizes"]
    if "cast" in out:
        row("cast", f"messages/s ({sizes['cast']['n']:,} casts)", out["cast"], "M", "cast")
    if "statem" in out:
        e = out["statem"]
        ok = e.get("meets_target")
        verdict = "n/a" if ok is None else ("ok" if ok else "MISSED")
        ratio = "n/a" if e.get("ratio") is None else f"{e['ratio']:.2f}x"
        n = f"{sizes['statem']['n']:,}"
        lines += [
            f"{'statem':<9} {f'StateMachine casts/s ({n})':<34} "
            f"{_num(e.get('statemachine'), 'M'):>12}",
            f"{'':<9} {'GenServer casts/s, same process':<34} {_num(e.get('genserver'), 'M'):>12}",
            f"{'':<9} {'StateMachine / GenServer':<34} {ratio:>12} {'':>12} {'':>6}  "
            f">= {STATEM_TARGET:.1f}x {verdict}",
        ]
    if "call" in out:
        c = out["call"]
        row("call", f"mean µs ({sizes['call']['n']:,} calls)", c, "", "call")
        row("", "p50 µs", {**c["p50_us"], "ratio": _ratio(*c["p50_us"].values())})
        row("", "p99 µs", {**c["p99_us"], "ratio": _ratio(*c["p99_us"].values())})
    for variant, (base, mode) in TELEMETRY_VARIANTS.items():
        if variant in out:
            e = out[variant]
            what = f"{base}, handler on: {mode}"
            row(variant.split("_")[0] + "+tel", what, e, "M" if base == "cast" else "")
            over = e.get("overhead_vs_plain")
            if over is not None:
                lines.append(f"{'':<9} {'  vs plain ' + base + ', same run':<34} {over:>11.3f}x")
    if "spawn" in out:
        d = out["spawn"]["details"]
        row("spawn", f"µs/actor, start+stop ({sizes['spawn']['n']:,})", out["spawn"], "", "spawn")
        for part, label in (
            ("start_us", "  start µs/actor"),
            ("stop_us", "  stop µs/actor"),
            ("gc_us_per_actor", "  of which in the GC, µs/actor"),
        ):
            a, f = d["asyncotp"].get(part), d["floor"].get(part)
            row("", label, {"asyncotp": a, "floor": f, "ratio": _ratio(a, f)})
    if "memory" in out:
        m = out["memory"]
        row("memory", "RSS per idle actor", m, "KB", "memory")
        t = m["tracemalloc_bytes_per_actor"]
        if t["asyncotp"] or t["floor"]:
            row("", "tracemalloc per idle actor", {**t, "ratio": _ratio(*t.values())}, "KB")
        g = m["gc_objects_per_actor"]
        row("", "GC-tracked objects per actor", {**g, "ratio": _ratio(*g.values())})
    if "restart" in out:
        r = out["restart"]
        row("restart", f"µs, new pid by name ({sizes['restart']['n']} crashes)", r, "", "restart")
        row("", "µs, new pid by which_children", r["which_children"])
        if "unavailable" in r:
            lines.append(f"{'':<9} asyncotp: unavailable: {r['unavailable']}")
    if "registry" in out:
        r = out["registry"]
        n = sizes["registry"]["subscribers"]
        row("registry", "ns per lookup (floor: dict.get)", r, "")
        d = r["details"]["asyncotp"]
        for part, label in (("lookup_by_pid_ns", "  by pid"), ("whereis_via_ns", "  whereis(via)")):
            row("", label, {"asyncotp": d.get(part), "floor": None, "ratio": None})
        row("", f"µs per publish to {n:,}", r["publish_us"])
        row("", f"µs per dispatch (send) to {n:,}", r["dispatch_us"])
        row("", "µs per publish, until handled", r["delivered_us"])
    if "scale" in out:
        lines.append("")
        lines.append(
            f"scale: {sizes['scale'][0]['casts']:,} casts with N live actors "
            "(hot: all to one actor; fan-out: round-robin over all N)"
        )
        for k, e in out["scale"].items():
            n = f"N={int(k):,}"
            row("scale", f"{n} hot messages/s", e["hot_msgs_per_s"], "M")
            row("", f"{n} fan-out messages/s", e["fanout_msgs_per_s"], "M")
            row("", f"{n} start µs/actor", e["start_us_per_actor"])
            if int(k) >= 100:
                row("", f"{n} RSS per actor", e["rss_bytes_per_actor"], "KB")
            else:
                rss = e["rss_mb"]
                row("", f"{n} process RSS, MB", {**rss, "ratio": _ratio(*rss.values())})
            shares = e.get("gc_share", {})
            if shares:
                cells = "  ".join(
                    f"{phase} {_pct(v['asyncotp'])}/{_pct(v['floor'])}"
                    for phase, v in shares.items()
                )
                lines.append(f"{'':<9} {n} time in GC (asyncotp/floor): {cells}")
    problems = []
    for key, entry in out.items():
        if isinstance(entry, dict) and "errors" in entry:
            problems.append(f"{key}: errors on {', '.join(entry['errors'])}")
    if problems:
        lines += ["", "PROBLEMS:", *problems]
    return "\n".join(lines)


def _git_state() -> str | None:
    """The commit measured, and whether the working tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty src" if dirty else head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--uvloop", action="store_true", help="run both sides on uvloop")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (fresh processes)")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="clock of the aggregate timings: process CPU time (default; robust on a "
        "shared machine) or wall time; per-call and per-restart latencies are always wall",
    )
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help="comma-separated workloads to run"
    )
    parser.add_argument(
        "--show", metavar="FILE", help="print the table of a JSON result saved earlier"
    )
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.show:
        print(table(json.loads(Path(args.show).read_text(encoding="utf-8"))))
        return 0

    if args.worker:
        side, workload, params = args.worker
        worker(side, workload, json.loads(params), args.uvloop, args.clock)
        return 0

    size = "smoke" if args.smoke else ("quick" if args.quick else "full")
    workloads = [w.strip() for w in args.only.split(",") if w.strip()]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {WORKLOADS}")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        import asyncotp

        version = asyncotp.__version__
    except Exception:
        traceback.print_exc()
        version = "?"
    sizes = SIZES[size]
    rounds = args.rounds or sizes["rounds"]
    meta = {
        "asyncotp": version,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loop": "uvloop" if args.uvloop else "asyncio",
        "clock": args.clock,
        "size": size,
        "rounds": f"{rounds} rounds (scale: {args.rounds or sizes['scale_rounds']})",
        "sizes": {w: sizes[w] for w in WORKLOADS if w in sizes},
        "git": _git_state(),
    }
    log(f"asyncotp benchmarks ({size}, {meta['loop']}): {', '.join(workloads)}")
    t0 = time.perf_counter()
    raw = measure(workloads, size, args.rounds, args.uvloop, args.clock, log)
    meta["seconds"] = round(time.perf_counter() - t0, 1)
    out = report(raw, meta)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(table(out))
        log(f"done in {meta['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
