"""Shared fixtures: run the real `__main__.py` under the recording mock runtime."""

from __future__ import annotations

import copy
import os
import sys
from typing import Any, Callable, Optional

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bulkhead.mock_runtime import ProgramRun, run_program, to_stack_export  # noqa: E402
from bulkhead.stack_config import load_stack_config  # noqa: E402


def stack_config(stack: str) -> dict[str, Any]:
    """Full-key config of a repo stack (Pulumi.yaml defaults + Pulumi.<stack>.yaml)."""
    return load_stack_config(ROOT, stack)


def run_stack(stack: str, config: Optional[dict[str, Any]] = None,
              edit: Optional[Callable[[dict], None]] = None, stack_name: Optional[str] = None) -> ProgramRun:
    """Run __main__.py fresh for `stack` (or `config`), after `edit(config)` if given.

    Raises the program's error, so a test sees a failed run as a failure.
    """
    config = copy.deepcopy(config if config is not None else stack_config(stack))
    if edit:
        edit(config)
    run = run_program(ROOT, stack_name or stack, config)
    if run.error is not None:
        raise run.error
    return run


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
