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
from components.prod import key_policies
from components.prod.naming import aws_name
from components.tags import TAG_ROLE, TAG_STACK

VPC_CIDR = "10.42.0.0/16"
MONITORING_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass
class AwsFoundationArgs:
    stack: str
    network: Optional[Network] = None
    availability_zones: int = 3
    # `bulkhead:flow_logs` for the stack-created VPC (REJECT, ALL, none), kept this many days
    # under its own key, whose policy needs where it is (partition, region, account, key admins).
    flow_logs: str = "none"
    flow_log_retention_days: int = 90
    partition: Optional[pulumi.Input[str]] = None
    region: Optional[pulumi.Input[str]] = None
    account: Optional[pulumi.Input[str]] = None
    key_admins: Sequence[str] = ()
    protect: bool = False


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
        self._args = args
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
        self._baseline(vpc)
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

    def _baseline(self, vpc: aws.ec2.Vpc) -> None:
        """AWS's baseline for a VPC the stack creates (Security Hub FSBP EC2.2, EC2.6)."""
        # EC2.2: the default group keeps AWS's allow-all rules unless managed. Adopting it with no
        # ingress/egress blocks makes the provider revoke every rule it has ("When Terraform first
        # adopts the default security group, it immediately removes all ingress and egress rules",
        # aws_default_security_group docs; ec2/vpc_default_security_group.go). Nothing of bulkhead's
        # uses it: every resource names its own group.
        aws.ec2.DefaultSecurityGroup(
            f"{self._name}-default-sg",
            vpc_id=vpc.id,
            tags={**self._tags, "Name": f"bulkhead-{self._tags[TAG_STACK]}-default-unused"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        if self._args.flow_logs != "none":
            self._create_flow_log(vpc)

    def _create_flow_log(self, vpc: aws.ec2.Vpc) -> None:
        """EC2.6: a flow log of the VPC into a log group of the stack's, under a key of its own."""
        a = self._args
        group_name = f"/bulkhead/{aws_name(self._tags[TAG_STACK])}/vpc-flow-logs"
        group_arn = pulumi.Output.all(a.partition, a.region, a.account).apply(
            lambda v: f"arn:{v[0]}:logs:{v[1]}:{v[2]}:log-group:{group_name}")
        key = aws.kms.Key(
            f"{self._name}-flow-logs-key",
            description=f"bulkhead {self._tags[TAG_STACK]}: VPC flow logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # CloudWatch Logs may use it for this group only (kms:EncryptionContext:aws:logs:arn,
            # "Encrypt log data in CloudWatch Logs using AWS KMS").
            policy=pulumi.Output.all(a.partition, a.region, a.account, group_arn).apply(
                lambda v: key_policies.dumps(key_policies.key_policy(
                    partition=v[0], region=v[1], account=v[2], admins=a.key_admins, services=("logs",),
                    log_group_arns=[v[3]]))),
            tags={**self._tags, TAG_ROLE: "flow-logs"},
            # Deleting it makes the kept flow logs unreadable (rds-protected-resource covers every key).
            opts=pulumi.ResourceOptions(parent=self, protect=a.protect),
        )
        group = aws.cloudwatch.LogGroup(
            f"{self._name}-flow-logs",
            name=group_name,
            retention_in_days=a.flow_log_retention_days,
            kms_key_id=key.arn,
            tags={**self._tags, TAG_ROLE: "flow-logs"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        role = aws.iam.Role(
            f"{self._name}-flow-logs",
            name_prefix=aws_name("bulkhead", self._tags[TAG_STACK], "flow", max_length=37) + "-",
            description="Lets VPC Flow Logs write to the stack's flow log group only",
            assume_role_policy=pulumi.Output.all(a.partition, a.region, a.account).apply(
                lambda v: json.dumps(flow_log_trust_policy(v[0], v[1], v[2]))),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-flow-logs-write",
            name="write-flow-log-group",
            role=role.id,
            policy=group_arn.apply(lambda arn: json.dumps(flow_log_role_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self),
        )
        # aws_flow_log: log_destination_type cloud-watch-logs needs iam_role_arn and a group ARN.
        aws.ec2.FlowLog(
            f"{self._name}-flow-log",
            vpc_id=vpc.id,
            traffic_type=a.flow_logs,
            log_destination_type="cloud-watch-logs",
            log_destination=group.arn,
            iam_role_arn=role.arn,
            tags={**self._tags, "Name": f"bulkhead-{self._tags[TAG_STACK]}"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

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


def flow_log_trust_policy(partition: str, region: str, account: str) -> dict:
    """VPC Flow Logs may assume the role for this account's flow logs only (confused-deputy
    prevention with aws:SourceAccount / aws:SourceArn, VPC user guide "IAM role for publishing
    flow logs to CloudWatch Logs")."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"},
            },
        }],
    }


def flow_log_role_policy(group_arn: str) -> dict:
    """Write to the flow log group only: the group exists (the stack makes it), so no
    logs:CreateLogGroup and no `*` resource (AWS's example policy has both)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WriteThisGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Resource": [group_arn, f"{group_arn}:log-stream:*"],
        }],
    }
