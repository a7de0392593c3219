"""Balance `pytest -n 2 --dist loadfile` (make test) over the two workers.

xdist's loadfile hands out whole files in collection order (or by test count), and a worker
keeps what it was handed: with a few files of a minute or more among ~90 files, one worker
often still runs a long file when the other has finished. Two changes, no test changes:

- the files run longest first (LPT order), by the seconds measured per file in SECONDS; a file
  not listed (a new one) comes after them, in collection order;
- each file in SPLIT is handed out test by test instead of whole, so its tests spread over both
  workers. Only files whose tests each build their own inputs are listed: a module fixture is
  then built at most once per worker.

The figures are per-file totals of an idle `pytest -n 2 --dist loadfile -m "not docker"`
(`--junitxml`, summed by file); stale figures only cost balance, never a test.
"""

from __future__ import annotations

# file -> seconds: per-file totals of a `-n 2 --dist loadfile` run on main (c8c0c66) under load,
# scaled to the idle run's 402 s x 2 workers; stale figures only cost balance, never a test.
SECONDS: dict[str, float] = {
    "tests/cli/test_audit.py": 137,
    "tests/postgres/test_pg_settings.py": 112,
    "tests/program/test_cfn_conformance.py": 111,
    "tests/policies/test_policy_engine.py": 51,
    "tests/postgres/test_dev_start_wrapper.py": 39,
    "tests/program/test_prod_stack.py": 36,
    "tests/postgres/test_dev_server_flags.py": 31,
    "tests/postgres/test_catalog_params.py": 25,
    "tests/catalogue/test_catalog.py": 24,
    "tests/postgres/test_operate.py": 21,
    "tests/postgres/test_bootstrap_handler.py": 19,
    "tests/postgres/test_postgres_isolation.py": 19,
    "tests/postgres/test_split.py": 17,
    "tests/postgres/test_operator_safety.py": 15,
    "tests/program/test_day2_changes.py": 15,
    "tests/bench/test_bench_smoke.py": 12,
    "tests/program/test_cfn_mappings.py": 11,
    "tests/postgres/test_private_checkout.py": 10,
    "tests/program/test_dev_stack.py": 10,
    "tests/cli/test_env_dsn.py": 10,
    "tests/program/test_prod_boundary.py": 10,
    "tests/program/test_example_service.py": 9,
    "tests/program/test_deploy_sequences.py": 8,
    "tests/policies/test_policy_mutations.py": 7,
    "tests/cli/test_plan_process.py": 7,
    "tests/postgres/test_role_sql.py": 6,
    "tests/cli/test_check_cli.py": 5,
    "tests/cli/test_engine_check.py": 5,
    "tests/program/test_prod_baseline.py": 4,
    "tests/postgres/test_token_hooks.py": 35,
    # this round's files, estimated from their runs on the branches (under load, scaled): a long file
    # not listed would start last and keep one worker busy alone.
    "tests/program/test_parallel_plan.py": 120,
    "tests/postgres/test_tenant_metadata.py": 45,
    "tests/program/test_operations.py": 10,
    "tests/program/test_restore_from.py": 8,
    "tests/program/test_prod_proxy.py": 8,
    "tests/program/test_outputs_described.py": 8,
}

# files handed out test by test, not whole: each test builds its own inputs (a server of one major,
# one stack's cfn-lint run, one moto account), and a few tests of minutes each would otherwise
# keep one worker busy long after the other has finished.
SPLIT: frozenset[str] = frozenset({
    "tests/cli/test_audit.py",
    "tests/postgres/test_pg_settings.py",
    "tests/program/test_cfn_conformance.py",
})

# the suites of `make test-slow` (marker `slow`), out of `make test` to keep it under 5 minutes
# idle; CI (.ci/run) runs both. Together about 45% of the main run's time before the split; then
# the serial-vs-parallel plan comparisons (N=50 catalogues planned three ways) and the tenant
# metadata checks (a shared server of each of 13, 15 and 17), handed out whole.
SLOW: frozenset[str] = SPLIT | {"tests/program/test_parallel_plan.py", "tests/postgres/test_tenant_metadata.py",
                                "tests/program/test_sdk_fast_path_plans.py"}  # p-sdk: N=50 plans, fast path on/off


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def mark_slow(items: list) -> None:
    import pytest

    for item in items:
        if file_of(item.nodeid) in SLOW:
            item.add_marker(pytest.mark.slow)


def order_items(items: list) -> None:
    """Longest files first (stable: a file's own tests keep their order)."""
    items.sort(key=lambda item: -SECONDS.get(file_of(item.nodeid), 0.0))


def scope_of(nodeid: str) -> str:
    """The work unit of a test: its file, or for a SPLIT file the test itself."""
    return nodeid if file_of(nodeid) in SPLIT else file_of(nodeid)


def make_scheduler(config, log):
    """A loadfile scheduler that takes the collection order as it is (already longest first)
    and splits SPLIT files test by test."""
    from xdist.scheduler import LoadFileScheduling

    class Balanced(LoadFileScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            # xdist >= 3.7 reorders work units by test count by default; our order is by time.
            if hasattr(config.option, "loadscopereorder"):
                config.option.loadscopereorder = False

        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return Balanced(config, log)
