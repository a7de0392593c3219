"""bulkhead `plan` against the AWS CDK app a team would otherwise write (bench/peer/app.js).

    python bench/peer.py                      # N = 10, 50, 100, 200, 500, 3 runs each
    python bench/peer.py --ns 10,50 --repeats 1

Whole processes, interleaved (bulkhead plan, node app.js, bulkhead check, next repeat),
so both see the same machine noise: `python -m bulkhead plan` of the bench's aws
catalogue (bench/catalogues.py: N databases, replicas k % 3, tiers mixed) against
`node app.js N` (synth to a temporary cdk.out), and `python -m bulkhead check` of the
plan. Prints medians, peak RSS (each process's own, from wait4) and the ratios, writes
bench/out/peer.json, and exits 1 if a goal is missed. Installs bench/peer's pinned
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


def timed_process(cmd: list[str], cwd: str) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB of that process alone, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the maximum of all so far).
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def measure(n: int, repeats: int, workdir: str) -> dict:
    project = project_for(n, workdir)
    plan_path = os.path.join(workdir, f"plan-{n}.json")
    runs: dict[str, list] = {"plan": [], "cdk": [], "check": []}
    info = {}
    for _ in range(repeats):
        runs["plan"].append(timed_process([sys.executable, "-m", "bulkhead", "plan", "--stack", "peer",
                                           "--project-dir", project, "--out", plan_path], ROOT)[:2])
        out_dir = os.path.join(workdir, f"cdk.out-{n}")
        wall, rss, out = timed_process(["node", os.path.join(PEER, "app.js"), str(n), out_dir], PEER)
        runs["cdk"].append((wall, rss))
        info = json.loads(out.strip().splitlines()[-1])
        shutil.rmtree(out_dir, ignore_errors=True)
        runs["check"].append(timed_process([sys.executable, "-m", "bulkhead", "check", plan_path], ROOT)[:2])
    with open(plan_path, encoding="utf-8") as fh:
        resources = sum(1 for r in json.load(fh)["deployment"]["resources"] if r.get("custom"))
    row = {"n": n, "repeats": repeats, "resources": resources, "cdk_resources": info.get("resources"),
           "cdk_stacks": info.get("stacks"), "runs": runs}
    for kind, values in runs.items():
        row[f"{kind}_s"] = statistics.median(v[0] for v in values)
        row[f"{kind}_rss"] = max(v[1] for v in values)
    row["ratio"] = row["cdk_s"] / row["plan_s"]
    return row


def goals(rows: list[dict]) -> list[tuple[str, str, bool]]:
    out = []
    for r in rows:
        out.append((f"plan at least {GOALS['plan_vs_cdk']}x faster than CDK synth at N={r['n']}",
                    f"{r['ratio']:.2f}x", r["ratio"] >= GOALS["plan_vs_cdk"]))
    by_n = {r["n"]: r for r in rows}
    if GOALS["rss_at"] in by_n:
        r = by_n[GOALS["rss_at"]]
        out.append((f"plan peak RSS <= CDK's at N={GOALS['rss_at']}", f"{r['plan_rss']:.0f} vs {r['cdk_rss']:.0f} MiB",
                    r["plan_rss"] <= r["cdk_rss"]))
    if 100 in by_n and 500 in by_n:
        lin = by_n[500]["check_s"] / by_n[100]["check_s"]
        out.append((f"check t(500)/t(100) <= {GOALS['check_linear_500_100']} (whole processes)", f"{lin:.2f}",
                    lin <= GOALS["check_linear_500_100"]))
    return out


def render(rows: list[dict], results: list) -> str:
    lines = ["| N | resources (bulkhead / CDK) | bulkhead plan s | peak RSS MiB | CDK `node app.js` s | peak RSS MiB | "
             "CDK / bulkhead | check s | check RSS MiB |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['resources']} / {r['cdk_resources']} | {r['plan_s']:.2f} | {r['plan_rss']:.0f} | "
                     f"{r['cdk_s']:.2f} | {r['cdk_rss']:.0f} | {r['ratio']:.2f} | {r['check_s']:.2f} | "
                     f"{r['check_rss']:.0f} |")
    lines += ["", "| goal | measured | |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {'PASS' if ok else 'FAIL'} |" for name, value, ok in results]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ns", default=",".join(map(str, NS)), help="comma-separated N (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "out"))
    args = parser.parse_args()
    ensure_cdk()
    os.makedirs(args.out, exist_ok=True)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bulkhead-peer-") as workdir:
        for n in (int(x) for x in args.ns.split(",")):
            row = measure(n, args.repeats, workdir)
            rows.append(row)
            print(f"N={n:4}: plan {row['plan_s']:6.2f} s {row['plan_rss']:5.0f} MiB | CDK {row['cdk_s']:6.2f} s "
                  f"{row['cdk_rss']:5.0f} MiB | x{row['ratio']:.2f} | check {row['check_s']:5.2f} s",
                  file=sys.stderr, flush=True)
    results = goals(rows)
    with open(os.path.join(args.out, "peer.json"), "w", encoding="utf-8") as fh:
        json.dump({"date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "rows": rows,
                   "goals": results, "seconds": time.perf_counter() - started}, fh, indent=1)
    print(render(rows, results))
    print(f"\npeer run {time.perf_counter() - started:.0f} s")
    return 0 if all(ok for _, _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
