"""examples/service under Pulumi's mock runtime, its StackReference answered with our own stacks' outputs."""

from __future__ import annotations

import gc
import json
import logging
import os

import pytest
from pulumi.errors import RunError

from bulkhead.drivers import driver_url
from bulkhead.offline.mock_runtime import Secret, exports_plain, run_program
from bulkhead.planfile import SECRET_ENVELOPE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "service")
PROJECT = "bulkhead-example-service"


@pytest.fixture(autouse=True)
def _quiet_failed_outputs():
    """A refused run leaves failed Output futures; asyncio logs each with a traceback when it is
    collected, and CPython 3.11 < 3.11.8 leaks AST recursion depth while formatting those
    (gh-106905), which later breaks pytest's own imports. Collect them here, unlogged."""
    log = logging.getLogger("asyncio")
    was = log.disabled
    log.disabled = True
    yield
    gc.collect()
    log.disabled = was


def run_service(stack: str, bulkhead_exports: dict, service: str, platform: str):
    ref = f"acme/bulkhead/{stack}"
    config = {f"{PROJECT}:databaseStack": ref, f"{PROJECT}:service": service, f"{PROJECT}:platform": platform,
              "aws:region": "eu-west-1"}
    return run_program(EXAMPLE, stack, config, project=PROJECT, stack_references={ref: bulkhead_exports})


def _plain(v):
    return exports_plain(v)


@pytest.mark.parametrize("service", ["app-service", "billing-service", "notify-service"])
def test_dev_container_joins_only_its_own_network(dev_run, service):
    run = run_service("dev", dev_run.exports, service, "docker")
    assert run.error is None, run.error
    dbs = _plain(dev_run.exports["databases"])
    own = {n: d for n, d in dbs.items() if d["owner"] == service}
    [container] = run.by_type("docker:index/container:Container")
    assert [r.type for r in run.resources] == ["docker:index/container:Container"]
    assert [n["name"] for n in container.inputs["networksAdvanced"]] == sorted({d["network"] for d in own.values()})
    assert "networkMode" not in container.inputs
    # envs are secret in the recorded state, never plaintext
    assert "envs" in container.secret_outputs
    assert container.inputs["envs"] == SECRET_ENVELOPE
    recorded = json.dumps([r.inputs for r in run.resources]) + json.dumps([r.outputs for r in run.resources])
    assert not any(d["password"] in recorded for d in dbs.values())
    # ... and carry its own internal URL, and nothing of another database
    envs = set(run.secret_values)
    [(name, db)] = own.items()
    # verify-full with the CA of its database's own container, uploaded as the file the URL names (the
    # form `env --internal --ca-mount /run/bulkhead-ca` prints), channel binding kept
    verified = driver_url(db["internal_url"], "libpq", f"/run/bulkhead-ca/{name}-ca.pem")
    assert "sslmode=verify-full" in verified and "channel_binding=require" in verified
    assert f"{db['env_var']}={verified}" in envs
    assert f"DATABASE_URL={verified}" in envs
    assert container.inputs["uploads"] == [{"file": f"/run/bulkhead-ca/{name}-ca.pem", "content": db["ca_cert"],
                                            "permissions": "0444"}]
    assert not any(d["password"] in e for e in envs for n, d in dbs.items() if n != name)
    assert run.exports["networks"] == [db["network"]]


def test_prod_task_gets_only_its_own_policy_group_and_secret(prod_run):
    run = run_service("prod", prod_run.exports, "auth-service", "aws")
    assert run.error is None, run.error
    dbs = _plain(prod_run.exports["databases"])
    auth = dbs["auth"]
    attachments = run.by_type("aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive")
    by_name = {a.name: a.inputs for a in attachments}
    [task_role] = [r for r in run.by_type("aws:iam/role:Role") if r.name == "auth-service-task"]
    task_policies = by_name["auth-service-task-policies"]
    assert task_policies["roleName"] == task_role.outputs["name"]
    assert task_policies["policyArns"] == [auth["access_policy_arn"]]
    exec_policies = by_name["auth-service-execution-policies"]["policyArns"]
    assert exec_policies == ["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]
    assert "ecs-tasks.amazonaws.com" in task_role.inputs["assumeRolePolicy"]

    [task] = run.by_type("aws:ecs/taskDefinition:TaskDefinition")
    assert task.inputs["taskRoleArn"] == task_role.outputs["arn"]
    [container] = json.loads(task.inputs["containerDefinitions"])
    # No password and no secret at all: the service logs in as its own role with an IAM token.
    assert "secrets" not in container and auth["secret_arn"] not in task.inputs["containerDefinitions"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert env["AUTH_DATABASE_URL"] == auth["url"] == env["DATABASE_URL"]
    assert env["PGHOST"] == auth["host"] and env["PGSSLMODE"] == "verify-full"
    assert env["PGUSER"] == auth["username"] == "auth" and "PGPASSWORD" not in env
    assert env["PGSSLROOTCERT"] == "/etc/ssl/certs/rds-global-bundle.pem" and env["PGSSLROOTCERT"] in auth["url"]
    assert not any(d["host"] in task.inputs["containerDefinitions"] for n, d in dbs.items() if n != "auth")
    assert run.exports["security_group_ids"] == [auth["security_group_id"]]
    assert run.exports["databases"] == ["auth"]
    # placed in the bulkhead stack's network, wearing its client group only, no public IP
    network = _plain(prod_run.exports["network"])
    [ecs_service] = run.by_type("aws:ecs/service:Service")
    assert ecs_service.inputs["networkConfiguration"] == {
        "subnets": network["subnet_ids"], "securityGroups": [auth["security_group_id"]], "assignPublicIp": False}
    assert ecs_service.inputs["taskDefinition"] == task.outputs["arn"]
    assert run.exports["subnet_ids"] == network["subnet_ids"]
    # logs go to its own log group through the awslogs driver
    [log_group] = run.by_type("aws:cloudwatch/logGroup:LogGroup")
    assert container["logConfiguration"]["options"]["awslogs-group"] == log_group.outputs["name"]


def test_unknown_service_is_refused(dev_run, prod_run):
    for stack, exports, platform in (("dev", dev_run.exports, "docker"), ("prod", prod_run.exports, "aws")):
        run = run_service(stack, exports, "payments-service", platform)
        assert isinstance(run.error, RunError)
        assert "'payments-service' owns no database" in str(run.error)
        assert "app-service" in str(run.error)
        assert run.resources == []


def test_platform_mismatch_is_refused(dev_run):
    run = run_service("dev", dev_run.exports, "app-service", "aws")
    assert isinstance(run.error, RunError) and "not on platform 'aws'" in str(run.error)


def test_dev_reference_output_is_secret(dev_run, prod_run):
    """The engine marks a top-level output holding secrets as secret; the mock does the same."""
    run = run_service("dev", dev_run.exports, "app-service", "docker")
    assert run.error is None
    assert isinstance(dev_run.exports["databases"]["app"]["password"], Secret)
    assert not isinstance(run.exports["networks"], Secret)


def test_prod_stack_without_network_output_is_refused(prod_run):
    exports = {k: v for k, v in prod_run.exports.items() if k != "network"}
    run = run_service("prod", exports, "auth-service", "aws")
    assert isinstance(run.error, RunError)
    assert "exports no `network`" in str(run.error)
    assert not run.by_type("aws:ecs/service:Service")
