"""The catalogue refuses what the default policy pack always refuses, in the pack's words.

A value the default pack's *mandatory* policies always refuse is a catalogue error at
plan time, so a user learns it from `plan` rather than from `check`; a value an
*advisory* policy flags is a warning `plan` prints. Each finding names the policy, its
enforcement level and its description (POLICY_TEXT, kept equal to the pack's by
tests/postgres/test_catalog_params.py), then the fix.

The thresholds are the pack's own: policies/bulkhead_policies/thresholds.py, loaded from
its file (it imports nothing), so the program needs neither pulumi_policy nor the pack.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Optional

_THRESHOLDS_FILE = Path(__file__).resolve().parents[2] / "policies" / "bulkhead_policies" / "thresholds.py"

# name -> (default enforcement, description): the pack's own text.
POLICY_TEXT: dict[str, tuple[str, str]] = {
    "rds-deletion-protection": ("mandatory", "RDS primaries have deletion protection on."),
    "rds-protected-resource": ("mandatory", "RDS primaries, KMS keys and backup vaults carry Pulumi's `protect` option."),
    "rds-backup-retention": ("mandatory", "RDS primaries keep automated backups (point-in-time recovery) at least as "
                                          "long as their tier requires."),
    "rds-in-backup-plan": ("mandatory", "Every RDS primary is selected by an AWS Backup plan that keeps recovery "
                                        "points as long as its tier requires."),
    "platform-matches-stack": ("mandatory", "A stack's databases live on the platform its name implies (prod: aws, "
                                            "dev: docker), on one platform only, and carry their own stack's "
                                            "bulkhead:stack tag."),
    "rds-multi-az": ("advisory", "RDS primaries run multi-AZ (advisory: a team may accept single-AZ for a cheap, "
                                 "rebuildable database)."),
    "rds-auto-minor-upgrade": ("advisory", "RDS instances take minor version upgrades in the maintenance window "
                                           "(advisory: some teams pin versions for change control)."),
    "dev-resource-limits": ("advisory", "Dev database containers have memory, swap and CPU limits (advisory)."),
    "dev-volume-retained": ("advisory", "Dev database data lives on a named Docker volume that `pulumi destroy` "
                                        "keeps (advisory)."),
}

_thresholds: Optional[ModuleType] = None


def thresholds() -> ModuleType:
    """The pack's thresholds module, loaded once from its file."""
    global _thresholds
    if _thresholds is None:
        spec = importlib.util.spec_from_file_location("_bulkhead_pack_thresholds", _THRESHOLDS_FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _thresholds = module
    return _thresholds


def _said(policy: str, what: str, fix: str) -> str:
    level, description = POLICY_TEXT[policy]
    return f"{what}, which policy {policy} ({level}) refuses: {description} {fix}"


def check_stack(stack: str, platform: str, path_of) -> list[tuple[str, str]]:
    """platform-matches-stack with the pack's default platformByStack: [(path, message)]."""
    expected = thresholds().expected_platform(stack)
    if expected and expected != platform:
        return [(path_of("platform"), _said(
            "platform-matches-stack", f"stack {stack} runs on {platform}",
            f"Set bulkhead:platform to {expected} in Pulumi.{stack}.yaml, or give the stack a name that does not "
            f"say {expected} (the pack's platformByStack config decides which names do)."))]
    return []


def check_catalogue(platform: str, databases: dict, servers: dict, tiers: dict, protect: bool,
                    keep_volumes: bool, path_of) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(errors, warnings) as [(path, message)] for the validated catalogue parts."""
    t = thresholds()
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    if platform == "aws":
        if protect is False:
            errors.append((path_of("protect"), _said(
                "rds-protected-resource", "protect: false leaves the databases unprotected in Pulumi",
                "Remove bulkhead:protect (it defaults to true on aws).")))
        used_tiers = sorted({db.tier for db in databases.values() if db.tier in tiers})
        for name in used_tiers:
            tier = tiers[name]
            pitr_min = t.MIN_RETENTION_DAYS_BY_TIER.get(name, t.DEFAULT_MIN_RETENTION_DAYS)
            if tier.pitr_days < pitr_min:
                errors.append((path_of("backup_tiers", name, "pitr_days"), _said(
                    "rds-backup-retention", f"pitr_days {tier.pitr_days} is below the {pitr_min} days tier {name} requires",
                    f"Raise pitr_days to at least {pitr_min}.")))
            plan_min = t.MIN_BACKUP_PLAN_RETENTION_DAYS_BY_TIER.get(name, t.DEFAULT_MIN_BACKUP_PLAN_RETENTION_DAYS)
            if tier.retention_days < plan_min:
                errors.append((path_of("backup_tiers", name, "retention_days"), _said(
                    "rds-in-backup-plan", f"retention_days {tier.retention_days} is below the {plan_min} days tier "
                    f"{name} requires", f"Raise retention_days to at least {plan_min}.")))
        for name, db in sorted(databases.items()):
            if db.deletion_protection is False:
                errors.append((path_of("databases", name, "deletion_protection"), _said(
                    "rds-deletion-protection", "deletion_protection: false lets the AWS API delete the database",
                    "Remove the key (it defaults to true).")))
            if db.multi_az is False:
                warnings.append((path_of("databases", name, "multi_az"), _said(
                    "rds-multi-az", "multi_az: false runs the database in one availability zone",
                    "Keep it only for a cheap, rebuildable database.")))
            if "." in db.engine_version:
                warnings.append((path_of("databases", name, "engine_version"), _said(
                    "rds-auto-minor-upgrade", f"a pinned minor ({db.engine_version}) turns minor upgrades off",
                    f'Use "{db.major}" to take security fixes in the maintenance window.')))
    else:
        owners = [(("databases", n), d.memory_mb) for n, d in sorted(databases.items()) if d.server is None]
        owners += [(("servers", n), s.memory_mb) for n, s in sorted(servers.items())]
        for where, memory_mb in owners:
            if memory_mb > t.MAX_DEV_MEMORY_MB:
                warnings.append((path_of(*where, "memory_mb"), _said(
                    "dev-resource-limits", f"memory_mb {memory_mb} is above the dev limit of {t.MAX_DEV_MEMORY_MB} MB",
                    "Lower memory_mb (or raise the pack's maxMemoryMb).")))
        if keep_volumes is False and not protect:
            warnings.append((path_of("keep_volumes"), _said(
                "dev-volume-retained", "keep_volumes: false lets `pulumi destroy` delete the data volumes",
                "Remove the key (it defaults to true) if the data should survive a destroy.")))
    return errors, warnings
