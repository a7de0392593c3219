"""`plan` warns about a Docker Engine below the minimum when one answers (issue 22, moby#45610)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bulkhead.engine_check import MIN_ENGINE_MAJOR, engine_warning
from tests.support.program import ROOT


@pytest.mark.parametrize("version, warns", [("20.10.24+dfsg1", True), ("27.5.1", True), ("28.0.0", False),
                                            ("29.1.2", False), (None, False), ("", False)])
def test_engine_warning(version, warns) -> None:
    warning = engine_warning(version)
    assert bool(warning) is warns
    if warns:
        assert version in warning and "moby/moby#45610" in warning and f"upgrade Docker to {MIN_ENGINE_MAJOR}" in warning


def _plan(tmp_path: Path, docker_answers: str | None) -> subprocess.CompletedProcess:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    if docker_answers is not None:  # a fake `docker` CLI: the engine answers with this version
        fake = bindir / "docker"
        fake.write_text(f"#!/bin/sh\necho '{docker_answers}'\n")
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}:{os.path.dirname(sys.executable)}:/usr/bin:/bin"}
    if docker_answers is None:
        env["PATH"] = f"{bindir}:{os.path.dirname(sys.executable)}"  # no docker at all
    return subprocess.run([sys.executable, "-m", "bulkhead", "plan", "--stack", "dev", "--out", str(tmp_path / "p.json")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_plan_warns_on_an_old_engine_and_not_otherwise(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    old = _plan(tmp_path / "old", "20.10.24")
    assert old.returncode == 0, old.stderr
    assert "warning: Docker Engine 20.10.24 is below 28" in old.stderr
    (tmp_path / "new").mkdir(), (tmp_path / "none").mkdir()
    new = _plan(tmp_path / "new", "28.1.1")
    assert new.returncode == 0 and "Docker Engine" not in new.stderr, new.stderr
    none = _plan(tmp_path / "none", None)
    assert none.returncode == 0 and "Docker Engine" not in none.stderr, none.stderr
