"""What the AWS conformance check (tests/cfn) costs: translation and cfn-lint per plan.

    .venv/bin/python bench/cfn_check.py

Prints, per stack of the conformance test, the resources checked, the CPU time to plan
the program under mocks (paid by other tests too), to translate the plan and to run
cfn-lint (with the API rules) on its templates (median of 3 runs); then, per mapped
resource type, how many of pulumi-aws's inputs the translator maps.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from bulkhead.offline.mock_runtime import to_stack_export  # noqa: E402
from tests.support.cfn.api_rules import check_template  # noqa: E402
from tests.support.cfn.lint import lint_template, templates_of  # noqa: E402
from tests.support.cfn.mappings import coverage  # noqa: E402
from tests.support.cfn.stacks import REGION, STACKS  # noqa: E402


def _median(fn, runs: int = 3) -> tuple[float, object]:
    # CPU time of this process: the machine is shared, so wall time says more about the neighbours.
    times, result = [], None
    for _ in range(runs):
        start = time.process_time()
        result = fn()
        times.append(time.process_time() - start)
    return statistics.median(times), result


def main() -> None:
    print(f"{'stack':<15} {'resources':>9} {'plan cpu s':>10} {'translate cpu s':>15} {'cfn-lint cpu s':>14}")
    total = 0.0
    for name, build in STACKS.items():
        plan_s, plan = _median(lambda build=build: to_stack_export(build()), runs=1)
        translate_s, templates = _median(lambda plan=plan: templates_of(plan, REGION))
        lint_s, _ = _median(lambda templates=templates: [f for t in templates for f in lint_template(t) + check_template(t)])
        count = sum(len(t.body["Resources"]) for t in templates)
        total += translate_s + lint_s
        print(f"{name:<15} {count:>9} {plan_s:>10.2f} {translate_s:>15.3f} {lint_s:>14.2f}")
    print(f"translate + cfn-lint, all four stacks: {total:.1f} s CPU")
    print()
    print("pulumi-aws inputs per type (SDK in .venv): mapped to CloudFormation / Pulumi-only / no CloudFormation property / unmapped")
    for typ, c in coverage().items():
        print(f"  {typ:<62} {c['inputs']:>3} inputs: {c['mapped']:>3} / {c['pulumi_only']:>2} / {c['no_cfn_property']:>2} / {c['unmapped']:>2}")


if __name__ == "__main__":
    main()
