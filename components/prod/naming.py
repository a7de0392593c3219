"""Names AWS accepts, derived only from the stack and catalogue names (so they never change by themselves)."""

from __future__ import annotations

import hashlib
import re


def aws_name(*parts: str, max_length: int = 63) -> str:
    """`parts` joined by dashes, as RDS identifiers, parameter groups, subnet groups and
    vaults all accept: lower-case letters, digits and single dashes, starting with a
    letter, no trailing dash. Stack names may hold capitals, dots and underscores."""
    name = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    if not name[:1].isalpha():
        name = f"db-{name}"
    return name[:max_length].rstrip("-")


# RDS DB instance identifiers: 1-63 letters, digits or hyphens (CreateDBInstance,
# DBInstanceIdentifier constraints; `maxLength: 63` in CloudFormation's AWS::RDS::DBInstance).
RDS_IDENTIFIER_MAX = 63
# AWS Backup names: vaults `^[a-zA-Z0-9\-\_]{2,50}$` (CreateBackupVault); rule and selection
# names 1-50 of alphanumerics and '-_.' (BackupRule.RuleName, BackupSelection.SelectionName);
# plan names the same characters, 1-50 in the console (BackupPlan.BackupPlanName).
BACKUP_NAME_MAX = 50


def fitted_name(name: str, max_length: int) -> str:
    """`name` unchanged when it fits in `max_length`; otherwise its beginning and a short hash of
    the whole name, so two long names that share a beginning still differ. A name that fits
    never changes, so a resource created under it keeps it."""
    if len(name) <= max_length:
        return name
    tag = hashlib.sha256(name.encode()).hexdigest()[:6]
    return name[: max_length - len(tag) - 1].rstrip("-_.") + "-" + tag


def backup_name(*parts: str) -> str:
    """A vault, plan or selection name: `aws_name` of the parts within AWS Backup's 50 characters."""
    return fitted_name(aws_name(*parts, max_length=255), BACKUP_NAME_MAX)


def replica_identifier(primary_identifier: str, index: int) -> str:
    """`<primary>-replica-N` (N from 1), within RDS's 63 characters: a primary identifier too
    long for the suffix is shortened (with a hash) for its replicas only."""
    suffix = f"-replica-{index}"
    return fitted_name(primary_identifier, RDS_IDENTIFIER_MAX - len(suffix)) + suffix
