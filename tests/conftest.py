"""Shared fixtures: run the real `__main__.py` under the recording mock runtime."""

from __future__ import annotations

import gc
import logging
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bulkhead.offline.mock_runtime import ProgramRun, to_stack_export  # noqa: E402
from tests.support import balance  # noqa: E402
from tests.support.program import shared_run  # noqa: E402


@pytest.fixture(scope="session")
def dev_run() -> ProgramRun:
    return shared_run("dev")


@pytest.fixture(scope="session")
def dev_export(dev_run) -> dict:
    return to_stack_export(dev_run)


@pytest.fixture(scope="session")
def prod_run() -> ProgramRun:
    return shared_run("prod")


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


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    """Collect once, then freeze what is left, before an xdist worker reports it is finished.

    After a worker sends `workerfinished` (xdist's own pytest_sessionfinish wrapper, which runs
    after this), the controller closes its gateway and execnet gives the worker's main thread
    5 seconds before it SIGINTs it (execnet gateway_base.py, WorkerGateway._terminate_execution).
    In those seconds pytest runs a full gc.collect() twice (_pytest/unraisableexception.py,
    pytest_unconfigure and cleanup), over a heap of planned stacks and the pulumi_aws modules:
    seconds on a loaded 2-core machine. The SIGINT then lands inside a finalizer the collection
    runs, and pytest prints a PytestUnraisableExceptionWarning (KeyboardInterrupt) traceback for
    a passing run. Collected here (trylast: after the session fixtures are torn down; a finalizer's
    error still reaches pytest's unraisable hook) and frozen, those two passes cost nothing.

    The refused runs of tests/program/test_example_service.py and test_consumer_start.py (a
    RunError the tests assert) leave failed Output futures nobody awaits; collected here, asyncio
    would log each with a traceback ("Future exception was never retrieved": 74 of them at the end
    of a run) as tests/program/test_example_service.py's _quiet_failed_outputs explains, so the
    asyncio logger is muted for this one collection.
    """
    log = logging.getLogger("asyncio")
    was = log.disabled
    log.disabled = True
    try:
        gc.collect()
    finally:
        log.disabled = was
    gc.freeze()


def pytest_collection_modifyitems(items):
    """Longest files first, so `-n 2 --dist loadfile` ends with short files; the slow suites marked
    `slow` (make test-slow). tests/support/balance.py."""
    balance.mark_slow(items)
    balance.order_items(items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """--dist loadfile, balanced: files longest first, the longest split by function (balance.py)."""
    if config.getvalue("dist") == "loadfile":
        return balance.make_scheduler(config, log)
    return None
