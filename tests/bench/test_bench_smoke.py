"""`make bench` keeps working: the whole bench at its smallest N (bench/run.py --smoke).

Nothing else runs the bench, and it broke silently once (its docker catalogue fell
foul of the connection-budget rule and the run ended in a traceback). The smoke run
takes every step the full run takes (catalogues, plan and SDK floor in a fresh
process per platform, synthesised check plans, the plot), one repeat, no goals.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_smoke_run(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "run.py"), "--smoke", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    assert "smoke run: every step ran" in out.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert {p: len(rows) for p, rows in results["plan"].items()} == {"aws": 1, "docker": 1}
    # The synthesised check plans pass the pack as the real plan does (bench/synth.py clones cleanly).
    assert [r["violations"] for r in results["check"]] == [0, 0]
    assert (tmp_path / "scaling.png").stat().st_size > 0
