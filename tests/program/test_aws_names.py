"""AWS names bulkhead derives from catalogue names stay within AWS's limits, and names that
already fit never change (a changed identifier would replace the resource)."""

from __future__ import annotations

import re

import pytest

from components.prod.naming import BACKUP_NAME_MAX, backup_name, fitted_name, replica_identifier
from tests.support.program import run_stack, stack_config

RDS_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")  # CreateDBInstance: letters, digits, single hyphens
BACKUP_VAULT = re.compile(r"^[a-zA-Z0-9\-_]{2,50}$")  # CreateBackupVault
BACKUP_NAME = re.compile(r"^[a-zA-Z0-9\-_.]{1,50}$")  # BackupRule.RuleName, BackupSelection.SelectionName


@pytest.mark.parametrize("name,limit,expected", [
    ("bulkhead-prod-primary", 50, "bulkhead-prod-primary"),
    ("a" * 50, 50, "a" * 50),
])
def test_a_name_that_fits_is_unchanged(name, limit, expected):
    assert fitted_name(name, limit) == expected


def test_a_long_name_is_cut_with_a_hash_of_the_whole():
    a, b = "x" * 60 + "-one", "x" * 60 + "-two"
    fa, fb = fitted_name(a, 50), fitted_name(b, 50)
    assert len(fa) == len(fb) == 50 and fa != fb
    assert fa == fitted_name(a, 50)  # deterministic: derived from the name only
    assert re.fullmatch(r"x{43}-[0-9a-f]{6}", fa)


@pytest.mark.parametrize("primary,index,expected", [
    ("prod-app", 1, "prod-app-replica-1"),
    ("p" * 53, 5, "p" * 53 + "-replica-5"),  # 63 exactly: unchanged
])
def test_replica_identifier_unchanged_when_it_fits(primary, index, expected):
    assert replica_identifier(primary, index) == expected


def test_replica_identifier_of_a_54_character_primary_fits_in_63():
    a, b = "p" * 53 + "a", "p" * 53 + "b"  # identifiers bulkhead makes (max 54) that differ at the end
    ra, rb = replica_identifier(a, 1), replica_identifier(b, 1)
    assert len(ra) == 63 and ra.endswith("-replica-1") and RDS_ID.match(ra)
    assert ra != rb


def test_backup_name_fits_and_keeps_short_names():
    assert backup_name("bulkhead", "prod", "critical") == "bulkhead-prod-critical"
    long = backup_name("bulkhead", "production-" + "s" * 29, "t" + "i" * 62)
    assert len(long) <= BACKUP_NAME_MAX and BACKUP_VAULT.match(long)


LONG_DB = "e" + "x" * 62
LONG_TIER = "t" + "i" * 62


def _maximal_run():
    cfg = stack_config("prod")
    cfg["bulkhead:databases"] = {LONG_DB: {"owner": "o" + "w-" * 30 + "ab", "tier": LONG_TIER, "replicas": 5}}
    cfg["bulkhead:backup_tiers"] = {LONG_TIER: {"schedule": "cron(0 * * * ? *)", "retention_days": 30, "pitr_days": 14,
                                                "copy_to_dr": True}}
    return run_stack("prod", config=cfg, stack_name="production-" + "s" * 29)


def test_program_names_stay_within_aws_limits_for_the_longest_catalogue_names():
    run = _maximal_run()
    instances = run.by_type("aws:rds/instance:Instance")
    assert len(instances) == 6
    for inst in instances:
        ident = inst.inputs["identifier"]
        assert len(ident) <= 63 and RDS_ID.match(ident), ident
    assert len({i.inputs["identifier"] for i in instances}) == 6
    for vault in run.by_type("aws:backup/vault:Vault"):
        assert BACKUP_VAULT.match(vault.inputs["name"]), vault.inputs["name"]
    for plan in run.by_type("aws:backup/plan:Plan"):
        assert BACKUP_NAME.match(plan.inputs["name"]), plan.inputs["name"]
        for rule in plan.inputs["rules"]:
            assert BACKUP_NAME.match(rule["ruleName"]), rule["ruleName"]
    for selection in run.by_type("aws:backup/selection:Selection"):
        assert BACKUP_NAME.match(selection.inputs["name"]), selection.inputs["name"]


def test_names_of_the_repo_prod_stack_are_the_ones_they_always_were(prod_run):
    assert sorted(v.inputs["name"] for v in prod_run.by_type("aws:backup/vault:Vault")) == ["bulkhead-prod-dr", "bulkhead-prod-primary"]
    plans = {p.inputs["name"]: [r["ruleName"] for r in p.inputs["rules"]] for p in prod_run.by_type("aws:backup/plan:Plan")}
    assert plans == {"bulkhead-prod-critical": ["critical-scheduled"], "bulkhead-prod-standard": ["standard-scheduled"]}
    replicas = sorted(i.inputs["identifier"] for i in prod_run.by_type("aws:rds/instance:Instance") if "replicateSourceDb" in i.inputs)
    assert replicas == ["prod-app-replica-1", "prod-auth-replica-1", "prod-auth-replica-2"]
