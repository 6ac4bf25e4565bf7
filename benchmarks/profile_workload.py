"""Profile one workload of one side, to see where its time goes.

    python benchmarks/profile_workload.py cast                  # cProfile, asyncotp side
    python benchmarks/profile_workload.py call --side floor
    python benchmarks/profile_workload.py spawn --pyinstrument  # needs `pip install pyinstrument`

The workload runs once unprofiled (warm-up), then once under the profiler, at
the full benchmark size unless ``--n`` says otherwise. cProfile counts every
call exactly but inflates call-heavy code; pyinstrument samples and does not,
so read the two together.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import quiet_logging
from run import SIZES, warmup_params


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("workload", choices=("cast", "call", "spawn", "restart", "scale"))
    parser.add_argument("--side", choices=("asyncotp", "floor"), default="asyncotp")
    parser.add_argument("--n", type=int, default=None, help="size (actors for scale)")
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--pyinstrument", action="store_true", help="sample instead of cProfile")
    parser.add_argument("--top", type=int, default=30, help="rows to print")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    args = parser.parse_args()

    quiet_logging()
    if args.side == "asyncotp":
        import workloads_asyncotp as module
    else:
        import workloads_floor as module
    fn = module.WORKLOADS[args.workload]
    params = dict(SIZES["full"][args.workload] if args.workload != "scale" else {})
    if args.workload == "scale":
        params = {"actors": args.n or 1_000, "casts": 200_000}
    elif args.n:
        params["n"] = args.n
    if args.workload == "spawn":
        params["traced"] = 0
    fn(warmup_params(args.workload, params), args.uvloop)

    if args.pyinstrument:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
        result = fn(params, args.uvloop)
        profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    else:
        prof = cProfile.Profile()
        prof.enable()
        result = fn(params, args.uvloop)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(args.sort).print_stats(args.top)
        print(out.getvalue())
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
