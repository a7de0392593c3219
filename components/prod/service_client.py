"""ServiceClient: the one client security group of a service.

A service's tasks wear this group; each of its databases admits exactly this
group on the database port. One group per service, shared by its databases, so a
service never needs, or gets, another service's group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import pulumi
import pulumi_aws as aws

from components.catalogue.model import Database
from components.prod.naming import aws_name
from components.tags import TAG_ROLE, database_tags
from components.prod.vpc_endpoints import admit_https, admit_s3_gateway


@dataclass
class ServiceClientArgs:
    stack: str
    owner: str
    # The service's databases (name -> entry): the group is tagged with all of them.
    databases: Mapping[str, Database]
    vpc_id: pulumi.Input[str]
    # The stack's VPC endpoint group: the service gets 443 to it (Secrets Manager, ECR, logs, ...).
    # None with `bulkhead:network`: the network's owner provides that path.
    endpoint_security_group_id: Optional[pulumi.Input[str]] = None
    # The S3 gateway endpoint's prefix list (ECR image layers); None with `bulkhead:network`.
    s3_prefix_list_id: Optional[pulumi.Input[str]] = None


class ServiceClient(pulumi.ComponentResource):
    security_group_id: pulumi.Output

    def __init__(self, name: str, args: ServiceClientArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:ServiceClient", name, None, opts)
        tags = {**database_tags(args.stack, args.databases), TAG_ROLE: "client"}
        # No inline rules: egress is added per database (to that database's group only) and to
        # the VPC endpoints on 443; AWS's default allow-all egress is removed by the provider.
        group = aws.ec2.SecurityGroup(
            f"{name}-client",
            name_prefix=aws_name("bulkhead", args.stack, args.owner, "client") + "-",
            description=f"Wear this to reach the databases of {args.owner}",
            vpc_id=args.vpc_id,
            revoke_rules_on_delete=True,
            tags={**tags, "Name": f"{args.owner}-db-client"},
            # Left in AWS, not deleted, when the service leaves the catalogue (an owner change that
            # empties it, its last database removed): its tasks still wear it, and EC2 refuses to delete
            # a group a network interface uses (DeleteSecurityGroup: DependencyViolation, "resource
            # sg-... has a dependent object"), which terraform-provider-aws retries for the whole delete
            # timeout (ec2/vpc_security_group.go resourceSecurityGroupDelete: RetryWhenAWSErrCodeEquals
            # errCodeDependencyViolation/errCodeInvalidGroupInUse, after revoking, with
            # revoke_rules_on_delete, every rule of any group that references it) before failing the
            # `up`. Retained (Pulumi `retainOnDelete`: the
            # engine drops it from the state without calling Delete), the `up` succeeds and the group is
            # inert: its rules are separate resources, deleted in that `up`, and no database or endpoint
            # group admits it any more. docs/prod-stack.md, "Owner changes", says how to delete it later
            # (and before `destroy` of a stack-created VPC).
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )
        self.security_group_id = group.id
        if args.endpoint_security_group_id is not None:
            admit_https(f"{name}-https", group.id, args.endpoint_security_group_id, f"the tasks of {args.owner}",
                        {**tags}, self)
        if args.s3_prefix_list_id is not None:
            admit_s3_gateway(f"{name}-https", group.id, args.s3_prefix_list_id, f"the tasks of {args.owner}", {**tags}, self)
        self.register_outputs({"security_group_id": self.security_group_id})
