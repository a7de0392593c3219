"""Shared fixtures: run the real `__main__.py` under the recording mock runtime."""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bulkhead.offline.mock_runtime import ProgramRun, to_stack_export  # noqa: E402
from tests.support.program import run_stack  # noqa: E402


@pytest.fixture(scope="session")
def dev_run() -> ProgramRun:
    return run_stack("dev")


@pytest.fixture(scope="session")
def dev_export(dev_run) -> dict:
    return to_stack_export(dev_run)


@pytest.fixture(scope="session")
def prod_run() -> ProgramRun:
    return run_stack("prod")


@pytest.fixture(scope="session")
def prod_export(prod_run) -> dict:
    return to_stack_export(prod_run)


def pytest_terminal_summary(terminalreporter):
    """The policy pack's mutation kill rate, counted on the controller so it shows in CI
    logs with xdist too (a worker's own output is not shown)."""
    reports = [
        r
        for key in ("passed", "failed")
        for r in terminalreporter.stats.get(key, [])
        if getattr(r, "when", "") == "call" and "test_policy_mutations.py::test_mutation_is_caught[" in r.nodeid
    ]
    if reports:
        killed = sum(1 for r in reports if r.passed)
        terminalreporter.write_line(f"mutation kill rate: {killed}/{len(reports)}")
