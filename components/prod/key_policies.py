"""Resource policy documents: KMS key policies, the master secret's policy, the backup vault's.

Pure functions of ARNs and names, so tests parse the very documents the stack sends.

Key policies replace KMS's default policy, which lets every principal of the account that
IAM allows `kms:*` use every key ("Default key policy", KMS developer guide). Here:
- administrators (`bulkhead:key_admins`, default the account root, i.e. IAM decides) get the
  key-administration actions only: no Encrypt/Decrypt/GenerateDataKey/ReEncrypt, and no
  CreateGrant (a grant could hand them Decrypt);
- the account's principals may use the key only through the AWS services that need it
  (`kms:ViaService`, KMS condition keys), and only for this account (`kms:CallerAccount`);
- CloudWatch Logs may use it only for this database's log groups
  (`kms:EncryptionContext:aws:logs:arn`, "Encrypt log data in CloudWatch Logs using AWS KMS");
- named roles (the database's bootstrap function) may decrypt through Secrets Manager only.
"""

from __future__ import annotations

import json
from typing import Iterable, Sequence
from policies.bulkhead_types import SECRET_WRITE_ACTIONS

# The key-administration actions of KMS's default "key administrators" statement, spelled
# out so that no wildcard (kms:Create*) carries kms:CreateGrant along with it.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
KEY_USE_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")
# RDS (storage, Performance Insights, snapshot copies) and AWS Backup take grants on the key
# for the resources they manage (kms:GrantIsForAWSResource, KMS condition keys).
GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")
LOGS_ACTIONS = ("kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*")
# What a database key is used through: RDS storage and snapshots, the master secret,
# AWS Backup's copies and restores, CloudWatch Logs for the exported logs.
DATABASE_KEY_SERVICES = ("rds", "secretsmanager", "backup", "logs")
# A backup vault key: AWS Backup, and RDS for the snapshot copies it writes into the vault.
VAULT_KEY_SERVICES = ("backup", "rds")


def account_root(partition: str, account: str) -> str:
    return f"arn:{partition}:iam::{account}:root"


def via(services: Iterable[str], region: str) -> list[str]:
    return [f"{service}.{region}.amazonaws.com" for service in sorted(services)]


def rds_log_group_arns(partition: str, region: str, account: str, identifiers: Sequence[str]) -> list[str]:
    """The log groups RDS writes for these instances: /aws/rds/instance/<id>/<type>."""
    return [f"arn:{partition}:logs:{region}:{account}:log-group:/aws/rds/instance/{ident}/*" for ident in identifiers]


def key_policy(*, partition: str, region: str, account: str, admins: Sequence[str], services: Sequence[str],
               log_group_arns: Sequence[str] = (), decrypt_roles: Sequence[str] = (),
               denies: Sequence[dict] = ()) -> dict:
    """A key policy: admins administer, the account uses the key via `services` only,
    CloudWatch Logs for `log_group_arns` only, `decrypt_roles` through Secrets Manager only;
    `denies` (secret_decrypt_deny) appended last."""
    root = account_root(partition, account)
    admins = list(admins) or [root]
    statements = [
        {
            "Sid": "KeyAdministration",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(admins)},
            "Action": list(KEY_ADMIN_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "UseThroughAwsServices",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": list(KEY_USE_ACTIONS),
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": via(services, region), "kms:CallerAccount": account}},
        },
        {
            "Sid": "GrantsForAwsResources",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": list(GRANT_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:ViaService": via(services, region), "kms:CallerAccount": account},
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        },
    ]
    if log_group_arns:
        statements.append(
            {
                "Sid": "CloudWatchLogsForThisDatabase",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                "Action": list(LOGS_ACTIONS),
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": sorted(log_group_arns)}},
            }
        )
    if decrypt_roles:
        statements.append(
            {
                "Sid": "DatabaseRolesReadTheSecret",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(decrypt_roles)},
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            }
        )
    statements.extend(denies)
    return {"Version": "2012-10-17", "Statement": statements}


SECRET_READ_ACTIONS = ("secretsmanager:GetSecretValue",)
# Every Secrets Manager action that writes or configures an existing secret (botocore's
# secretsmanager service model = the Service Authorization Reference's action list; the test
# tests/program/test_prod_baseline.py (test_every_secrets_manager_action_is_denied_or_justified) fails on an action neither here nor in
# SECRET_ACTIONS_NOT_DENIED). Without them denied, ordinary Secrets Manager rights could plant
# another host/password (PutSecretValue, UpdateSecretVersionStage), re-key the secret to a key
# of their own and disable it (UpdateSecret), or copy it elsewhere (ReplicateSecretToRegions).
SECRET_ADMIN_ACTIONS = SECRET_WRITE_ACTIONS  # defined once, in policies/bulkhead_types.py
# The rest of the action list, and why a secret's policy does not deny it.
SECRET_ACTIONS_NOT_DENIED = {
    "secretsmanager:BatchGetSecretValue": "also needs secretsmanager:GetSecretValue on each secret (API reference), "
                                          "which is denied",
    "secretsmanager:CreateSecret": "creates another secret; a resource policy governs only its own secret",
    "secretsmanager:DescribeSecret": "metadata only (no value): audit and the console read it",
    "secretsmanager:GetResourcePolicy": "reads this policy, no value",
    "secretsmanager:ListResourcePolicies": "lists policies, no value",
    "secretsmanager:ListSecretVersionIds": "version ids and dates, no value: audit reads the master's age",
    "secretsmanager:GetRandomPassword": "acts on no secret",
    "secretsmanager:ListSecrets": "acts on no secret (names and metadata of the account's secrets)",
    "secretsmanager:ValidateResourcePolicy": "checks a document, acts on no secret",
}


def secret_policy(*, partition: str, account: str, readers: Sequence[str], break_glass: Sequence[str],
                  deployers: Sequence[str]) -> dict:
    """Deny reading the master secret to everyone but `readers` (the bootstrap role),
    break-glass principals and the deployers (the rotation path: a new master_password_version
    is written by `pulumi up`, and the provider reads back every version it writes); deny
    changing or deleting the policy or the secret to all but break-glass principals and the
    deployers. Explicit denies win over any IAM allow ("Policy evaluation logic", IAM guide).
    ArnNotLike: deployer patterns may carry a wildcard for a role's path."""
    exempt_admin = sorted({*(list(break_glass) or [account_root(partition, account)]), *deployers})
    exempt_read = sorted({*readers, *exempt_admin})
    return {
        "Version": "2012-10-17",
        "Statement": [
            deny_all_but("OnlyDatabaseRolesAndBreakGlassRead", SECRET_READ_ACTIONS, exempt_read),
            deny_all_but("OnlyBreakGlassChangesOrDeletes", SECRET_ADMIN_ACTIONS, exempt_admin),
        ],
    }


def login_secret_policy(*, partition: str, account: str, readers: Sequence[str], break_glass: Sequence[str],
                        deployers: Sequence[str], owners: Sequence[str] = ()) -> dict:
    """auth password: the login secret's policy. Reading is denied to every principal but `owners`
    (the owning service's roles, `bulkhead:owner_principals`), `readers` (the bootstrap role, which
    sets the password), the deployers and break-glass; writes and configuration as the master's
    (deployers and break-glass only).

    The deployers must read: the provider reads every version it writes back with GetSecretValue,
    on create and on every refresh (terraform-provider-aws secretsmanager/secret_version.go:
    resourceSecretVersionCreate and resourceSecretVersionRead -> findSecretVersionByTwoPartKey).
    A Deny, not an Allow: in one account an identity policy or a resource policy allowing is
    enough, so only an explicit Deny stops a principal whose IAM policy allows GetSecretValue on *
    ("Policy evaluation logic", IAM User Guide; "Attach a permissions policy to an AWS Secrets
    Manager secret", Secrets Manager User Guide). `owners` empty (never from the catalogue,
    which requires them for auth: password) keeps the old, read-open policy."""
    exempt_admin = sorted({*(list(break_glass) or [account_root(partition, account)]), *deployers})
    statements = []
    if owners:
        exempt_read = sorted({*deployer_principals(owners), *readers, *exempt_admin})
        statements.append(deny_all_but("OnlyOwnerBootstrapDeployersAndBreakGlassRead", SECRET_READ_ACTIONS, exempt_read))
    statements.append(deny_all_but("OnlyBreakGlassChangesOrDeletes", SECRET_ADMIN_ACTIONS, exempt_admin))
    return {"Version": "2012-10-17", "Statement": statements}


def login_secret_arn_pattern(partition: str, region: str, account: str, name_prefix: str) -> str:
    """The login secret's ARN before it exists: its name prefix plus the random suffix Secrets
    Manager and the provider add (`name_prefix`; ARN format
    arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>), so the key
    policy can name it without waiting for the secret (which needs the key first)."""
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name_prefix}*"


def secret_decrypt_deny(sid: str, secret_arn_pattern: str, principals: Sequence[str]) -> dict:
    """A key-policy statement: nobody but `principals` decrypts the secrets matching
    `secret_arn_pattern`. Secrets Manager calls KMS with the encryption context
    {"SecretARN": <arn>, "SecretVersionId": <id>} ("Secret encryption and decryption in AWS
    Secrets Manager", Encryption context), so kms:EncryptionContext:SecretARN names the secret;
    for any other use of the key (RDS, CloudWatch Logs, AWS Backup) the key is absent and StringLike
    does not match, so the statement does not apply."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": ["kms:Decrypt"],
        "Resource": "*",
        "Condition": {
            "StringLike": {"kms:EncryptionContext:SecretARN": secret_arn_pattern},
            "ArnNotLike": {"aws:PrincipalArn": sorted(principals)},
        },
    }


def deny_all_but(sid: str, actions: Sequence[str], principals: Sequence[str]) -> dict:
    """Deny `actions` to every principal whose ARN matches none of `principals` (ArnNotLike:
    an entry may carry a wildcard, e.g. for a role's path)."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": list(actions),
        "Resource": "*",
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": sorted(principals)}},
    }


def deployer_principals(deployers: Sequence[str]) -> list[str]:
    """aws:PrincipalArn patterns of the listed deployers (`bulkhead:deployers`). aws:PrincipalArn of a
    role session is the role's ARN with its path ("AWS global condition context keys"), and a role
    listed without its path (IAM Identity Center roles live under /aws-reserved/sso.amazonaws.com/)
    must still match, or the policy written by one `up` denies the next one: each role or user is
    matched as `<kind>/<name>` and `<kind>/*/<name>`. Names are unique in an account whatever the
    path (IAM "IAM identifiers"), so this admits no one else."""
    patterns = set()
    for arn in deployers:
        head, sep, rest = arn.partition(":role/") if ":role/" in arn else arn.partition(":user/")
        if not sep:
            patterns.add(arn)
            continue
        name = rest.rsplit("/", 1)[-1]
        patterns.update({f"{head}{sep}{name}", f"{head}{sep}*/{name}"})
    return sorted(patterns)


# Recovery points are lost by these; a vault access policy can deny them (AWS Backup
# "Vault access policies" docs: deny backup:DeleteRecoveryPoint etc.).
VAULT_PROTECTED_ACTIONS = (
    "backup:DeleteBackupVaultAccessPolicy",
    "backup:DeleteRecoveryPoint",
    "backup:UpdateRecoveryPointLifecycle",
)
# The deployers put the policy (aws_backup_vault_policy, PutBackupVaultAccessPolicy) on every `up`
# that changes it (a new deployer, a new break-glass principal): without them in the exemption only
# a break-glass principal could deploy that change. They could already write any policy through `up`.
VAULT_POLICY_ACTIONS = ("backup:PutBackupVaultAccessPolicy",)
VAULT_RESTORE_ACTIONS = ("backup:StartRestoreJob",)


def vault_policy(*, partition: str, account: str, break_glass: Sequence[str], restore_roles: Sequence[str],
                 deployers: Sequence[str] = ()) -> dict:
    """Nobody but break-glass principals deletes recovery points, shortens their lifecycle or
    changes this policy; nobody but break-glass principals, the stack's backup role and restore
    testing's service-linked role starts a restore, so a restore cannot land in a security group
    of someone's choosing. Vault access policies govern AWS Backup's APIs only ("Vault access
    policies", AWS Backup guide): the RDS snapshots behind the recovery points stay reachable
    through RDS's own APIs, which only IAM governs."""
    exempt = sorted(list(break_glass) or [account_root(partition, account)])
    restorers = {*exempt, *restore_roles, restore_testing_service_role(partition, account)}
    return {
        "Version": "2012-10-17",
        "Statement": [
            deny_all_but("OnlyBreakGlassDeletes", VAULT_PROTECTED_ACTIONS, exempt),
            deny_all_but("OnlyBreakGlassAndDeployersChangeThePolicy", VAULT_POLICY_ACTIONS,
                         sorted({*exempt, *deployers})),
            deny_all_but("OnlyBreakGlassAndRestoreTestingRestore", VAULT_RESTORE_ACTIONS, restorers),
        ],
    }


def restore_testing_service_role(partition: str, account: str) -> str:
    """Restore testing starts its restore jobs as its service-linked role, whose policy
    (AWSServiceRolePolicyForBackupRestoreTesting) holds backup:StartRestoreJob; any name under
    the restore-testing service's path, so the exemption never names a role someone can create."""
    return f"arn:{partition}:iam::{account}:role/aws-service-role/restore-testing.backup.amazonaws.com/*"


def dumps(document: dict) -> str:
    return json.dumps(document, sort_keys=True)
