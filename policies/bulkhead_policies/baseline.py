"""Baseline (issue 20): what AWS's own baseline (Security Hub FSBP) and the attacker review ask of
the resources the stack creates - secrets closed to writes, endpoint policies, the VPC's default
group closed, flow logs, the bootstrap functions' log groups managed."""

from __future__ import annotations

from typing import Iterable

from ._resources import (
    ADVISORY,
    LOG_GROUP,
    MANDATORY,
    SECRET,
    SECRET_POLICY,
    Index,
    Res,
    as_int,
    as_list,
    resource_policy,
    stack_policy,
    statements,
)
from .boundary import _denied_to_everyone_else, _document
from bulkhead_types import SECRET_WRITE_ACTIONS

VPC = "aws:ec2/vpc:Vpc"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
LAMBDA_FUNCTION = "aws:lambda/function:Function"

ECR_LAYER_BUCKET_SUFFIX = "-starport-layer-bucket/*"


# --- secret-writes-denied ------------------------------------------------------------------------
def check_secret_writes_denied(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type != SECRET:
        return
    policies = index.referrers(r, [SECRET_POLICY], "secretArn")
    documents = [d for d in (_document(p) for p in policies) if d is not None]
    missing = [a for a in SECRET_WRITE_ACTIONS if not any(_denied_to_everyone_else(d, a) for d in documents)]
    if missing:
        yield (f"{r.label}'s resource policy does not deny {', '.join(missing)} to everyone but named principals: "
               f"ordinary Secrets Manager rights could plant another host or password, re-key or copy it; deny every "
               f"write and configuration action to all but the deployers and break-glass principals.")


# --- vpc-endpoint-policy -------------------------------------------------------------------------
def check_vpc_endpoint_policy(r: Res, cfg: dict) -> Iterable[str]:
    doc = _document(r)
    if doc is None:
        yield (f"{r.label} has no endpoint policy, so it gives full access to the service for any principal and "
               f"resource (e.g. writing to any account's bucket); give it a policy.")
        return
    gateway = r.get("vpcEndpointType") == "Gateway"
    for s in statements(doc):
        if s.get("Effect") != "Allow":
            continue
        if gateway:
            resources = [x for x in as_list(s.get("Resource")) if isinstance(x, str)]
            actions = [a for a in as_list(s.get("Action")) if isinstance(a, str)]
            if actions != ["s3:GetObject"] or not resources or not all(
                    x.endswith(ECR_LAYER_BUCKET_SUFFIX) and ":s3:::prod-" in x for x in resources):
                yield (f"{r.label} allows {', '.join(actions) or 'actions'} on {', '.join(resources) or 'resources'}; "
                       f"the S3 gateway serves image layers only: s3:GetObject on the region's ECR layer bucket.")
        else:
            keys = {k.lower() for values in (s.get("Condition") or {}).values() if isinstance(values, dict)
                    for k in values}
            if not keys & {"aws:principalaccount", "aws:principalorgid"}:
                yield (f"{r.label} allows a statement without an aws:PrincipalAccount condition: credentials of any "
                       f"account could be used through it; allow this account's principals only.")


# --- default-security-group-closed ---------------------------------------------------------------
def check_default_security_group_closed(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if r.type == DEFAULT_SECURITY_GROUP:
        rules = [k for k in ("ingress", "egress") if as_list(r.get("ingress" if k == "ingress" else "egress"))]
        if rules:
            yield (f"{r.label} has {' and '.join(rules)} rules; the default group must have none (FSBP EC2.2).")
        return
    if not index.referrers(r, [DEFAULT_SECURITY_GROUP], "vpcId"):
        yield (f"{r.label} keeps AWS's default security group rules (all traffic among its members, all egress); "
               f"adopt it with an aws.ec2.DefaultSecurityGroup without rules (FSBP EC2.2).")


# --- vpc-flow-logs -------------------------------------------------------------------------------
def check_vpc_flow_logs(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    if not index.referrers(r, [FLOW_LOG], "vpcId"):
        yield (f"{r.label} has no flow log (FSBP EC2.6); set bulkhead:flow_logs to REJECT or ALL.")


# --- function-log-groups-managed -----------------------------------------------------------------
def check_function_log_groups_managed(index: Index, r: Res, cfg: dict) -> Iterable[str]:
    name = r.need("name")
    if not isinstance(name, str):
        return
    # The group its logging_config names, else Lambda's default /aws/lambda/<name>.
    logging = r.get("loggingConfig")
    group_name = logging.get("logGroup") if isinstance(logging, dict) and logging.get("logGroup") else f"/aws/lambda/{name}"
    if not isinstance(group_name, str):
        return  # not known before the deploy
    # A table built once per stack (Index.named), not a scan of every log group per function:
    # the scan made check quadratic (t(5000)/t(1000) = 9.2 on bench/synth.py's plans).
    groups = index.named(group_name, LOG_GROUP)
    if not groups:
        yield (f"{r.label} logs to {group_name}, which is not a log group of the stack: Lambda creates it on "
               f"first run with no retention and no KMS key, and leaves it behind on destroy; create a group in the "
               f"stack before the function and name it in the function's logging_config.")
        return
    for group in groups:
        if as_int(group.need("retentionInDays")) in (None, 0) or not group.is_set("kmsKeyId"):
            yield (f"{group.label} (the logs of {r.label}) needs retention_in_days and the database's kms_key_id.")


POLICIES = [
    stack_policy(
        "secret-writes-denied",
        "Every secret's resource policy denies every write and configuration action to all but named principals.",
        MANDATORY, [SECRET], check_secret_writes_denied,
    ),
    resource_policy(
        "vpc-endpoint-policy",
        "Every VPC endpoint has a policy: the S3 gateway reads ECR's layer bucket only; interface endpoints admit "
        "this account's principals only.",
        MANDATORY, [VPC_ENDPOINT], check_vpc_endpoint_policy,
    ),
    stack_policy(
        "default-security-group-closed",
        "A VPC the stack creates has its default security group adopted with no rules.",
        MANDATORY, [VPC, DEFAULT_SECURITY_GROUP], check_default_security_group_closed,
    ),
    stack_policy(
        "vpc-flow-logs",
        "A VPC the stack creates has a flow log.",
        ADVISORY, [VPC], check_vpc_flow_logs,
    ),
    stack_policy(
        "function-log-groups-managed",
        "Every Lambda function's log group is created by the stack, with retention and a KMS key.",
        MANDATORY, [LAMBDA_FUNCTION], check_function_log_groups_managed,
    ),
]
