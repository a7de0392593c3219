"""The prod plans the conformance check lints: the example stack, the same with
`bulkhead:network`, a generated catalogue of 20 databases, and the longest names allowed."""

from __future__ import annotations

from bench.catalogues import aws_config
from tests.support.program import run_stack, shared_run, stack_config

REGION = stack_config("prod")["aws:region"]

# The longest names the catalogue allows: database, owner and tier names of 63 characters
# (catalog.NAME_RE / OWNER_RE), five replicas each, and a long stack name.
LONG_DB = "d" + "b_" * 31
LONG_DB_2 = "e" + "x" * 62
LONG_OWNER = "o" + "w-" * 30 + "ab"
LONG_TIER = "t" + "i" * 62
LONG_STACK = "production-" + "s" * 29


def _maximal_config() -> dict:
    cfg = stack_config("prod")
    cfg["bulkhead:databases"] = {
        LONG_DB: {"owner": LONG_OWNER, "tier": LONG_TIER, "replicas": 5, "instance_class": "db.r6g.large"},
        LONG_DB_2: {"owner": LONG_OWNER, "replicas": 5},
    }
    cfg["bulkhead:backup_tiers"] = {
        LONG_TIER: {"schedule": "cron(0 * * * ? *)", "retention_days": 30, "pitr_days": 14, "copy_to_dr": True},
    }
    return cfg


def _network_config() -> dict:
    cfg = stack_config("prod")
    cfg["bulkhead:network"] = {"vpc_id": "vpc-0abc1234", "subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222"]}
    return cfg


STACKS = {
    "prod": lambda: shared_run("prod"),
    "network": lambda: run_stack("prod", config=_network_config()),
    "generated-20": lambda: run_stack("prod", config=aws_config(20)),
    "maximal-names": lambda: run_stack("prod", config=_maximal_config(), stack_name=LONG_STACK),
    # `proxy: true` (issue 24): the RDS Proxy, its target group and target, its groups and role.
    "proxy": lambda: run_stack("prod", edit=lambda c: c["bulkhead:databases"]["worker"].__setitem__("proxy", True)),
}
