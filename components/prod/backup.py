"""AwsBackup: an AWS Backup vault and one plan per tier, selecting primaries by tag.

Point-in-time recovery (RDS automated backups) covers "undo the last hour";
AWS Backup adds retained recovery points, copied to the DR region for tiers that
ask for it. RDS is not a resource type AWS Backup fully manages, so a recovery point
of an RDS instance is an RDS snapshot encrypted with the *source database's* key,
not with the vault's key ("Encryption for backups in AWS Backup"); the vault key
covers what AWS Backup itself stores. Who can delete or restore is decided by the
vault access policy: break-glass principals only (and the backup role for restore
testing), never "anyone with backup:* in the account".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import pulumi
import pulumi_aws as aws

from components.prod import key_policies
from components.catalogue.model import Tier, VaultLock
from components.prod.context import AwsContext
from components.prod.naming import BACKUP_NAME_MAX, aws_name, backup_name, fitted_name
from components.tags import TAG_ROLE, TAG_STACK, TAG_TIER

BACKUP_POLICIES = (
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
)


@dataclass
class AwsBackupArgs:
    context: AwsContext
    tiers: Mapping[str, Tier]
    dr_region: Optional[str] = None
    # The stack's own AWS provider settings (profile, assume_roles, ...): the DR provider
    # must use the same account and credentials, only another region.
    dr_provider_settings: Mapping[str, Any] = field(default_factory=dict)
    vault_lock: Optional[VaultLock] = None


class AwsBackup(pulumi.ComponentResource):
    vault_name: pulumi.Output
    vault_arn: pulumi.Output
    role_arn: pulumi.Output
    plan_ids: dict

    def __init__(self, name: str, args: AwsBackupArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:AwsBackup", name, None, opts)
        self._name = name
        self._args = args
        self._tags = {TAG_STACK: args.context.stack}
        role = self._create_role()
        vault = self._create_vault(f"{name}-vault", None, args.context.region, role)
        dr_vault = None
        if args.dr_region:
            # A provider for the DR region: the copy must live outside the stack's region.
            dr = aws.Provider(
                f"{name}-dr-provider",
                region=args.dr_region,
                **dict(args.dr_provider_settings),
                opts=pulumi.ResourceOptions(parent=self),
            )
            dr_vault = self._create_vault(f"{name}-dr-vault", dr, args.dr_region, role)
        self.plan_ids = {}
        for tier_name, tier in sorted(args.tiers.items()):
            self.plan_ids[tier_name] = self._create_plan(tier_name, tier, vault, dr_vault, role).id
        self.vault_name = vault.name
        self.vault_arn = vault.arn
        self.role_arn = role.arn
        self.register_outputs({"vault_name": self.vault_name, "vault_arn": self.vault_arn, "role_arn": self.role_arn,
                               "plan_ids": self.plan_ids})

    def _vault_key_policy(self, region: pulumi.Input[str]) -> pulumi.Output:
        args = self._args

        def document(values) -> str:
            partition, region_name, account = values
            return key_policies.dumps(key_policies.key_policy(
                partition=partition, region=region_name, account=account, admins=args.context.key_admins,
                services=key_policies.VAULT_KEY_SERVICES,
            ))

        return pulumi.Output.all(args.context.partition, region, args.context.account).apply(document)

    def _create_vault(self, name: str, provider: Optional[aws.Provider], region: pulumi.Input[str],
                      role: aws.iam.Role) -> aws.backup.Vault:
        opts = pulumi.ResourceOptions(parent=self, provider=provider, protect=self._args.context.protect)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"bulkhead {self._args.context.stack}: backup vault {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # Explicit policy: used only through AWS Backup and RDS of the vault's region.
            policy=self._vault_key_policy(region),
            tags={**self._tags, TAG_ROLE: "backup-key"},
            opts=opts,
        )
        vault = aws.backup.Vault(
            name,
            name=backup_name("bulkhead", self._args.context.stack, "dr" if provider else "primary"),
            kms_key_arn=key.arn,
            # Never force_destroy: a vault with recovery points must be emptied deliberately.
            force_destroy=False,
            tags={**self._tags, TAG_ROLE: "backup-vault"},
            opts=opts,
        )
        self._create_vault_policy(name, vault, provider, role)
        if self._args.vault_lock is not None:
            self._create_vault_lock(name, vault, provider)
        return vault

    def _create_vault_policy(self, name: str, vault: aws.backup.Vault, provider: Optional[aws.Provider],
                             role: aws.iam.Role) -> None:
        args = self._args

        def document(values) -> str:
            partition, account, role_arn = values
            return key_policies.dumps(key_policies.vault_policy(
                partition=partition, account=account, break_glass=args.context.break_glass_principals, restore_roles=[role_arn],
                deployers=args.context.deployer_principals,
            ))

        # aws_backup_vault_policy: backup_vault_name + policy (PutBackupVaultAccessPolicy). Once it is in
        # place, changing it again needs a deployer or a break-glass principal: it denies everyone else.
        aws.backup.VaultPolicy(
            f"{name}-policy",
            backup_vault_name=vault.name,
            policy=pulumi.Output.all(args.context.partition, args.context.account, role.arn).apply(document),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )

    def _create_vault_lock(self, name: str, vault: aws.backup.Vault, provider: Optional[aws.Provider]) -> None:
        lock = self._args.vault_lock
        # aws_backup_vault_lock_configuration (PutBackupVaultLockConfiguration). With
        # changeable_for_days this is compliance mode: once that grace time has passed the lock
        # can never be removed and retention never shortened, by anyone, the root user included.
        aws.backup.VaultLockConfiguration(
            f"{name}-lock",
            backup_vault_name=vault.name,
            min_retention_days=lock.min_retention_days,
            max_retention_days=lock.max_retention_days,
            changeable_for_days=lock.changeable_for_days,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=self._args.context.protect),
        )

    def _create_role(self) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{self._name}-role",
            name_prefix=aws_name("bulkhead", self._args.context.stack, "backup", max_length=37) + "-",
            description="Lets AWS Backup snapshot and restore the stack's databases",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                }
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        for index, arn in enumerate(BACKUP_POLICIES):
            aws.iam.RolePolicyAttachment(
                f"{self._name}-role-policy-{index}",
                role=role.name,
                policy_arn=arn,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return role

    def _create_plan(self, tier_name: str, tier: Tier, vault, dr_vault, role) -> aws.backup.Plan:
        copy_actions = []
        if dr_vault is not None and tier.copy_to_dr:
            copy_actions.append({"destination_vault_arn": dr_vault.arn, "lifecycle": {"delete_after": tier.retention_days}})
        plan = aws.backup.Plan(
            f"{self._name}-{tier_name}",
            name=backup_name("bulkhead", self._args.context.stack, tier_name),
            rules=[
                {
                    "rule_name": fitted_name(f"{tier_name}-scheduled", BACKUP_NAME_MAX),
                    "target_vault_name": vault.name,
                    "schedule": tier.schedule,
                    "start_window": 60,
                    "completion_window": 240,
                    "lifecycle": {"delete_after": tier.retention_days},
                    "copy_actions": copy_actions,
                    "recovery_point_tags": {**self._tags, TAG_TIER: tier_name},
                }
            ],
            tags={**self._tags, TAG_TIER: tier_name},
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Conditions are ANDed (selection_tags would be ORed): this stack's primaries of this tier.
        aws.backup.Selection(
            f"{self._name}-{tier_name}-selection",
            name=backup_name("bulkhead", self._args.context.stack, tier_name),
            plan_id=plan.id,
            iam_role_arn=role.arn,
            resources=["arn:aws:rds:*:*:db:*"],
            conditions=[
                {
                    "string_equals": [
                        {"key": f"aws:ResourceTag/{TAG_TIER}", "value": tier_name},
                        {"key": f"aws:ResourceTag/{TAG_STACK}", "value": self._args.context.stack},
                        {"key": f"aws:ResourceTag/{TAG_ROLE}", "value": "primary"},
                    ]
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return plan
