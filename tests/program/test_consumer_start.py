"""The consumer start path, computed from the plan (issue 19, finding 4): the example service's task,
wearing only its client group, reaches every AWS endpoint a Fargate start needs, its own databases,
and nothing else; its image comes from ECR in the stack's account and region."""

from __future__ import annotations

import json
import os

from bulkhead.offline.mock_runtime import FAKE_ACCOUNT, exports_plain, run_program
from tests.support.program import ROOT

EXAMPLE = os.path.join(ROOT, "examples", "service")
PROJECT = "bulkhead-example-service"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
REGION = "eu-west-1"
# A Fargate task in private subnets without NAT: ECR (api, dkr) and S3 for the image, Logs for
# awslogs, Secrets Manager for `valueFrom` (AWS knowledge center "ecs-fargate-docker-timeout-error").
START_NEEDS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager")


def _reachable(run, group_id: str) -> set[tuple[str, int]]:
    """(target, port) the group may send to, where the target also admits it: ('sg-..', 5432),
    ('endpoint:<service>', 443), ('s3-gateway', 443)."""
    out = set()
    ingress = run.by_type(INGRESS)
    endpoints = run.by_type(ENDPOINT)
    for rule in [r for r in run.by_type(EGRESS) if r.inputs["securityGroupId"] == group_id]:
        port = rule.inputs["fromPort"]
        assert rule.inputs["toPort"] == port and rule.inputs["ipProtocol"] == "tcp"
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs, "no address ranges"
        if "prefixListId" in rule.inputs:
            (gateway,) = [e for e in endpoints if e.outputs.get("prefixListId") == rule.inputs["prefixListId"]]
            assert gateway.inputs["routeTableIds"], "the gateway is on the subnets' route table"
            out.add((f"{gateway.inputs['serviceName'].rsplit('.', 1)[1]}-gateway", port))
            continue
        target = rule.inputs["referencedSecurityGroupId"]
        if not any(i.inputs["securityGroupId"] == target and i.inputs.get("referencedSecurityGroupId") == group_id
                   and i.inputs["fromPort"] <= port <= i.inputs["toPort"] for i in ingress):
            continue  # sent but not admitted: no path
        behind = [e for e in endpoints if target in (e.inputs.get("securityGroupIds") or [])]
        if behind:
            out.update((f"endpoint:{e.inputs['serviceName'].split(f'{REGION}.', 1)[1]}", port) for e in behind)
        else:
            out.add((target, port))
    return out


def test_each_client_group_reaches_exactly_what_a_task_start_needs(prod_run):
    dbs = exports_plain(prod_run.exports)["databases"]
    for owner in sorted({d["owner"] for d in dbs.values()}):
        own = {n: d for n, d in dbs.items() if d["owner"] == owner}
        (group,) = {d["security_group_id"] for d in own.values()}
        reachable = _reachable(prod_run, group)
        expected = {(d["database_security_group_id"], 5432) for d in own.values()}
        expected |= {(f"endpoint:{s}", 443) for s in ("ecr.api", "ecr.dkr", "kms", "logs", "secretsmanager", "sts")}
        expected |= {("s3-gateway", 443)}
        assert reachable == expected, owner
        assert {(f"endpoint:{s}", 443) for s in START_NEEDS} <= reachable


def test_example_service_pulls_from_ecr_in_the_stacks_account_and_region(prod_run):
    ref = "acme/bulkhead/prod"
    config = {f"{PROJECT}:databaseStack": ref, f"{PROJECT}:service": "auth-service", f"{PROJECT}:platform": "aws",
              "aws:region": REGION}
    run = run_program(EXAMPLE, "prod", config, project=PROJECT, stack_references={ref: prod_run.exports})
    assert run.error is None, run.error
    [task] = run.by_type("aws:ecs/taskDefinition:TaskDefinition")
    [container] = json.loads(task.inputs["containerDefinitions"])
    assert container["image"] == f"{FAKE_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/auth-service:1.0.0"
    [ecs_service] = run.by_type("aws:ecs/service:Service")
    # its only group is the client group whose paths the test above computes
    assert ecs_service.inputs["networkConfiguration"]["securityGroups"] == [
        exports_plain(prod_run.exports)["databases"]["auth"]["security_group_id"]]
