"""`check` is linear in the number of databases (issue 23, bench/README.md "check").

Timing is machine noise on a shared 2-core machine; the number of Python function
calls `evaluate` makes is not. A rule that scans every instance, log group, alias or
restore-testing selection once per database makes the count grow with N squared:
before the reverse indexes of `Index` (referrers, dependents, named) and the
restore-testing coverage computed once per stack, 4x the databases cost 4.19x the
calls here (3.78x after: the per-stack part is fixed), and the gap widens with N
(t(500)/t(100) was 6 in the bench). The count is deterministic for a given plan.
"""

from __future__ import annotations

import cProfile
import pstats

from bench.synth import synthesise
from bulkhead.commands.check import defaults_for_stack, evaluate, load_pack, merge_configs


def _calls(export: dict, config: dict, pack) -> int:
    profile = cProfile.Profile()
    profile.enable()
    result = evaluate(export, config, pack)
    profile.disable()
    assert result.violations == []  # the synthesised plans pass as the real one does
    return pstats.Stats(profile).total_calls


def test_check_calls_grow_linearly_with_databases(prod_export):
    pack = load_pack()
    config = merge_configs(defaults_for_stack("prod", pack), {})
    evaluate(prod_export, config, pack)  # warm-up: first-call caches are not per-database work
    small = _calls(synthesise(prod_export, 3), config, pack)
    large = _calls(synthesise(prod_export, 12), config, pack)
    assert large / small <= 4.0, f"4x the databases cost {large / small:.2f}x the calls ({small} -> {large})"


def _calls_by_function(export: dict, config: dict, pack) -> dict:
    profile = cProfile.Profile()
    profile.enable()
    evaluate(export, config, pack)
    profile.disable()
    return {f"{fn[0]}:{fn[1]}({fn[2]})": value[1] for fn, value in pstats.Stats(profile).stats.items()}


def test_no_function_is_called_superlinearly(prod_export):
    """The total above hides a quadratic rule while the per-stack part is large: per function,
    4x the databases must not cost more than 4.5x the calls. `function-log-groups-managed`
    scanned every log group per Lambda function (Res.get 6.8x the calls here for 4x the databases;
    t(5000)/t(1000) = 9.2 in the bench) until it used Index.named."""
    pack = load_pack()
    config = merge_configs(defaults_for_stack("prod", pack), {})
    evaluate(prod_export, config, pack)
    small = _calls_by_function(synthesise(prod_export, 3), config, pack)
    large = _calls_by_function(synthesise(prod_export, 12), config, pack)
    grown = {f: (small.get(f, 0), n) for f, n in large.items() if n >= 2000 and n > 4.5 * small.get(f, 0)}
    assert not grown, f"called more than 4.5x as often for 4x the databases: {grown}"


# --- p-sdk: each resource policy is handed only the types it declares (bulkhead/commands/check.py) ---

import copy  # noqa: E402

import pytest  # noqa: E402

from tests.support.mutations import MUTATIONS, PROD_CONFIG  # noqa: E402


def _every_type(monkeypatch, pack) -> None:
    """As before the dispatch: every resource policy sees every resource (its validate returns at
    once for a type it does not declare)."""
    for policy in pack.ALL_POLICIES:
        if getattr(policy, "resource_types", ()):
            monkeypatch.setattr(policy, "resource_types", (), raising=False)


@pytest.mark.parametrize("mutation_id,stack,mutate,policy,extra", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_type_dispatch_reports_what_every_type_reports(mutation_id, stack, mutate, policy, extra,
                                                        prod_export, dev_export, monkeypatch):
    export = copy.deepcopy(prod_export if stack == "prod" else dev_export)
    export["_prod"] = prod_export  # as tests/policies/test_policy_mutations.py hands it
    mutate(export)
    del export["_prod"]
    config = dict(PROD_CONFIG) if stack == "prod" else {}
    config.update(extra or {})
    pack = load_pack()
    dispatched = evaluate(export, config, pack)
    _every_type(monkeypatch, pack)
    assert evaluate(export, config, pack) == dispatched  # the same violations, in the same order
    assert dispatched.violations  # the mutation is caught (a comparison of two empty lists proves little)


def test_type_dispatch_is_on(prod_export, monkeypatch):
    pack = load_pack()
    config = merge_configs(defaults_for_stack("prod", pack), {})
    evaluate(prod_export, config, pack)
    dispatched = _calls(prod_export, config, pack)
    _every_type(monkeypatch, pack)
    every = _calls(prod_export, config, pack)
    assert dispatched < 0.9 * every, (dispatched, every)  # 136k vs 168k calls on the prod example
