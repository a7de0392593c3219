"""Boundary: who, beyond the owning service, can decrypt, read, delete or restore a database's data.

Resource policies (KMS key policies, the master secret's policy, the backup vault's access
policy) are where an account's IAM stops being the only guard; log groups are where query
text leaves the database; restore testing proves the backups are usable.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable, Optional

from ._resources import (
    ADVISORY,
    BACKUP_VAULT,
    BACKUP_VAULT_POLICY,
    KMS_KEY,
    LOG_GROUP,
    MANDATORY,
    RDS_INSTANCE,
    RESTORE_TESTING_SELECTION,
    SECRET,
    SECRET_POLICY,
    UNKNOWN,
    CouldNotCheck,
    Index,
    Res,
    as_int,
    as_list,
    owner_of,
    policy_document,
    resource_rule,
    stack_rule,
    statements,
)

# Filled by @resource_rule / @stack_rule where each check is defined, in definition order.
POLICIES: list = []

ACCOUNT_ROOT_RE = re.compile(r"^(arn:aws[a-z-]*:iam::)?[0-9]{12}(:root)?$")


def _actions_match(statement: dict, action: str) -> bool:
    return any(isinstance(p, str) and fnmatch.fnmatchcase(action.lower(), p.lower())
               for p in as_list(statement.get("Action")))


def _principals(statement: dict) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        return [str(p) for values in principal.values() for p in as_list(values)]
    return []


def _condition_keys(statement: dict) -> set[str]:
    condition = statement.get("Condition")
    if not isinstance(condition, dict):
        return set()
    return {str(k).lower() for op in condition.values() if isinstance(op, dict) for k in op}


def _document(r: Res, key: str = "policy") -> Optional[dict]:
    """The parsed policy document, None when absent; CouldNotCheck when unknown at preview."""
    raw = r.get(key)
    if raw is UNKNOWN:
        raise CouldNotCheck(r, key)
    if raw in (None, ""):
        return None
    return policy_document(Res(r.type, r.urn, r.name, {"policy": raw})) or {"Statement": []}


def _denied_to_everyone_else(doc: dict, action: str) -> bool:
    """A Deny for Principal * on `action` that exempts named principals only (aws:PrincipalArn)."""
    for s in statements(doc):
        if s.get("Effect") != "Deny" or not _actions_match(s, action) or _principals(s) not in (["*"],):
            continue
        keys = _condition_keys(s)
        if not keys or keys <= {"aws:principalarn"}:
            return True
    return False


def _allows_everyone(doc: dict) -> list[str]:
    return sorted({str(a) for s in statements(doc) if s.get("Effect") == "Allow" and "*" in _principals(s)
                   for a in as_list(s.get("Action"))})


@resource_rule(POLICIES, "kms-key-policy-scoped",
    "KMS keys have an explicit key policy; nobody decrypts as 'the whole account' without kms:ViaService.",
    MANDATORY, [KMS_KEY],
)
def check_kms_key_policy_scoped(r: Res, cfg: dict) -> Iterable[str]:
    doc = _document(r)
    if doc is None:
        yield (f"{r.label} has no key policy, so KMS's default applies: every principal of the account that IAM "
               f"allows kms:* can decrypt with it; give it an explicit policy (administration for the key admins, use "
               f"only through kms:ViaService), as bulkhead's key_policies module writes.")
        return
    for s in statements(doc):
        if s.get("Effect") != "Allow" or not _actions_match(s, "kms:Decrypt"):
            continue
        broad = [p for p in _principals(s) if p == "*" or ACCOUNT_ROOT_RE.match(p)]
        if broad and "kms:viaservice" not in _condition_keys(s):
            sid = s.get("Sid") or "a statement"
            yield (f"{r.label} lets {', '.join(broad)} decrypt ({sid}) without a kms:ViaService condition, so anyone "
                   f"in the account with kms:Decrypt in IAM can read the data; limit it to the AWS services that need "
                   f"the key (kms:ViaService) or to named roles.")


@stack_rule(POLICIES, "secret-resource-policy",
    "Every Secrets Manager secret has a resource policy denying reads to all but named principals.",
    MANDATORY, [SECRET, SECRET_POLICY],
)
def check_secret_resource_policy(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type == SECRET_POLICY:
        doc = _document(r)
        if doc is not None:
            wide = _allows_everyone(doc)
            if wide:
                yield (f"{r.label} allows {', '.join(wide)} to every principal; a master secret's policy only denies "
                       f"(everyone but the bootstrap role and break-glass principals).")
        return
    policies = index.referrers(r, [SECRET_POLICY], "secretArn")
    if not policies:
        yield (f"{r.label} has no resource policy, so anyone in the account whom IAM allows "
               f"secretsmanager:GetSecretValue can read it; attach a SecretPolicy that denies reading to everyone but "
               f"the database's bootstrap role and the break-glass principals.")
        return
    if _is_login_secret(r):
        return  # auth password: login-secret-owner-only checks its read deny (secret-writes-denied its writes)
    for policy in policies:
        doc = _document(policy)
        if doc is None or not _denied_to_everyone_else(doc, "secretsmanager:GetSecretValue"):
            yield (f"{r.label}'s resource policy {policy.name} does not deny secretsmanager:GetSecretValue to everyone "
                   f"but named principals; add a Deny for Principal * with an aws:PrincipalArn exemption list.")


def _is_login_secret(r: Res) -> bool:
    """An `auth: password` login secret (bulkhead/<stack>/<db>/login-...): the service's own
    password, which its access policy reads; never a master secret (service-role-not-master)."""
    prefix = r.get("namePrefix") or r.get("name") or ""
    return r.role == "login-secret" and isinstance(prefix, str) and "/login-" in prefix


# --- login-secret-owner-only ---------------------------------------------------------------------
def _exemptions(doc: dict, action: str) -> Optional[list[str]]:
    """The aws:PrincipalArn patterns a Deny-for-everyone-else on `action` exempts (the first such
    statement's), None when there is no such Deny."""
    for s in statements(doc):
        if s.get("Effect") != "Deny" or not _actions_match(s, action) or _principals(s) != ["*"]:
            continue
        keys = _condition_keys(s)
        if keys and keys <= {"aws:principalarn"}:
            return [str(p) for op in s["Condition"].values() if isinstance(op, dict)
                    for k, v in op.items() if str(k).lower() == "aws:principalarn" for p in as_list(v)]
    return None


def _broad(pattern: str) -> bool:
    """An exemption that admits principals nobody named: `*`, another account's or any account's
    principals, or a wildcard in the role or user *name* (role/*/name, for a role's path, names one role)."""
    if pattern.strip() == "*":
        return True
    parts = pattern.split(":", 5)
    if len(parts) < 6 or any(c in parts[4] for c in "*?"):
        return True
    resource = parts[5]
    if resource == "root":
        return False
    name = resource.rsplit("/", 1)[-1]
    return "/" not in resource or any(c in name for c in "*?")


@stack_rule(POLICIES, "login-secret-owner-only",
    "An auth: password login secret's policy denies reading it to every principal but named ones (the owner's roles, "
    "the bootstrap role, deployers, break-glass).",
    MANDATORY, [SECRET],
)
def check_login_secret_owner_only(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if not _is_login_secret(r):
        return
    owner = owner_of(r) or "its owner"
    for policy in index.referrers(r, [SECRET_POLICY], "secretArn"):
        doc = _document(policy) or {"Statement": []}
        exempt = _exemptions(doc, "secretsmanager:GetSecretValue")
        if exempt is None:
            yield (f"{r.label} (the login password of {owner}) has a resource policy {policy.name} that does not deny "
                   f"secretsmanager:GetSecretValue, so every principal of the account whose IAM policy allows it on * "
                   f"reads another service's password; deny it to Principal * with an aws:PrincipalArn exemption "
                   f"list of {owner}'s roles (bulkhead:owner_principals), the bootstrap role, deployers and break-glass.")
            continue
        broad = sorted(p for p in exempt if _broad(p))
        if broad:
            yield (f"{r.label}'s resource policy {policy.name} exempts {', '.join(broad)} from its read deny, which "
                   f"admits principals nobody named; list {owner}'s roles by ARN (bulkhead:owner_principals) instead.")


# --- backup-vault-access-policy ------------------------------------------------------------------
VAULT_DENIED_ACTIONS = ("backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle",
                        "backup:PutBackupVaultAccessPolicy")


@stack_rule(POLICIES, "backup-vault-access-policy",
    "Every backup vault has an access policy denying deletion of recovery points to all but break-glass principals.",
    MANDATORY, [BACKUP_VAULT],
)
def check_backup_vault_access_policy(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    policies = index.referrers(r, [BACKUP_VAULT_POLICY], "backupVaultName")
    if not policies:
        yield (f"{r.label} has no access policy, so anyone in the account with backup:DeleteRecoveryPoint can delete "
               f"every service's recovery points; attach a VaultPolicy that denies {', '.join(VAULT_DENIED_ACTIONS)} "
               f"to everyone but the break-glass principals.")
        return
    for policy in policies:
        doc = _document(policy) or {"Statement": []}
        missing = [a for a in VAULT_DENIED_ACTIONS if not _denied_to_everyone_else(doc, a)]
        if missing:
            yield (f"{r.label}'s access policy {policy.name} does not deny {', '.join(missing)} to everyone but named "
                   f"principals; add them to its Deny for Principal * with an aws:PrincipalArn exemption list.")


# --- rds-log-groups-managed ----------------------------------------------------------------------
def _log_group_problems(group: Res) -> list[str]:
    problems = []
    days = group.need("retentionInDays")
    if as_int(days) in (None, 0):
        problems.append("keeps its events forever (no retention_in_days)")
    if not group.is_set("kmsKeyId"):
        problems.append("is not encrypted with the database's KMS key (no kms_key_id)")
    return problems


@stack_rule(POLICIES, "rds-log-groups-managed",
    "RDS log exports go to stack-managed log groups with retention and a KMS key.",
    MANDATORY, [RDS_INSTANCE, LOG_GROUP],
)
def check_rds_log_groups_managed(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type == LOG_GROUP:
        name = r.get("name")
        if isinstance(name, str) and name.startswith("/aws/rds/"):
            for problem in _log_group_problems(r):
                yield (f"{r.label} (RDS logs, statement text included) {problem}; set retention_in_days from the "
                       f"tier's log_retention_days and kms_key_id to the database's key.")
        return
    ident = r.need("identifier")
    for log_type in as_list(r.need("enabledCloudwatchLogsExports")):
        name = f"/aws/rds/instance/{ident}/{log_type}"
        groups = index.named(name, LOG_GROUP)
        if not groups:
            yield (f"{r.label} exports its {log_type} log to {name}, a log group RDS creates itself with no retention "
                   f"and no KMS key; create that log group in the stack (before the instance) with retention and the "
                   f"database's key.")


# --- backup-restore-testing ----------------------------------------------------------------------
def _first_covering(index: Index) -> tuple[dict, list, Optional[int]]:
    """Every selection's coverage, computed once per stack (per instance it made check
    quadratic: one selection per database, bench/README.md "check"): (instance urn -> the
    first selection resolving it or naming its ARN, [(selection position, wildcard ARN
    pattern)], the position of the first selection that cannot be checked). The answer, and
    the selection a CouldNotCheck names, are those of asking each selection in order."""
    memo = index.__dict__.setdefault("_bulkhead_restore_cover", {})
    if "v" not in memo:
        by_urn: dict[str, int] = {}
        patterns: list = []
        first_unknown = None
        for i, selection in enumerate(index.of_type(RESTORE_TESTING_SELECTION)):
            arns = as_list(selection.get("protectedResourceArns"))
            if any(a is UNKNOWN for a in arns) and not selection.deps.get("protectedResourceArns"):
                first_unknown = i
                break
            found, _, _ = index.refs(selection, "protectedResourceArns", RDS_INSTANCE)
            for inst in found:
                by_urn.setdefault(inst.urn, i)
            for p in arns:
                if isinstance(p, str) and any(c in p for c in "*?["):
                    patterns.append((i, p))
                elif isinstance(p, str):  # a literal ARN matches only itself (fnmatch without wildcards)
                    by_urn.setdefault(("arn", p), i)
        memo["v"] = (by_urn, patterns, first_unknown)
    return memo["v"]


def _covered_by_restore_testing(index: Index, inst: Res) -> bool:
    by_urn, patterns, first_unknown = _first_covering(index)
    first = by_urn.get(inst.urn)
    arn = inst.get("arn")
    if isinstance(arn, str):
        literal = by_urn.get(("arn", arn))
        if literal is not None and (first is None or literal < first):
            first = literal
        for i, pattern in patterns:
            if first is not None and i >= first:
                break
            if fnmatch.fnmatchcase(arn, pattern):
                first = i
                break
    if first is not None:
        return True
    if first_unknown is not None:
        raise CouldNotCheck(index.of_type(RESTORE_TESTING_SELECTION)[first_unknown], "protectedResourceArns")
    return False


@stack_rule(POLICIES, "backup-restore-testing",
    "Every primary database is in an AWS Backup restore testing selection.",
    ADVISORY, [RDS_INSTANCE],
)
def check_backup_restore_testing(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if not r.is_primary:
        return
    if not _covered_by_restore_testing(index, r):
        tier = ",".join(r.tiers) or "no tier"
        yield (f"{r.label} (tier {tier}) is in no AWS Backup restore testing selection, so nothing proves its backups "
               f"restore; give the tier a RestoreTestingPlan and the database a RestoreTestingSelection.")
