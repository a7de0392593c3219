"""VpcEndpoints: the AWS APIs a service and a bootstrap function need, inside the isolated VPC.

The stack-created VPC has no internet gateway and no NAT, so without these a Fargate task
cannot fetch its secret (`valueFrom`), pull its image or ship its logs at start
(ResourceInitializationError). Interface endpoints sit in the private subnets behind one
security group that admits 443 only from this stack's client and bootstrap groups; S3 is a
gateway endpoint on the VPC's route table (ECR keeps image layers in S3).

`admit_https` is the one place a group gets 443 to the endpoints: it writes the pair of
rules (the group's egress to the endpoint group, the endpoint group's ingress from it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.prod.naming import aws_name
from components.tags import TAG_ROLE, TAG_STACK

HTTPS = 443
# What a Fargate task and the bootstrap function call at start and at run time:
# secretsmanager (valueFrom, master secret), kms (decrypt), ecr.api + ecr.dkr (image pull),
# logs (awslogs driver), sts (role credentials; IAM auth tokens are signed locally). The AWS
# knowledge center "ecs-fargate-docker-timeout-error" lists ECR, S3 (layers), Secrets Manager
# for Fargate tasks in private subnets without NAT; Fargate needs no ECS endpoints itself.
INTERFACE_SERVICES = ("secretsmanager", "kms", "ecr.api", "ecr.dkr", "logs", "sts")
# ECR stores layers in S3; a gateway endpoint has no hourly charge (PrivateLink pricing page).
GATEWAY_SERVICES = ("s3",)


@dataclass
class VpcEndpointsArgs:
    stack: str
    vpc_id: pulumi.Input[str]
    # One subnet per AZ: an interface endpoint gets one network interface in each.
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    # The route tables of those subnets (the VPC's main table when none is associated).
    route_table_ids: Sequence[pulumi.Input[str]]
    region: pulumi.Input[str]
    # For the endpoint policies (endpoint_policy): whose principals may use the endpoints.
    account: Optional[pulumi.Input[str]] = None
    partition: pulumi.Input[str] = "aws"
    # Which endpoints: all of them in the stack's own VPC; in a given network (`bulkhead:network`
    # with secretsmanager_endpoint_exists: false) only the Secrets Manager one the bootstrap needs.
    interface_services: Sequence[str] = INTERFACE_SERVICES
    gateway_services: Sequence[str] = GATEWAY_SERVICES
    # Private DNS: the services' public names resolve to these endpoints for the whole VPC. Right in
    # the stack's own VPC (Fargate's agent and SDKs need no endpoint URL); off in a given, possibly
    # shared VPC, where it would take Secrets Manager's name over for every workload in it
    # (secrets_endpoint_url then tells the bootstrap function where to call).
    private_dns: bool = True


class VpcEndpoints(pulumi.ComponentResource):
    security_group_id: pulumi.Output
    endpoint_ids: dict

    def __init__(self, name: str, args: VpcEndpointsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:VpcEndpoints", name, None, opts)
        self._name = name
        self._args = args
        self._tags = {TAG_STACK: args.stack, TAG_ROLE: "endpoints"}
        group = self._create_security_group()
        self.security_group_id = group.id
        # The endpoint resources, for what must wait for one (the bootstrap invocation: Secrets Manager).
        self.endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        for service in args.interface_services:
            self.endpoints[service] = self._create_interface_endpoint(service)
        for service in args.gateway_services:
            self.endpoints[service] = self._create_gateway_endpoint(service)
        # The S3 gateway's prefix list (aws_vpc_endpoint `prefix_list_id`, set for Gateway endpoints):
        # what a Fargate task's group needs egress to for ECR image layers (None without a gateway).
        self.s3_prefix_list_id = self.endpoints["s3"].prefix_list_id if "s3" in self.endpoints else None
        self.endpoint_ids = {service: endpoint.id for service, endpoint in self.endpoints.items()}
        # Without private DNS: the Secrets Manager endpoint's own https URL, for its callers' SDK
        # (None with private DNS: the public name already resolves to it).
        self.secrets_endpoint_url = (
            self.endpoints["secretsmanager"].dns_entries.apply(endpoint_url)
            if "secretsmanager" in self.endpoints and not args.private_dns else None)
        self.register_outputs({"security_group_id": self.security_group_id, "endpoint_ids": self.endpoint_ids})

    def _opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _service_name(self, service: str) -> pulumi.Output:
        # com.amazonaws.<region>.<service> (VpcEndpoint service_name, pulumi-aws docs)
        return pulumi.Output.from_input(self._args.region).apply(lambda region: f"com.amazonaws.{region}.{service}")

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        # No inline rules: every admitted group comes as its own rule resource (admit_https),
        # and the provider removes AWS's default allow-all egress.
        return aws.ec2.SecurityGroup(
            f"{self._name}-sg",
            name_prefix=aws_name("bulkhead", self._args.stack, "endpoints") + "-",
            # EC2 GroupDescription allows a-zA-Z0-9, spaces and ._-:/()#,@[]+=&;{}!$* only (cfn-lint E3031).
            description="AWS API endpoints: 443 from the client and bootstrap groups of this stack only",
            vpc_id=self._args.vpc_id,
            revoke_rules_on_delete=True,
            tags={**self._tags, "Name": f"bulkhead-{self._args.stack}-endpoints"},
            opts=self._opts(),
        )

    def _create_interface_endpoint(self, service: str) -> aws.ec2.VpcEndpoint:
        return aws.ec2.VpcEndpoint(
            f"{self._name}-{service.replace('.', '-')}",
            vpc_id=self._args.vpc_id,
            service_name=self._service_name(service),
            vpc_endpoint_type="Interface",
            subnet_ids=self._args.subnet_ids,
            security_group_ids=[self.security_group_id],
            # On (the stack's own VPC): the service's public name resolves to the endpoint inside the
            # VPC, so SDKs and the ECS agent need no endpoint URL; needs enable_dns_support/hostnames.
            # Off (a given VPC): "When you enable private DNS ... requests to the service's default DNS
            # name from the VPC resolve to the endpoint" (PrivateLink guide, "Access an AWS service using
            # an interface VPC endpoint", DNS hostnames), i.e. for every workload of a shared VPC, whose
            # other calls then meet this endpoint's group (bulkhead's groups only) and policy. Callers
            # use the endpoint-specific name instead (secrets_endpoint_url). terraform-provider-aws
            # ec2/vpc_endpoint.go: private_dns_enabled is updated in place (ModifyVpcEndpoint
            # PrivateDnsEnabled), so stacks created with it on switch without a replacement.
            private_dns_enabled=self._args.private_dns,
            policy=self._policy(service),
            tags={**self._tags, "Name": f"bulkhead-{self._args.stack}-{service}"},
            opts=self._opts(),
        )

    def _policy(self, service: str) -> Optional[pulumi.Output]:
        if self._args.account is None:
            return None
        return pulumi.Output.all(self._args.partition, self._args.region, self._args.account).apply(
            lambda v: json.dumps(endpoint_policy(service, v[0], v[1], v[2]), sort_keys=True))

    def _create_gateway_endpoint(self, service: str) -> aws.ec2.VpcEndpoint:
        return aws.ec2.VpcEndpoint(
            f"{self._name}-{service}",
            vpc_id=self._args.vpc_id,
            service_name=self._service_name(service),
            vpc_endpoint_type="Gateway",
            route_table_ids=list(self._args.route_table_ids),
            policy=self._policy(service),
            tags={**self._tags, "Name": f"bulkhead-{self._args.stack}-{service}"},
            opts=self._opts(),
        )


def endpoint_url(dns_entries) -> Optional[str]:
    """`https://` + the endpoint's Regional DNS name, from aws_vpc_endpoint `dns_entry`.

    An interface endpoint has a Regional name `vpce-<id>.<service>.<region>.vpce.amazonaws.com` and
    one zonal name per subnet `vpce-<id>-<az>.<service>...` (PrivateLink guide, "DNS hostnames";
    with private DNS, also the service's own name): the shortest `vpce-` name is the Regional one,
    whatever order DescribeVpcEndpoints lists them in. Secrets Manager's guide shows exactly this
    use: `--endpoint-url https://vpce-...secretsmanager.<region>.vpce.amazonaws.com` ("Using an
    AWS Secrets Manager VPC endpoint"); its certificate covers that name."""
    names = []
    for entry in dns_entries or []:
        name = (entry.get("dns_name") or entry.get("dnsName")) if isinstance(entry, dict) else getattr(entry, "dns_name", None)
        if isinstance(name, str) and name.startswith("vpce-"):
            names.append(name)
    if not names:
        return None
    return "https://" + min(names, key=lambda n: (len(n), n))


def ecr_layer_bucket_arn(partition: str, region: str) -> str:
    """Where ECR keeps image layers: "arn:aws:s3:::prod-region-starport-layer-bucket/*" is the
    one bucket the S3 gateway endpoint policy must allow for image pulls (ECR user guide,
    "Amazon ECR interface VPC endpoints", Minimum Amazon S3 bucket permissions for Amazon ECR)."""
    return f"arn:{partition}:s3:::prod-{region}-starport-layer-bucket/*"


def endpoint_policy(service: str, partition: str, region: str, account: str) -> dict:
    """An endpoint policy replaces the default full access (VPC endpoints are "Full access" unless
    given a policy; PrivateLink guide, "Control access to VPC endpoints using endpoint policies"):
    - the S3 gateway: reading ECR's layer bucket of this region and nothing else, so the VPC
      cannot write to any bucket of any account through it;
    - interface endpoints: principals of this account only (aws:PrincipalAccount), so credentials
      of another account cannot be used through them to move data out."""
    if service in GATEWAY_SERVICES:
        return {"Version": "2012-10-17", "Statement": [{
            "Sid": "EcrImageLayersOnly", "Effect": "Allow", "Principal": "*",
            "Action": ["s3:GetObject"], "Resource": [ecr_layer_bucket_arn(partition, region)],
        }]}
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "ThisAccountOnly", "Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalAccount": account}},
    }]}


def admit_https(name: str, client_security_group_id: pulumi.Input[str], endpoint_security_group_id: pulumi.Input[str],
                description: str, tags: dict, parent: pulumi.Resource,
                egress: bool = True) -> aws.vpc.SecurityGroupIngressRule:
    """443 from `client_security_group_id` to the endpoints, and nothing else: the client
    group's egress rule (unless its owner writes it: egress=False) and the endpoint group's
    matching ingress rule, returned (what must exist before the client calls an endpoint)."""
    if egress:
        _egress(name, client_security_group_id, endpoint_security_group_id, description, tags, parent)
    return aws.vpc.SecurityGroupIngressRule(
        f"{name}-from-client",
        security_group_id=endpoint_security_group_id,
        referenced_security_group_id=client_security_group_id,
        ip_protocol="tcp",
        from_port=HTTPS,
        to_port=HTTPS,
        description=f"AWS API endpoints from {description}",
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def admit_s3_gateway(name: str, client_security_group_id: pulumi.Input[str], prefix_list_id: pulumi.Input[str],
                     description: str, tags: dict, parent: pulumi.Resource) -> aws.vpc.SecurityGroupEgressRule:
    """443 from a client group to S3 through the gateway endpoint (its prefix list): ECR serves image
    layers from S3, so a Fargate task without it fails with CannotPullContainerError (AWS knowledge
    center "ecs-fargate-docker-timeout-error"; ECR user guide "Amazon ECR interface VPC endpoints":
    "Create the Amazon S3 gateway endpoint", with the task's security group allowing it)."""
    return aws.vpc.SecurityGroupEgressRule(
        f"{name}-to-s3",
        security_group_id=client_security_group_id,
        prefix_list_id=prefix_list_id,
        ip_protocol="tcp",
        from_port=HTTPS,
        to_port=HTTPS,
        description=f"{description} to S3 (ECR image layers) through the gateway endpoint",
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _egress(name: str, client_security_group_id, endpoint_security_group_id, description: str, tags: dict,
            parent: pulumi.Resource) -> None:
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-to-endpoints",
        security_group_id=client_security_group_id,
        referenced_security_group_id=endpoint_security_group_id,
        ip_protocol="tcp",
        from_port=HTTPS,
        to_port=HTTPS,
        description=f"{description} to the AWS API endpoints",
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
