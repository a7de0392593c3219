"""bulkhead `plan` against the AWS CDK app a team would otherwise write (bench/peer/app.js).

    python bench/peer.py                      # N = 10, 50, 100, 200, 500, 3 runs each
    python bench/peer.py --ns 10,50 --repeats 1
    python bench/peer.py --jobs 1             # bulkhead plan in one process

Whole processes, interleaved (bulkhead plan, node app.js, bulkhead check, next repeat),
so both see the same machine noise: `python -m bulkhead plan` of the bench's aws
catalogue (bench/catalogues.py: N databases, replicas k % 3, tiers mixed) against
`node app.js N` (synth to a temporary cdk.out), and `python -m bulkhead check` of the
plan. Prints medians, CPU seconds, the peak memory of each process tree (the sum of PSS,
the memory goal's figure, and the sum of RSS; bench/README.md "Memory") and the ratios, and
the goals; writes bench/out/peer.json, and exits 1 if a goal is missed. The CDK app runs with
issue 24's alarms and event subscription by default (`--alarms on`), as the prod stack has them. Installs bench/peer's pinned
aws-cdk-lib from the npm registry (`npm ci`) on first use; `make test` never does.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEER = os.path.join(HERE, "peer")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

NS = (10, 50, 100, 200, 500)
GOALS = {"plan_vs_cdk": 1.5, "rss_at": 500, "check_linear_500_100": 5.5}
PROJECT_FILES = ("__main__.py", "Pulumi.yaml", "components")


def ensure_cdk() -> None:
    if os.path.isdir(os.path.join(PEER, "node_modules", "aws-cdk-lib")):
        return
    print("installing bench/peer (npm ci: aws-cdk-lib pinned in package-lock.json)", file=sys.stderr)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=PEER, check=True)


def project_for(n: int, workdir: str) -> str:
    """A project directory with the program (symlinked) and the bench catalogue as stack `peer`."""
    import yaml

    from bench.catalogues import aws_config

    project = os.path.join(workdir, f"project-{n}")
    os.makedirs(project, exist_ok=True)
    for name in PROJECT_FILES:
        target = os.path.join(project, name)
        if not os.path.lexists(target):
            os.symlink(os.path.join(ROOT, name), target)
    with open(os.path.join(project, "Pulumi.peer.yaml"), "w", encoding="utf-8") as fh:
        yaml.safe_dump({"config": aws_config(n)}, fh, sort_keys=False)
    return project


def _tree_pids(pid: int) -> list[int]:
    """`pid` and every descendant (a `plan --jobs` worker), from /proc (children of every thread)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def _field_kib(path: str, name: str) -> int:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return next((int(line.split()[1]) for line in fh if line.startswith(name)), 0)
    except (OSError, ValueError, IndexError):
        return 0


def tree_memory_kib(pid: int) -> tuple[int, int]:
    """(sum of VmRSS, sum of Pss) over the process tree, KiB.

    RSS counts a page once per process that maps it: after a fork the pages a worker still
    shares with its parent (the loaded SDK, copy-on-write) count twice. PSS (proportional set
    size, /proc/<pid>/smaps_rollup, Linux >= 4.14) divides each page among the processes sharing
    it, so the sum over the tree is what the tree costs the machine, each page once."""
    rss = pss = 0
    for p in _tree_pids(pid):
        rss += _field_kib(f"/proc/{p}/status", "VmRSS:")
        pss += _field_kib(f"/proc/{p}/smaps_rollup", "Pss:")
    return rss, pss


class _TreePeak(threading.Thread):
    """The highest sums of the process tree's RSS and PSS, sampled every 25 ms: wait4's ru_maxrss
    is one process's high-water mark (for the children it waited for, the largest one's, not
    the sum). The two peaks are each their own maximum over the samples."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.peak_pss, self.done = pid, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.025):
            rss, pss = tree_memory_kib(self.pid)
            self.peak, self.peak_pss = max(self.peak, rss), max(self.peak_pss, pss)


def timed_process(cmd: list[str], cwd: str) -> tuple[float, float, str, float, float]:
    """(wall seconds, peak RSS MiB of the process tree, stdout, CPU seconds of the tree, peak PSS MiB).

    Peak RSS: the larger of wait4's ru_maxrss (exact for one process) and the sampled sum over
    the process and its descendants (pages a forked worker shares with its parent count twice,
    as in `ps`). Peak PSS: the sampled sum of Pss over the same tree (each page once; the
    memory goal's figure, the same method for bulkhead and node). CPU: user + system of the
    process and the children it waited for (wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = _TreePeak(proc.pid)
    sampler.start()
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    sampler.done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    rss = max(usage.ru_maxrss, sampler.peak) / 1024
    return wall, rss, out.decode(), usage.ru_utime + usage.ru_stime, sampler.peak_pss / 1024


def measure(n: int, repeats: int, workdir: str, alarms: str = "off", jobs: str | None = None) -> dict:
    project = project_for(n, workdir)
    plan_path = os.path.join(workdir, f"plan-{n}.json")
    runs: dict[str, list] = {"plan": [], "cdk": [], "check": []}
    info = {}
    for _ in range(repeats):
        wall, rss, _, cpu, pss = timed_process([sys.executable, "-m", "bulkhead", "plan", "--stack", "peer",
                                                "--project-dir", project, "--out", plan_path,
                                                *(["--jobs", jobs] if jobs else [])], ROOT)
        runs["plan"].append((wall, rss, cpu, pss))
        out_dir = os.path.join(workdir, f"cdk.out-{n}")
        wall, rss, out, cpu, pss = timed_process(["node", os.path.join(PEER, "app.js"), str(n), out_dir,
                                                  *(["alarms"] if alarms == "on" else [])], PEER)
        runs["cdk"].append((wall, rss, cpu, pss))
        if alarms == "both":
            shutil.rmtree(out_dir, ignore_errors=True)
            wall, rss, out_alarms, cpu, pss = timed_process(["node", os.path.join(PEER, "app.js"), str(n), out_dir,
                                                             "alarms"], PEER)
            runs.setdefault("cdk_alarms", []).append((wall, rss, cpu, pss))
            info_alarms = json.loads(out_alarms.strip().splitlines()[-1])
        info = json.loads(out.strip().splitlines()[-1])
        shutil.rmtree(out_dir, ignore_errors=True)
        wall, rss, _, cpu, pss = timed_process([sys.executable, "-m", "bulkhead", "check", plan_path], ROOT)
        runs["check"].append((wall, rss, cpu, pss))
    with open(plan_path, encoding="utf-8") as fh:
        resources = sum(1 for r in json.load(fh)["deployment"]["resources"] if r.get("custom"))
    row = {"n": n, "repeats": repeats, "resources": resources, "cdk_resources": info.get("resources"),
           "cdk_stacks": info.get("stacks"), "runs": runs}
    for kind, values in runs.items():
        row[f"{kind}_s"] = statistics.median(v[0] for v in values)
        row[f"{kind}_rss"] = max(v[1] for v in values)
        row[f"{kind}_cpu"] = statistics.median(v[2] for v in values)
        row[f"{kind}_pss"] = max(v[3] for v in values)
    row["ratio"] = row["cdk_s"] / row["plan_s"]
    if "cdk_alarms" in runs:
        row["cdk_alarms_resources"] = info_alarms.get("resources")
        row["ratio_alarms"] = row["cdk_alarms_s"] / row["plan_s"]
    return row


def check_pairs(workdir: str, repeats: int, small: int = 100, big: int = 500) -> list[tuple[float, float]]:
    """`bulkhead check` of the N=small and N=big plans (written by `measure`), run back to back
    `repeats` times: (wall s small, wall s big) per pair. The goal's ratio is the median of the
    pairs' ratios: the rows time each N minutes apart, and this shared machine's speed drifts by
    more than the goal's margin in that time (one run: t(500)/t(100) 3.83 and 5.54 from the rows of
    two runs an hour apart)."""
    pairs = []
    for _ in range(repeats):
        times = [timed_process([sys.executable, "-m", "bulkhead", "check", os.path.join(workdir, f"plan-{n}.json")],
                               ROOT)[0] for n in (small, big)]
        pairs.append((times[0], times[1]))
    return pairs


def goals(rows: list[dict], pairs: list[tuple[float, float]] | None = None) -> list[tuple[str, str, bool]]:
    out = []
    for r in rows:
        out.append((f"plan at least {GOALS['plan_vs_cdk']}x faster than CDK synth at N={r['n']}",
                    f"{r['ratio']:.2f}x", r["ratio"] >= GOALS["plan_vs_cdk"]))
    by_n = {r["n"]: r for r in rows}
    if GOALS["rss_at"] in by_n:
        r = by_n[GOALS["rss_at"]]
        # The process tree's PSS sum, the same method for node: RSS sums count a page shared by a
        # forked worker and its parent twice (bench/README.md "Memory"). The RSS sums are printed too.
        out.append((f"plan peak memory (PSS sum of the process tree) <= CDK's at N={GOALS['rss_at']}",
                    f"{r['plan_pss']:.0f} vs {r['cdk_pss']:.0f} MiB (RSS sums {r['plan_rss']:.0f} vs {r['cdk_rss']:.0f})",
                    r["plan_pss"] <= r["cdk_pss"]))
    if pairs:
        lin = statistics.median(b / a for a, b in pairs)
        rows_lin = by_n[500]["check_s"] / by_n[100]["check_s"]
        out.append((f"check t(500)/t(100) <= {GOALS['check_linear_500_100']} (whole processes, median of "
                    f"{len(pairs)} back-to-back pairs)", f"{lin:.2f} (from the rows' medians: {rows_lin:.2f})",
                    lin <= GOALS["check_linear_500_100"]))
    return out


def render(rows: list[dict], results: list) -> str:
    lines = ["| N | resources (bulkhead / CDK) | bulkhead plan s | CPU s | peak PSS MiB | peak RSS MiB | "
             "CDK `node app.js` s | CPU s | peak PSS MiB | peak RSS MiB | CDK / bulkhead | check s | check RSS MiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['resources']} / {r['cdk_resources']} | {r['plan_s']:.2f} | {r['plan_cpu']:.1f} | "
                     f"{r['plan_pss']:.0f} | {r['plan_rss']:.0f} | {r['cdk_s']:.2f} | {r['cdk_cpu']:.1f} | "
                     f"{r['cdk_pss']:.0f} | {r['cdk_rss']:.0f} | {r['ratio']:.2f} | {r['check_s']:.2f} | {r['check_rss']:.0f} |")
    if any("cdk_alarms_s" in r for r in rows):
        lines += ["", "CDK app with issue 24's alarms, SNS topic and event subscription (same runs, interleaved):", "",
                  "| N | CDK resources | CDK s | CPU s | peak RSS MiB | CDK / bulkhead |", "|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['n']} | {r['cdk_alarms_resources']} | {r['cdk_alarms_s']:.2f} | {r['cdk_alarms_cpu']:.1f} | "
                  f"{r['cdk_alarms_rss']:.0f} | {r['ratio_alarms']:.2f} |" for r in rows if "cdk_alarms_s" in r]
    lines += ["", "| goal | measured | |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'PASS' if ok else 'FAIL'} |" for name, value, ok in results]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ns", default=",".join(map(str, NS)), help="comma-separated N (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    parser.add_argument("--alarms", choices=("off", "on", "both"), default="on",
                        help="the CDK app with issue 24's alarms, SNS topic and RDS event subscription (bulkhead's "
                             "prod stack has them: the same constructs per database); off = without them; both = "
                             "run the app both ways, interleaved, and print both ratios (default %(default)s)")
    parser.add_argument("--jobs", help="pass --jobs to bulkhead plan (default: its own choice)")
    args = parser.parse_args()
    ensure_cdk()
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bulkhead-peer-") as workdir:
        for n in (int(x) for x in args.ns.split(",")):
            row = measure(n, args.repeats, workdir, alarms=args.alarms, jobs=args.jobs)
            rows.append(row)
            print(f"N={n:4}: plan {row['plan_s']:6.2f} s {row['plan_cpu']:5.1f} CPU s PSS {row['plan_pss']:5.0f} "
                  f"RSS {row['plan_rss']:5.0f} MiB | CDK {row['cdk_s']:6.2f} s {row['cdk_cpu']:5.1f} CPU s PSS "
                  f"{row['cdk_pss']:5.0f} RSS {row['cdk_rss']:5.0f} MiB | x{row['ratio']:.2f} | check {row['check_s']:5.2f} s "
                  f"| load {os.getloadavg()[0]:.1f}",
                  file=sys.stderr, flush=True)
        # check's linearity from back-to-back pairs (check_pairs), at least 5 of them (~3 s each).
        pairs = check_pairs(workdir, max(args.repeats, 5)) if {100, 500} <= {r["n"] for r in rows} else []
    results = goals(rows, pairs)
    with open(os.path.join(args.out, "peer.json"), "w", encoding="utf-8") as fh:
        json.dump({"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "load": os.getloadavg(),
                   "alarms": args.alarms, "jobs": args.jobs, "rows": rows, "check_pairs": pairs,
                   "goals": results, "seconds": time.perf_counter() - started}, fh, indent=1)
    print(render(rows, results))
    print(f"\npeer run {time.perf_counter() - started:.0f} s; load average at the end {os.getloadavg()}; "
          f"CDK app alarms: {args.alarms}")
    return 0 if all(ok for _, _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
