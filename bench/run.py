"""bulkhead benchmarks: `python bench/run.py` (or `make bench`).

Prints a table, writes bench/out/scaling.png and bench/out/results.json, copies
the plot to bench/scaling.png, and exits 1 if a goal is missed (see README.md).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform as platform_mod
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.catalogues import CATALOGUES  # noqa: E402
from bench.critical_path import critical_path  # noqa: E402
from bench.synth import synthesise  # noqa: E402

PLAN_NS = (10, 20, 50, 100, 200)
CHECK_NS = (100, 500, 1000, 5000)
# --smoke (tests/bench/test_bench_smoke.py, in `make test`): every step at the smallest N, one
# repeat; the goals are computed (so a broken goal fails CI) but not enforced: it measures nothing.
SMOKE_PLAN_NS = (5,)
SMOKE_CHECK_NS = (3, 6)
GOALS = {
    # plan time / the floor's at N=200, the floor skipping the same SDK work as plan (the offline
    # fast path on for both, bench/measure.py floor): what bulkhead adds over registering the same
    # custom and component resources, less the program's own cryptography (bench/measure.py
    # CryptoClock). Against the SDK's own path (printed too) it would be < 1 by construction.
    "plan_vs_floor_200": 1.3,
    "plan_linear_200_20": 11.0,  # t(200) / t(20)
    # "check on 1000 databases < 2 s" was set when 1000 synthesised databases were ~12k resources;
    # since issues 13-16 (alarms, log groups, rules, credentials) they are 41.6k. Restated on
    # 2026-12-08 (issue 23, p-check; bench/README.md "Fourth pass") as the budget per resource it
    # meant: 2 s / 12k resources = ~167 us/resource of CPU (CPU, not wall: the 2 cores are shared).
    "check_1000_s": 2.0,
    "check_1000_resources_then": 12_000,
    "check_linear_500_100": 5.5,  # CPU seconds, as the budget: wall on shared cores measures the others' load
    "check_linear_5000_1000": 5.5,
    "critical_path": 2,
}
# The N each goal reads; a smoke run reads its own N instead, so every goal is computed.
GOAL_NS = {"plan_small": 20, "plan_big": 200, "check_small": 100, "check_mid": 500,
           "check_budget": 1000, "check_big": 5000}
SMOKE_GOAL_NS = {"plan_small": 5, "plan_big": 5, "check_small": 3, "check_mid": 6,
                 "check_budget": 6, "check_big": 6}


def plan_repeats(n: int, smoke: bool = False) -> int:
    if smoke:
        return 1
    # Small N runs in a fraction of a second, where machine noise is the largest share:
    # more repeats there keep the t(200)/t(20) ratio from measuring noise.
    return 9 if n <= 20 else 5 if n <= 50 else 3


def measure_plan(platform: str, n: int, smoke: bool = False) -> dict:
    """One fresh interpreter per (platform, N): peak RSS is that process's own high-water mark."""
    cmd = [sys.executable, "-m", "bench.measure", platform, str(n), str(plan_repeats(n, smoke))]
    cmd += ["--no-warm-up"] if smoke else []
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"bench.measure {platform} {n} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_check(base_export: dict, n_base: int, check_ns: tuple = CHECK_NS) -> list[dict]:
    from bulkhead.commands.check import defaults_for_stack, evaluate, load_pack, merge_configs

    pack = load_pack()
    config = merge_configs(defaults_for_stack("prod", pack), {})
    evaluate(base_export, config, pack)  # warm-up
    rows = []
    for n in check_ns:
        export = base_export if n == n_base else synthesise(base_export, n // n_base)
        resources = sum(1 for r in export["deployment"]["resources"] if r["type"] != "pulumi:pulumi:Stack")
        slow, _ = critical_path(export)
        times, cpu, violations = [], [], None
        for _ in range(3):  # the 5000 row decides a goal too: a median, not one run
            gc.collect()
            started, cpu_started = time.perf_counter(), time.process_time()
            result = evaluate(export, config, pack)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            violations = len(result.violations)
        rows.append({"n": n, "resources": resources, "check_s": statistics.median(times), "all": times,
                     "check_cpu_s": statistics.median(cpu), "all_cpu": cpu,
                     "violations": violations, "critical_path": slow,
                     "us_per_resource": statistics.median(times) / resources * 1e6,
                     "cpu_us_per_resource": statistics.median(cpu) / resources * 1e6})
        del export
    return rows


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), dpi=72)
    ax_t, ax_m, ax_c = axes
    for platform, style in (("aws", "o-"), ("docker", "s-")):
        rows = results["plan"].get(platform, [])
        ns = [r["n"] for r in rows]
        ax_t.plot(ns, [r["plan_s"] for r in rows], style, label=f"plan {platform}")
        ax_t.plot(ns, [r["floor_s"] for r in rows], style.replace("-", "--"), alpha=0.6, label=f"SDK floor {platform}")
        ax_m.plot(ns, [r["rss_delta_mib"] for r in rows], style, label=f"plan {platform}")
    ax_t.set(title="plan time (median)", xlabel="databases", ylabel="seconds")
    ax_m.set(title="plan peak RSS over baseline", xlabel="databases", ylabel="MiB")
    crow = results["check"]
    ax_c.set(title="check time", xlabel="databases", ylabel="seconds")
    if crow:  # --only plan: no check rows, and a log scale of nothing is an error
        ax_c.plot([r["n"] for r in crow], [r["check_s"] for r in crow], "o-", label="check (aws)")
        ax_c.set(xscale="log", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# Issue 23 set "plan <= 1.3x the SDK floor at N=200" on aws (its figure: 19.2 s against 15.4 s, the
# platform its CDK comparison is about). docker's ratio is printed with its parts (floor_reported): its
# excess over the floor is the program's own per-container work (SCRAM verifiers, real TLS material,
# SQL and config files), 1.28-1.42 less the cryptography on this machine (bench/README.md "Sixth pass").
FLOOR_GOAL_PLATFORMS = ("aws",)


def floor_reported(results: dict, ns: dict = GOAL_NS) -> list[str]:
    """plan/floor at the goal's N for the platforms the goal does not judge: printed, not a goal."""
    big = ns["plan_big"]
    out = []
    for platform, plan_rows in results["plan"].items():
        row = {r["n"]: r for r in plan_rows}.get(big)
        if platform in FLOOR_GOAL_PLATFORMS or row is None:
            continue
        out.append(f"reported, not a goal: plan / SDK floor (same fast path) at N={big} ({platform}): "
                   f"{row['plan_less_crypto_vs_floor']:.2f} less the program's cryptography ({row['crypto_s']:.2f} s "
                   f"of {row['plan_s']:.2f} s), {row['plan_vs_floor']:.2f} whole")
    return out


def goals(results: dict, ns: dict = GOAL_NS) -> list[tuple[str, str, bool]]:
    """(goal, measured, met) for what `results` measured (--only: that half's goals)."""
    out: list[tuple[str, str, bool]] = []
    small, big = ns["plan_small"], ns["plan_big"]
    for platform, plan_rows in results["plan"].items():
        if platform not in FLOOR_GOAL_PLATFORMS:
            continue  # reported (floor_reported), not judged
        row = {r["n"]: r for r in plan_rows}[big]
        # The floor is the SDK registering the same resources; the program's own cryptography (the dev
        # containers' SCRAM verifiers and TLS certificates: bench/measure.py CryptoClock, measured in each
        # plan run) is work `pulumi up` does too and no floor can have, so the goal is on plan less it;
        # the whole plan's ratio is printed beside (bench/README.md "Sixth pass").
        ratio = row["plan_less_crypto_vs_floor"]
        out.append((f"plan less the program's cryptography / SDK floor (same fast path) at N={big} <= "
                    f"{GOALS['plan_vs_floor_200']} ({platform})",
                    f"{ratio:.2f} (whole plan {row['plan_vs_floor']:.2f}, cryptography {row['crypto_s']:.2f} s of "
                    f"{row['plan_s']:.2f} s; vs the SDK's own path: {row['plan_s'] / row['sdk_floor_s']:.2f})",
                    ratio <= GOALS["plan_vs_floor_200"]))
    for platform, plan_rows in results["plan"].items():
        rows = {r["n"]: r for r in plan_rows}
        lin = rows[big]["plan_s"] / rows[small]["plan_s"]
        out.append((f"plan t({big})/t({small}) <= {GOALS['plan_linear_200_20']:g} ({platform})", f"{lin:.2f}",
                    lin <= GOALS["plan_linear_200_20"]))
    if results["check"]:
        out += _check_goals({r["n"]: r for r in results["check"]}, ns)
    paths = [r["critical_path"] for r in results["plan"].get("aws", [])] + [r["critical_path"] for r in results["check"]]
    out.append(("critical path = 2 slow creates at every N (aws)", "/".join(map(str, paths)),
                all(p == GOALS["critical_path"] for p in paths)))
    return out


def _check_goals(check: dict, ns: dict) -> list[tuple[str, str, bool]]:
    out = []
    # Restated as the per-resource budget it was set with (GOALS above, bench/README.md "Fourth pass").
    budget_us = GOALS["check_1000_s"] / GOALS["check_1000_resources_then"] * 1e6
    row = check[ns["check_budget"]]
    out.append((f"check on {row['n']} databases ({row['resources']} resources) <= {budget_us:.0f} us/resource of CPU "
                f"(the < {GOALS['check_1000_s']:g} s set for ~{GOALS['check_1000_resources_then'] // 1000}k resources)",
                f"{row['cpu_us_per_resource']:.0f} us ({row['check_cpu_s']:.2f} s CPU, {row['check_s']:.2f} s wall)",
                row["cpu_us_per_resource"] <= budget_us))
    for low, high, goal in (("check_small", "check_mid", "check_linear_500_100"),
                            ("check_budget", "check_big", "check_linear_5000_1000")):
        a, b = check[ns[low]], check[ns[high]]
        lin = b["check_cpu_s"] / a["check_cpu_s"]
        out.append((f"check t({b['n']})/t({a['n']}) <= {GOALS[goal]} (CPU)",
                    f"{lin:.2f} (wall {b['check_s'] / a['check_s']:.2f})", lin <= GOALS[goal]))
    return out


def render(results: dict) -> str:
    fast = {r.get("fast_path") for rows in results["plan"].values() for r in rows}
    lines = ["plan (median of repeats); floor = the same typed custom resources, inputs and references, and the same",
             "component resources (empty), registered flat on the SDK's MockMonitor: no component code, no parents, no",
             "config, no recording. `floor s` skips the same SDK",
             "work as plan (the offline fast path, bulkhead/offline/sdk_fast_path.py" +
             (", on for both" if fast == {True} else ", off for both: SDK version not verified" if fast == {False} else "") +
             "): the goal's ratio.", "`SDK floor s` is the floor on the SDK's own path (what plan/floor compared before; "
             "< 1 by construction).", ""]
    lines.append("plan/floor: the median of each plan run over the floor run after it; crypto s: the program's own "
                 "cryptography inside plan (bench/measure.py CryptoClock), excluded from the goal's ratio.")
    lines.append("")
    lines.append("| platform | N | resources | plan s | crypto s | floor s | plan/floor | less crypto | SDK floor s | "
                 "plan/SDK floor | ms/resource | peak RSS MiB | critical path |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for platform in ("aws", "docker"):
        for r in results["plan"].get(platform, []):
            lines.append(f"| {platform} | {r['n']} | {r['resources']} | {r['plan_s']:.2f} | {r['crypto_s']:.2f} | "
                         f"{r['floor_s']:.2f} | {r['plan_vs_floor']:.2f} | {r['plan_less_crypto_vs_floor']:.2f} | "
                         f"{r['sdk_floor_s']:.2f} | {r['plan_s'] / r['sdk_floor_s']:.2f} | "
                         f"{r['plan_s'] / r['resources'] * 1e3:.2f} | {r['rss_delta_mib']:.0f} | {r['critical_path']} |")
    lines += ["", "check (aws plans; N > 100 synthesised from the N=100 plan)", ""]
    lines.append("| N | resources | check s | CPU s | us/resource (CPU) | violations | critical path |")
    lines.append("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["check"]:
        lines.append(f"| {r['n']} | {r['resources']} | {r['check_s']:.2f} | {r['check_cpu_s']:.2f} | "
                     f"{r['cpu_us_per_resource']:.0f} | {r['violations']} | {r['critical_path']} |")
    smoke = results.get("smoke")
    lines += ["", "| goal | measured | |", "|---|---|---|"]
    for name, value, ok in results["goals"]:
        lines.append(f"| {name} | {value} | {'(smoke: not a goal)' if smoke else 'PASS' if ok else 'FAIL'} |")
    lines += [""] + floor_reported(results, SMOKE_GOAL_NS if smoke else GOAL_NS)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    parser.add_argument("--no-copy", action="store_true", help="do not update bench/scaling.png")
    parser.add_argument("--smoke", action="store_true",
                        help="every step at the smallest N, one repeat, no goals (make test runs this)")
    parser.add_argument("--only", choices=("plan", "check"),
                        help="measure only plan (and its floor) or only check, and their goals")
    args = parser.parse_args()
    plan_ns, check_ns = (SMOKE_PLAN_NS, SMOKE_CHECK_NS) if args.smoke else (PLAN_NS, CHECK_NS)
    plan_ns = () if args.only == "check" else plan_ns
    check_ns = () if args.only == "plan" else check_ns
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    results: dict = {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count(),
                     "python": platform_mod.python_version(), "plan": {}, "check": []}
    for platform in CATALOGUES if plan_ns else ():
        results["plan"][platform] = []
        for n in plan_ns:
            row = measure_plan(platform, n, args.smoke)
            print(f"plan {platform:6} N={n:4}: {row['plan_s']:6.2f} s, floor {row['floor_s']:6.2f} s, "
                  f"x{row['plan_s'] / row['floor_s']:.2f}, SDK floor {row['sdk_floor_s']:6.2f} s, "
                  f"RSS +{row['rss_delta_mib']:.0f} MiB, "
                  f"critical path {row['critical_path']}", file=sys.stderr, flush=True)
            results["plan"][platform].append(row)
    from bench.measure import plan

    stack, make_config = CATALOGUES["aws"]
    if check_ns:
        base = plan(stack, make_config(check_ns[0]))
        results["check"] = measure_check(base, check_ns[0], check_ns)
    for r in results["check"]:
        print(f"check N={r['n']:5}: {r['check_s']:6.2f} s, {r['check_cpu_s']:6.2f} s CPU ({r['resources']} resources)",
              file=sys.stderr)
    results["smoke"] = args.smoke
    results["goals"] = goals(results, SMOKE_GOAL_NS if args.smoke else GOAL_NS)
    results["seconds"] = time.perf_counter() - started
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=1)
    png = os.path.join(args.out, "scaling.png")
    plot(results, png)
    if not (args.no_copy or args.smoke or args.only):
        shutil.copyfile(png, os.path.join(HERE, "scaling.png"))
    print(render(results))
    print(f"\nfull run {results['seconds']:.0f} s; plot {os.path.relpath(png, ROOT)}")
    bad = [r["n"] for r in results["check"] if r["violations"]]
    if bad:  # the synthesised plans must pass the pack as the real one does, or check measures error paths
        print(f"check plans with violations at N={bad}: bench/synth.py no longer clones cleanly", file=sys.stderr)
        return 1
    if args.smoke:
        print(f"smoke run: every step ran; {len(results['goals'])} goals computed, none enforced")
        return 0
    return 0 if all(ok for _, _, ok in results["goals"]) else 1


if __name__ == "__main__":
    sys.exit(main())
