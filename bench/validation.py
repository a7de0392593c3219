"""What the settings/versions/pack validation adds to `bulkhead plan`.

    python bench/validation.py

For Pulumi.dev.yaml, Pulumi.prod.yaml and generated 200-database catalogues (docker
and aws, bench/catalogues.py), prints the plan time and what the validation this
branch added costs inside it:

- catalogue checks: `load_catalogue` as it is, minus `load_catalogue` with the added
  checks (`_check_settings`, `pack_agreement.check_stack`/`check_catalogue`) replaced
  by no-ops; counted twice, since a plan validates in the CLI and again in the program;
- the settings table's one-time cost: reading the JSON and building the settings of
  each major used (cold caches);
- the stack file: the strict YAML loader (duplicate keys, number texts) minus PyYAML's
  plain safe_load of the same text.

Medians of 11 (plan: of 5). The goal: the added time under 5% of plan time.
"""

from __future__ import annotations

import copy
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import yaml  # noqa: E402

from bench.catalogues import aws_config, docker_config  # noqa: E402
from bench.measure import plan  # noqa: E402
from bulkhead.offline import stack_config  # noqa: E402
from bulkhead.offline.stack_config import bulkhead_keys, load_stack_config  # noqa: E402
from components.catalogue import model as catalog  # noqa: E402
from components.catalogue import pack_agreement  # noqa: E402
from components.catalogue import settings as pg_settings  # noqa: E402

GOAL_PERCENT = 5.0


def median_time(fn, repeats: int = 11) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextmanager
def without_added_checks():
    saved = (catalog._check_settings, pack_agreement.check_stack, pack_agreement.check_catalogue)
    catalog._check_settings = lambda databases, servers, *_: (databases, servers)
    pack_agreement.check_stack = lambda *_: []
    pack_agreement.check_catalogue = lambda *_: ([], [])
    try:
        yield
    finally:
        catalog._check_settings, pack_agreement.check_stack, pack_agreement.check_catalogue = saved


def table_cold_cost(majors: set[int]) -> float:
    def cold():
        pg_settings._table.cache_clear()
        pg_settings.names.cache_clear()
        pg_settings.setting.cache_clear()
        pg_settings.resolve.cache_clear()
        for major in majors:
            pg_settings.names(major)
    return median_time(cold)


def yaml_cost(config: dict) -> float:
    """Strict loader minus plain safe_load, on this config written as a stack file."""
    text = yaml.safe_dump({"config": config}, sort_keys=False)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(text)
        path = fh.name
    try:
        strict = median_time(lambda: stack_config._load_yaml(path))
        plain = median_time(lambda: yaml.safe_load(open(path, encoding="utf-8").read()))
    finally:
        os.unlink(path)
    return strict - plain


def measure(label: str, stack: str, config: dict) -> dict:
    raw = bulkhead_keys(config)
    region = config.get("aws:region")
    full = median_time(lambda: catalog.load_catalogue(copy.deepcopy(raw), stack, region=region))
    with without_added_checks():
        bare = median_time(lambda: catalog.load_catalogue(copy.deepcopy(raw), stack, region=region))
    cat = catalog.load_catalogue(copy.deepcopy(raw), stack, region=region)
    majors = {d.major for d in cat.databases.values()} | {s.major for s in cat.servers.values()}
    added = 2 * max(full - bare, 0.0) + table_cold_cost(majors) + max(yaml_cost(config), 0.0)
    plan_s = median_time(lambda: plan(stack, copy.deepcopy(config)), repeats=5)
    return {"label": label, "databases": len(cat.databases), "plan_s": plan_s, "added_ms": added * 1000,
            "percent": 100 * added / plan_s}


def main() -> int:
    plan("dev", load_stack_config(ROOT, "dev"))  # warm-up: the SDK's imports
    rows = [
        measure("Pulumi.dev.yaml", "dev", load_stack_config(ROOT, "dev")),
        measure("Pulumi.prod.yaml", "prod", load_stack_config(ROOT, "prod")),
        measure("docker, 200 databases", "dev", docker_config(200)),
        measure("aws, 200 databases", "prod", aws_config(200)),
    ]
    print("| catalogue | databases | plan s | validation added ms | share of plan |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['label']} | {r['databases']} | {r['plan_s']:.2f} | {r['added_ms']:.1f} | {r['percent']:.2f}% |")
    worst = max(r["percent"] for r in rows)
    print(f"\nworst share {worst:.2f}% (goal: under {GOAL_PERCENT}%)")
    return 0 if worst < GOAL_PERCENT else 1


if __name__ == "__main__":
    sys.exit(main())
