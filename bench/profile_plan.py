"""cProfile of one in-process `bulkhead plan` of the bench's aws catalogue (bench/README.md).

    python bench/profile_plan.py 200            # top entries by own time, and the run's phases
    python bench/profile_plan.py 500 --top 30

Main thread only (the recording monitor runs on the SDK's executor threads). With the
collector paused for the whole call, as `python -m bulkhead` runs.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--jobs", type=int, default=1, help="plan processes (profiled: the parent only)")
    parser.add_argument("--save", help="also write the raw profile here (pstats format), for other views")
    args = parser.parse_args()
    from bench.peer import project_for
    from bulkhead.commands.plan import build_plan, write_plan

    gc.disable()
    with tempfile.TemporaryDirectory(prefix="bulkhead-profile-") as workdir:
        project = project_for(args.n, workdir)
        build_plan(project, "peer", jobs=1)  # warm-up: imports, lazy pulumi_aws modules
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        export, _ = build_plan(project, "peer", jobs=args.jobs)
        built = time.perf_counter()
        write_plan(export, os.path.join(workdir, "plan.json"))
        profiler.disable()
        done = time.perf_counter()
    if args.save:
        profiler.dump_stats(args.save)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    total_calls = stats.total_calls
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"N={args.n}: build_plan {built - started:.2f} s, write_plan {done - built:.2f} s (profiled), "
          f"{total_calls / 1e6:.2f} M calls")
    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
