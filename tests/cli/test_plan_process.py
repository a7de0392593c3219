"""`python -m bulkhead plan` as a whole process: the plan it writes before leaving without
teardown (bulkhead/__main__.py, os._exit after flush and fsync) is complete and the
same, byte for byte, for the same catalogue: run to run, and as `main()` writes it
in-process with a normal interpreter."""

from __future__ import annotations

import os
import subprocess
import sys

from bulkhead.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bulkhead", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_plan_process_writes_the_same_plan_as_in_process(tmp_path, capsys):
    first, second, inproc = (tmp_path / n for n in ("first.json", "second.json", "inproc.json"))
    for out in (first, second):
        run = _cli("plan", "--stack", "prod", "--out", str(out))
        assert run.returncode == 0, run.stderr[-3000:]
        assert "stack prod: 3 databases" in run.stdout  # stdout flushed before the process left
        assert "plan written to" in run.stderr
    assert main(["plan", "--stack", "prod", "--out", str(inproc)]) == 0
    capsys.readouterr()
    data = first.read_bytes()
    assert data.endswith(b"}\n") and len(data) > 100_000
    assert data == second.read_bytes() == inproc.read_bytes()


def test_cli_exit_codes_pass_through_without_teardown(tmp_path):
    usage = _cli("plan")  # argparse: --stack is required
    assert usage.returncode == 2 and "--stack" in usage.stderr
    (tmp_path / "Pulumi.yaml").write_text((open(os.path.join(ROOT, "Pulumi.yaml")).read()))
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  bulkhead:platform: nowhere\n")
    bad = _cli("plan", "--stack", "bad", "--project-dir", str(tmp_path))
    assert bad.returncode == 2, bad.stderr[-2000:]
    assert "error:" in bad.stderr and "Traceback" not in bad.stderr
