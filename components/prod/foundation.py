"""AwsFoundation: what every database of a stack shares - subnets and the monitoring role.

Given `bulkhead:network`, the databases go into its subnets; otherwise the stack
creates a VPC with isolated private subnets in three AZs and no internet gateway,
so there is no route to or from the internet at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.catalogue.model import Network
from components.prod.naming import aws_name
from components.tags import TAG_STACK

VPC_CIDR = "10.42.0.0/16"
MONITORING_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass
class AwsFoundationArgs:
    stack: str
    network: Optional[Network] = None
    availability_zones: int = 3


class AwsFoundation(pulumi.ComponentResource):
    vpc_id: pulumi.Output
    vpc_cidr: pulumi.Output
    subnet_ids: pulumi.Output
    # The route tables of the created subnets (the VPC's main table); empty for a given network.
    route_table_ids: list
    subnet_group_name: pulumi.Output
    monitoring_role_arn: pulumi.Output
    # bulkhead:network says its VPC already has a Secrets Manager endpoint (no VPC of ours).
    secretsmanager_endpoint_exists: bool

    def __init__(self, name: str, args: AwsFoundationArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:AwsFoundation", name, None, opts)
        self._name = name
        self._tags = {TAG_STACK: args.stack}
        self.route_table_ids = []
        self.secretsmanager_endpoint_exists = bool(args.network and args.network.secretsmanager_endpoint_exists)
        if args.network is not None:
            self.vpc_id = pulumi.Output.from_input(args.network.vpc_id)
            subnet_ids: Sequence = args.network.subnet_ids
            self.vpc_cidr = aws.ec2.get_vpc_output(id=args.network.vpc_id).cidr_block
        else:
            self.vpc_id, subnet_ids = self._create_isolated_vpc(args.availability_zones)
            self.vpc_cidr = pulumi.Output.from_input(VPC_CIDR)
        self.subnet_ids = pulumi.Output.from_input(subnet_ids)
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name_prefix=aws_name("bulkhead", args.stack) + "-",
            description=f"bulkhead {args.stack}: private subnets for the service databases",
            subnet_ids=subnet_ids,
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.subnet_group_name = subnet_group.name
        self.monitoring_role_arn = self._create_monitoring_role().arn
        self.register_outputs(
            {"vpc_id": self.vpc_id, "subnet_ids": self.subnet_ids, "subnet_group_name": self.subnet_group_name,
             "monitoring_role_arn": self.monitoring_role_arn}
        )

    def _create_isolated_vpc(self, count: int):
        vpc = aws.ec2.Vpc(
            f"{self._name}-vpc",
            cidr_block=VPC_CIDR,
            enable_dns_hostnames=True,  # RDS endpoints resolve only with DNS hostnames on
            enable_dns_support=True,
            tags={**self._tags, "Name": f"bulkhead-{self._tags[TAG_STACK]}"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The subnets have no explicit route table association, so they use the VPC's main
        # table: the S3 gateway endpoint's route goes there (Vpc.main_route_table_id).
        self.route_table_ids = [vpc.main_route_table_id]
        zones = aws.get_availability_zones_output(state="available")
        subnets = []
        for index in range(count):
            subnets.append(
                aws.ec2.Subnet(
                    f"{self._name}-private-{index}",
                    vpc_id=vpc.id,
                    cidr_block=f"10.42.{index * 16}.0/20",
                    availability_zone=zones.names[index],
                    # No public IPs and no internet gateway: the subnets are isolated.
                    map_public_ip_on_launch=False,
                    tags={**self._tags, "Name": f"bulkhead-{self._tags[TAG_STACK]}-private-{index}"},
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        return vpc.id, [s.id for s in subnets]

    def _create_monitoring_role(self) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{self._name}-monitoring",
            name_prefix=aws_name("bulkhead", self._tags[TAG_STACK], "mon", max_length=37) + "-",
            description="Lets RDS enhanced monitoring publish OS metrics",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.iam.RolePolicyAttachment(
            f"{self._name}-monitoring-policy",
            role=role.name,
            policy_arn=MONITORING_POLICY_ARN,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role
