"""RestoreTesting: AWS Backup restore testing, so every tier's backups are proven restorable.

Per tier in use, one `aws.backup.RestoreTestingPlan` restores the latest snapshot recovery
point of the primary vault on the tier's `restore_test_schedule`; per database, one
`RestoreTestingSelection` picks that database's primary and overrides where the test
instance goes: the database's own subnet group and security group, so a test restore is
reachable by exactly who can reach the database (AWS Backup "Restore testing",
"Restore testing inferred metadata": `RestoreMetadataOverrides`). AWS Backup deletes the
restored instance after the validation window. Well-Architected REL09-BP04 asks for this.

Plan and selection names allow only letters, digits and underscores, 1-50 characters
(pulumi-aws RestoreTestingPlan `name`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Mapping, Optional

import pulumi
import pulumi_aws as aws

from components.catalogue.model import Tier
from components.tags import TAG_STACK, TAG_TIER

NAME_LIMIT = 50
MAX_SELECTION_WINDOW_DAYS = 365  # RecoveryPointSelection.SelectionWindowDays: 1-365


def restore_testing_name(*parts: str) -> str:
    """`a_b_c` from the parts, letters/digits/underscores only, at most 50 characters
    (a short hash of the whole keeps truncated names distinct)."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", "_".join(parts)).strip("_")
    if len(text) <= NAME_LIMIT:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[:NAME_LIMIT - 9].rstrip('_')}_{digest}"


@dataclass
class RestoreTarget:
    """Where one database's test restore goes, and what it restores from."""

    tier: str
    instance_arn: pulumi.Input[str]
    subnet_group_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]


@dataclass
class RestoreTestingArgs:
    stack: str
    tiers: Mapping[str, Tier]
    vault_arn: pulumi.Input[str]
    # The stack's backup role (AWSBackupServiceRolePolicyForRestores attached).
    role_arn: pulumi.Input[str]
    databases: Mapping[str, RestoreTarget]


class RestoreTesting(pulumi.ComponentResource):
    plan_names: dict

    def __init__(self, name: str, args: RestoreTestingArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:RestoreTesting", name, None, opts)
        self._name = name
        self._args = args
        self.plan_names = {}
        for tier_name in sorted({t.tier for t in args.databases.values()}):
            plan = self._create_plan(tier_name, args.tiers[tier_name])
            self.plan_names[tier_name] = plan.name
            for db_name, target in sorted(args.databases.items()):
                if target.tier == tier_name:
                    self._create_selection(plan, db_name, target)
        self.register_outputs({"plan_names": self.plan_names})

    def _create_plan(self, tier_name: str, tier: Tier) -> aws.backup.RestoreTestingPlan:
        return aws.backup.RestoreTestingPlan(
            f"{self._name}-{tier_name}",
            name=restore_testing_name("bulkhead", self._args.stack, tier_name),
            schedule_expression=tier.restore_test_schedule,
            recovery_point_selection={
                # The newest snapshot in the stack's vault: what a real restore would use.
                "algorithm": "LATEST_WITHIN_WINDOW",
                "include_vaults": [self._args.vault_arn],
                "recovery_point_types": ["SNAPSHOT"],
                "selection_window_days": min(tier.retention_days, MAX_SELECTION_WINDOW_DAYS),
            },
            tags={TAG_STACK: self._args.stack, TAG_TIER: tier_name},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_selection(self, plan: aws.backup.RestoreTestingPlan, db_name: str, target: RestoreTarget) -> None:
        aws.backup.RestoreTestingSelection(
            f"{self._name}-{db_name}",
            name=restore_testing_name(db_name),
            restore_testing_plan_name=plan.name,
            protected_resource_type="RDS",
            protected_resource_arns=[target.instance_arn],
            iam_role_arn=self._args.role_arn,
            # Into the database's own network boundary, never the VPC's default group or subnets.
            restore_metadata_overrides={
                "dbSubnetGroupName": target.subnet_group_name,
                "vpcSecurityGroupIds": pulumi.Output.from_input(target.security_group_id).apply(lambda sg: json.dumps([sg])),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
