"""Mutation tests: one unsafe change at a time to the compliant prod and dev plans.

Each mutation must be caught by the policy meant for it; the unmutated plans by none.
The kill rate is printed at the end (and written to the terminal, so it shows in CI logs).
"""

from __future__ import annotations

import copy
import sys

import pytest

from bulkhead.commands.check import evaluate, load_pack

from tests.support.mutations import MUTATIONS, PROD_CONFIG, show_secrets_export  # noqa: F401

RESULTS: dict[str, bool] = {}


@pytest.fixture(scope="module")
def plans(prod_export, dev_export):
    return {"prod": prod_export, "dev": dev_export}


def _evaluate(export: dict, stack: str, extra: dict | None):
    config = dict(PROD_CONFIG) if stack == "prod" else {}
    config.update(extra or {})
    return evaluate(export, config)


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_unmutated_plan_has_no_violations(plans, stack):
    result = _evaluate(plans[stack], stack, None)
    assert [(v.policy, v.urn, v.message) for v in result.violations] == []
    assert result.resources > 20 and result.policies == len(load_pack().ALL_POLICIES)


@pytest.mark.parametrize("mutation_id,stack,mutate,policy,extra", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_mutation_is_caught(plans, mutation_id, stack, mutate, policy, extra):
    mutated = copy.deepcopy(plans[stack])
    mutated["_prod"] = plans["prod"]
    mutate(mutated)
    del mutated["_prod"]
    result = _evaluate(mutated, stack, extra)
    caught = {v.policy for v in result.violations if not v.message.startswith("can't run")}
    RESULTS[mutation_id] = policy in caught
    assert policy in caught, f"{mutation_id}: expected {policy}, got {sorted(caught)}"
    for v in result.violations:
        if v.policy == policy:
            assert v.urn and v.message.endswith(".") and v.message[0].isupper(), v


def test_mutation_kill_rate(capsys):
    """Runs last in this module: print the kill rate so it shows in CI logs."""
    assert len(MUTATIONS) >= 40
    assert len({m[0] for m in MUTATIONS}) == len(MUTATIONS)
    killed, total = sum(RESULTS.values()), len(RESULTS)
    line = f"mutation kill rate: {killed}/{total}"
    with capsys.disabled():  # straight to the terminal, so it shows in CI logs even with -q
        sys.stdout.write(f"\n{line}\n")
    if total == len(MUTATIONS):
        assert killed == total
