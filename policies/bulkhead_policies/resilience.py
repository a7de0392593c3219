"""Resilience: backups, recovery points, nothing deleted by accident, replicas that match."""

from __future__ import annotations

from typing import Iterable

from bulkhead_backup import instance_arn, selection_covers

from . import thresholds
from ._resources import (
    ADVISORY,
    BACKUP_PLAN,
    BACKUP_SELECTION,
    BACKUP_VAULT,
    KMS_KEY,
    MANDATORY,
    RDS_INSTANCE,
    SECURITY_GROUP,
    KMS_ALIAS,
    RDS_PARAMETER_GROUP,
    UNKNOWN,
    CouldNotCheck,
    Index,
    Res,
    as_int,
    as_list,
    resource_rule,
    schema,
    string_list,
    stack_rule,
    truthy,
)

# Filled by @resource_rule / @stack_rule where each check is defined, in definition order.
POLICIES: list = []



def _days_by_tier(by_tier_key: str, by_tier: dict, by_tier_description: str,
                  default_key: str, default: int, default_description: str) -> dict:
    """Config of a retention rule: minimum days per bulkhead:tier, and for a tier not listed."""
    return {
        by_tier_key: {
            "type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
            "default": dict(by_tier), "description": by_tier_description,
        },
        default_key: {"type": "integer", "minimum": 0, "default": default, "description": default_description},
    }


_RETENTION_SCHEMA = _days_by_tier(
    "minRetentionDaysByTier", thresholds.MIN_RETENTION_DAYS_BY_TIER,
    "Minimum RDS automated-backup retention (days) per bulkhead:tier.",
    "defaultMinRetentionDays", thresholds.DEFAULT_MIN_RETENTION_DAYS,
    "Minimum retention for a tier not listed (or an untagged instance).")
_PLAN_SCHEMA = _days_by_tier(
    "minBackupPlanRetentionDaysByTier", thresholds.MIN_BACKUP_PLAN_RETENTION_DAYS_BY_TIER,
    "Minimum AWS Backup recovery-point retention (days) per bulkhead:tier.",
    "defaultMinBackupPlanRetentionDays", thresholds.DEFAULT_MIN_BACKUP_PLAN_RETENTION_DAYS,
    "Minimum recovery-point retention for a tier not listed.")


def _min_for_tiers(r: Res, by_tier: dict, default: int) -> tuple[int, str]:
    tiers = r.tiers
    if not tiers:
        return int(default), "no tier"
    best, best_tier = -1, tiers[0]
    for tier in tiers:
        value = as_int(by_tier.get(tier))
        value = int(default) if value is None else value
        if value > best:
            best, best_tier = value, tier
    return best, f"tier {best_tier}"


@resource_rule(POLICIES, "rds-backup-retention",
    "RDS primaries keep automated backups (point-in-time recovery) at least as long as their tier requires.",
    MANDATORY, [RDS_INSTANCE],
    config_schema=schema(_RETENTION_SCHEMA),
)
def check_rds_backup_retention(r: Res, cfg: dict) -> Iterable[str]:
    if not r.is_primary:
        return  # replicas take no automated backups of their own
    minimum, why = _min_for_tiers(r, cfg.get("minRetentionDaysByTier") or {}, cfg.get("defaultMinRetentionDays", 7))
    days = as_int(r.need("backupRetentionPeriod"))
    if days is None:
        days = 1  # the RDS API default
    if days < minimum:
        yield (f"{r.label} keeps automated backups for {days} days, below the {minimum} days required for "
               f"{why}; raise backup_retention_period (the tier's pitr_days) to at least {minimum}.")


# --- rds-in-backup-plan ----------------------------------------------------------------------------
class _Needed:
    """A selection's inputs for selection_covers, read as it needs them: an unknown one it reaches
    raises CouldNotCheck (Res.need); notResources only narrows, so an unknown one is skipped."""

    def __init__(self, selection: Res):
        self._selection = selection

    def get(self, key: str):
        return as_list(self._selection.get(key)) if key == "notResources" else self._selection.need(key)


def _selection_covers(selection: Res, inst: Res) -> bool:
    arn = instance_arn(inst.get("arn"), inst.get("identifier") or inst.name)
    return selection_covers(_Needed(selection), arn, inst.tags)


def _plan_retention(plan: Res) -> list:
    out = []
    for rule in as_list(plan.need("rules")):
        if not isinstance(rule, dict):
            continue
        lifecycle = rule.get("lifecycle")
        days = as_int(lifecycle.get("deleteAfter")) if isinstance(lifecycle, dict) else None
        out.append(days)  # None: kept until deleted by hand
    return out


@stack_rule(POLICIES, "rds-in-backup-plan",
    "Every RDS primary is selected by an AWS Backup plan that keeps recovery points as long as its tier requires.",
    MANDATORY, [RDS_INSTANCE],
    config_schema=schema(_PLAN_SCHEMA),
)
def check_rds_in_backup_plan(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if not r.is_primary:
        return
    minimum, why = _min_for_tiers(r, cfg.get("minBackupPlanRetentionDaysByTier") or {},
                                  cfg.get("defaultMinBackupPlanRetentionDays", 7))
    if r.tags_unknown():
        raise CouldNotCheck(r, "tags")
    covering = [s for s in index.of_type(BACKUP_SELECTION) if _selection_covers(s, r)]
    if not covering:
        yield (f"{r.label} is not selected by any AWS Backup plan of the stack; tag it with its "
               f"bulkhead:tier and bulkhead:role=primary so that its tier's backup selection picks it up.")
        return
    best = None
    for selection in covering:
        plans, _, unknown = index.refs(selection, "planId", BACKUP_PLAN)
        if not plans and unknown:
            raise CouldNotCheck(selection, "planId")
        for plan in plans:
            for days in _plan_retention(plan):
                if days is None:
                    return
                best = days if best is None else max(best, days)
    if best is None:
        yield (f"{r.label} is selected for backup, but the selection's plan has no backup rule in this stack; "
               f"give the tier's backup plan a scheduled rule.")
    elif best < minimum:
        yield (f"{r.label} is backed up, but its recovery points are kept for {best} days, below the {minimum} "
               f"days required for {why}; raise the tier's retention_days to at least {minimum}.")


@resource_rule(POLICIES, "rds-deletion-protection",
    "RDS primaries have deletion protection on.",
    MANDATORY, [RDS_INSTANCE],
)
def check_rds_deletion_protection(r: Res, cfg: dict) -> Iterable[str]:
    if r.is_primary and truthy(r.need("deletionProtection")) is not True:
        yield (f"{r.label} can be deleted through the AWS API; set deletion_protection=True "
               f"(catalogue key deletion_protection) so that removing it takes two deliberate steps.")


@resource_rule(POLICIES, "rds-final-snapshot",
    "Deleting an RDS primary leaves a final snapshot and keeps its automated backups.",
    MANDATORY, [RDS_INSTANCE],
)
def check_rds_final_snapshot(r: Res, cfg: dict) -> Iterable[str]:
    if not r.is_primary:
        return
    if truthy(r.need("skipFinalSnapshot")) is True:
        yield (f"{r.label} skips its final snapshot, so deleting it loses the data; set "
               f"skip_final_snapshot=False with a unique final_snapshot_identifier.")
    elif not r.is_set("finalSnapshotIdentifier"):
        yield (f"{r.label} has no final_snapshot_identifier, so deleting it fails or loses the data; set a "
               f"unique one (bulkhead adds a random suffix).")
    if truthy(r.need("deleteAutomatedBackups")) is not False:
        yield (f"{r.label} deletes its automated backups together with the instance; set "
               f"delete_automated_backups=False so that point-in-time recovery survives a deletion.")


@resource_rule(POLICIES, "rds-protected-resource",
    "RDS primaries, KMS keys and backup vaults carry Pulumi's `protect` option.",
    MANDATORY, [RDS_INSTANCE, KMS_KEY, BACKUP_VAULT],
)
def check_rds_protected_resource(r: Res, cfg: dict) -> Iterable[str]:
    if r.protect is None or r.protect is True:
        return
    if r.type == RDS_INSTANCE and r.is_primary:
        yield (f"{r.label} is not protected in Pulumi, so `pulumi destroy` or a rename deletes the database; "
               f"set the Pulumi `protect` option (bulkhead:protect true).")
    elif r.type == KMS_KEY:
        yield (f"{r.label} is not protected in Pulumi; deleting it makes every snapshot and backup encrypted "
               f"with it unreadable, so set the Pulumi `protect` option.")
    elif r.type == BACKUP_VAULT:
        yield (f"{r.label} is not protected in Pulumi; set the `protect` option so that its recovery points "
               f"cannot be removed by `pulumi destroy`.")


@resource_rule(POLICIES, "rds-multi-az",
    "RDS primaries run multi-AZ (advisory: a team may accept single-AZ for a cheap, rebuildable database).",
    ADVISORY, [RDS_INSTANCE],
)
def check_rds_multi_az(r: Res, cfg: dict) -> Iterable[str]:
    if r.is_primary and truthy(r.need("multiAz")) is not True:
        yield (f"{r.label} runs in a single availability zone; set multi_az=True (catalogue key multi_az) so "
               f"that an AZ outage fails over instead of taking the database down.")


@resource_rule(POLICIES, "rds-enhanced-monitoring",
    "RDS instances publish enhanced monitoring (advisory: it costs money and teams may monitor otherwise).",
    ADVISORY, [RDS_INSTANCE],
    config_schema=schema({"maxMonitoringIntervalSeconds": {
        "type": "integer", "enum": [1, 5, 10, 15, 30, 60], "default": thresholds.MAX_MONITORING_INTERVAL,
        "description": "The largest acceptable monitoring_interval."}}),
)
def check_rds_enhanced_monitoring(r: Res, cfg: dict) -> Iterable[str]:
    interval = as_int(r.need("monitoringInterval")) or 0
    maximum = as_int(cfg.get("maxMonitoringIntervalSeconds")) or 60
    if interval <= 0:
        yield (f"{r.label} has enhanced monitoring off; set monitoring_interval (at most {maximum} seconds) "
               f"and monitoring_role_arn.")
    elif interval > maximum:
        yield (f"{r.label} samples enhanced monitoring every {interval} seconds; set monitoring_interval to "
               f"{maximum} or less.")
    elif not r.is_set("monitoringRoleArn"):
        yield f"{r.label} has no monitoring_role_arn, so enhanced monitoring cannot publish; set the stack's monitoring role."


@resource_rule(POLICIES, "rds-log-exports",
    "RDS instances export the PostgreSQL and upgrade logs to CloudWatch (advisory).",
    ADVISORY, [RDS_INSTANCE],
    config_schema=schema({"requiredLogExports": string_list(thresholds.REQUIRED_LOG_EXPORTS,
                                                            "Log types every instance must export.")}),
)
def check_rds_log_exports(r: Res, cfg: dict) -> Iterable[str]:
    required = [str(x) for x in as_list(cfg.get("requiredLogExports"))]
    exports = {str(x) for x in as_list(r.need("enabledCloudwatchLogsExports"))}
    missing = [x for x in required if x not in exports]
    if missing:
        yield (f"{r.label} does not export the {', '.join(missing)} log(s) to CloudWatch; add them to "
               f"enabled_cloudwatch_logs_exports so that connections and upgrades leave a trail.")


@resource_rule(POLICIES, "rds-performance-insights-encrypted",
    "When Performance Insights is on, its data (SQL text, so possibly customer data) is encrypted with the "
    "database's own customer-managed key. Mandatory: turning it on is a choice, leaving it unencrypted is not.",
    MANDATORY, [RDS_INSTANCE],
)
def check_rds_performance_insights_encrypted(r: Res, cfg: dict) -> Iterable[str]:
    if truthy(r.need("performanceInsightsEnabled")) is not True:
        return  # Performance Insights is optional; when on, its data (SQL text) must be encrypted
    pi_key = r.get("performanceInsightsKmsKeyId")
    if pi_key is UNKNOWN:
        return
    if not pi_key or "alias/aws/" in str(pi_key):
        yield (f"{r.label} stores Performance Insights data (which includes SQL text) under the AWS-managed "
               f"key; set performance_insights_kms_key_id to the database's own KMS key.")
        return
    storage_key = r.get("kmsKeyId")
    if isinstance(storage_key, str) and storage_key and storage_key != pi_key:
        yield (f"{r.label} encrypts Performance Insights with {pi_key}, not with its own storage key "
               f"{storage_key}; use the database's own key for both.")


@resource_rule(POLICIES, "rds-auto-minor-upgrade",
    "RDS instances take minor version upgrades in the maintenance window (advisory: some teams pin versions "
    "for change control).",
    ADVISORY, [RDS_INSTANCE],
)
def check_rds_auto_minor_upgrade(r: Res, cfg: dict) -> Iterable[str]:
    if truthy(r.need("autoMinorVersionUpgrade")) is False:
        yield (f"{r.label} does not take minor version upgrades; set auto_minor_version_upgrade=True so that "
               f"security fixes are applied in the maintenance window.")


@resource_rule(POLICIES, "rds-copy-tags-to-snapshot",
    "RDS primaries copy their tags (owner, database, tier) to snapshots (advisory).",
    ADVISORY, [RDS_INSTANCE],
)
def check_rds_copy_tags_to_snapshot(r: Res, cfg: dict) -> Iterable[str]:
    if r.is_primary and truthy(r.need("copyTagsToSnapshot")) is not True:
        yield (f"{r.label} does not copy its tags to snapshots, so its snapshots carry no bulkhead:owner; "
               f"set copy_tags_to_snapshot=True.")


# --- replica-matches-primary (stack) ---------------------------------------------------------------
def _key_set(index: Index, r: Res, key: str, *types: str) -> set:
    found, unresolved, unknown = index.refs(r, key, *types)
    if unknown and not found:
        raise CouldNotCheck(r, key)
    return {f.urn for f in found} | set(unresolved)


@stack_rule(POLICIES, "replica-matches-primary",
    "A read replica follows its primary: same owner and database tags, KMS key, parameter group and security groups.",
    MANDATORY, [RDS_INSTANCE],
)
def check_replica_matches_primary(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if not r.is_replica:
        return
    primaries, unresolved, unknown = index.refs(r, "replicateSourceDb", RDS_INSTANCE)
    primaries = [p for p in primaries if p is not r]
    if not primaries:
        if unknown:
            raise CouldNotCheck(r, "replicateSourceDb")
        source = r.get("replicateSourceDb")
        yield (f"{r.label} replicates {source}, which is not a database of this stack, so it would copy "
               f"another team's data; replicate only the owner's own primary.")
        return
    primary = primaries[0]
    problems = []
    if r.owners != primary.owners or r.databases != primary.databases:
        problems.append(f"it is tagged for {','.join(r.databases) or '?'}/{','.join(r.owners) or 'no owner'} "
                        f"while its primary belongs to {','.join(primary.databases) or '?'}/"
                        f"{','.join(primary.owners) or 'no owner'}")
    checks = (
        ("kmsKeyId", "KMS key", (KMS_KEY, KMS_ALIAS)),
        ("parameterGroupName", "parameter group", (RDS_PARAMETER_GROUP,)),
        ("vpcSecurityGroupIds", "security groups", (SECURITY_GROUP,)),
    )
    for key, what, types in checks:
        if key == "kmsKeyId" and not r.is_set(key):
            continue  # a same-region replica is encrypted with its primary's key
        mine = _key_set(index, r, key, *types)
        theirs = _key_set(index, primary, key, *types)
        if mine != theirs:
            problems.append(f"its {what} differs from the primary's")
    if truthy(r.get("storageEncrypted")) is False and truthy(primary.get("storageEncrypted")) is True:
        problems.append("it is not encrypted while its primary is")
    if problems:
        yield (f"{r.label} does not match its primary {primary.name}: {'; '.join(problems)}. Create replicas "
               f"with the primary's owner tags, key, parameter group and security group (RdsPostgres replicas do).")
