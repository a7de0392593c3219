"""The stack-wide facts every prod component needs, passed as one object instead of the same
fields to each component: who (partition, region, account, key administrators, break-glass,
deployers), where (the network the databases live in) and what runs in it (the bootstrap
function's package). Built once in components/prod/stack.py; no defaults, so no test value
can reach a real stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi


@dataclass(frozen=True)
class AwsNetwork:
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    subnet_group_name: pulumi.Input[str]
    vpc_cidr: pulumi.Input[str]
    # The group of the stack's VPC endpoints (None with `bulkhead:network`: that network
    # provides the path to the AWS APIs), and the Secrets Manager endpoint itself, which a
    # bootstrap function's first call needs (creation ends once it is `available`:
    # terraform-provider-aws ec2/vpc_endpoint.go, waitVPCEndpointAvailable).
    endpoint_security_group_id: pulumi.Input[str] | None
    secrets_endpoint: Sequence[pulumi.Resource]
    # The Secrets Manager endpoint's own https URL when it has no private DNS (the stack's endpoint
    # in a given VPC: components/prod/vpc_endpoints.py), for the bootstrap function; else None.
    secrets_endpoint_url: pulumi.Input[str] | None


@dataclass(frozen=True)
class BootstrapPackage:
    """The bootstrap function's package (components/prod/lambda_archive.py), built once per stack."""

    path: str
    hash: str  # base64 SHA-256, Lambda's CodeSha256


@dataclass(frozen=True)
class AwsContext:
    stack: str
    protect: bool
    # Where policy ARNs point.
    partition: pulumi.Input[str]
    region: pulumi.Input[str]
    account: pulumi.Input[str]
    # `bulkhead:key_admins` (empty: the account root, i.e. IAM decides who administers).
    key_admins: Sequence[str]
    # `bulkhead:break_glass_principals` (empty: the account root user only).
    break_glass_principals: Sequence[str]
    # Who runs `pulumi up` (aws:PrincipalArn patterns): it writes the master secret's versions
    # (PutSecretValue) and the provider reads each one back with GetSecretValue right after
    # (terraform-provider-aws secretsmanager/secret_version.go, Create -> findSecretVersionByTwoPartKey),
    # so the secret policy must let it.
    deployer_principals: pulumi.Input[Sequence[str]]
    network: AwsNetwork
    monitoring_role_arn: pulumi.Input[str]
    bootstrap: BootstrapPackage
