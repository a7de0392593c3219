"""Issue 20 under the mock runtime: the documents the prod stack sends, parsed and asserted.

The master secret's policy against Secrets Manager's whole action list (botocore's service
model), the endpoint policies, the VPC's default group and flow log, the bootstrap function's
log group, role policy and environment, and `auth: password` (plan, outputs, access policy).
"""

from __future__ import annotations

import json

import botocore.session
import pytest

from bulkhead.offline.mock_runtime import exports_plain
from components.postgres import bootstrap_handler
from components.prod import key_policies
from components.prod.rds_bootstrap import bootstrap_role_policy, function_log_group, function_name
from components.prod.vpc_endpoints import ecr_layer_bucket_arn

from tests.support.program import run_stack

SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
SECRET = "aws:secretsmanager/secret:Secret"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
FUNCTION = "aws:lambda/function:Function"
INVOCATION = "aws:lambda/invocation:Invocation"
KMS = "aws:kms/key:Key"


def _doc(value) -> dict:
    return json.loads(value) if isinstance(value, str) else value


def _statements(doc) -> list[dict]:
    statements = _doc(doc)["Statement"]
    return [statements] if isinstance(statements, dict) else statements


def _actions(statement) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def secretsmanager_actions() -> set[str]:
    """Secrets Manager's action list: its API operations in botocore's service model (the
    Service Authorization Reference lists the same names as IAM actions)."""
    model = botocore.session.get_session().get_service_model("secretsmanager")
    return {f"secretsmanager:{op}" for op in model.operation_names}


def _set_db(name, **keys):
    def edit(config):
        config["bulkhead:databases"][name].update(keys)
    return edit


# --- the master secret's policy ---------------------------------------------------------

def test_every_secrets_manager_action_is_denied_or_justified():
    """Finding 3: an action of the list that is neither denied nor justified fails here."""
    denied = set(key_policies.SECRET_ADMIN_ACTIONS) | set(key_policies.SECRET_READ_ACTIONS)
    justified = set(key_policies.SECRET_ACTIONS_NOT_DENIED)
    assert not denied & justified
    unclassified = secretsmanager_actions() - denied - justified
    assert not unclassified, f"classify these Secrets Manager actions in key_policies: {sorted(unclassified)}"
    stale = (denied | justified) - secretsmanager_actions()
    assert not stale, f"not Secrets Manager actions (any more): {sorted(stale)}"
    for action in ("PutSecretValue", "UpdateSecretVersionStage", "UpdateSecret", "RotateSecret",
                   "ReplicateSecretToRegions", "RestoreSecret", "CancelRotateSecret"):
        assert f"secretsmanager:{action}" in key_policies.SECRET_ADMIN_ACTIONS


def test_the_old_policy_left_the_planting_actions_open():
    """The reproduction: the policy before the fix denied four actions; these stayed open."""
    before = {"secretsmanager:GetSecretValue", "secretsmanager:PutResourcePolicy",
              "secretsmanager:DeleteResourcePolicy", "secretsmanager:DeleteSecret"}
    open_before = set(key_policies.SECRET_ADMIN_ACTIONS) - before
    assert {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret",
            "secretsmanager:UpdateSecretVersionStage"} <= open_before


def test_the_planned_master_secret_policies_deny_every_write_to_all_but_deployers_and_break_glass(prod_run):
    masters = [r for r in prod_run.by_type(SECRET_POLICY) if r.name.endswith("-master-secret-policy")]
    assert len(masters) == 3
    roles = {r.outputs["arn"] for r in prod_run.by_type(ROLE) if r.name.endswith("-bootstrap")}
    for policy in masters:
        statements = {s["Sid"]: s for s in _statements(policy.inputs["policy"])}
        write = statements["OnlyBreakGlassChangesOrDeletes"]
        assert write["Effect"] == "Deny" and write["Principal"] == {"AWS": "*"}
        assert set(_actions(write)) == set(key_policies.SECRET_ADMIN_ACTIONS)
        exempt = set(write["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
        assert not exempt & roles, "the bootstrap role only reads"
        read = statements["OnlyDatabaseRolesAndBreakGlassRead"]
        assert _actions(read) == ["secretsmanager:GetSecretValue"]


# --- the bootstrap function -------------------------------------------------------------

def test_the_bootstrap_role_reads_its_secret_from_its_own_function_only(prod_run):
    """Finding 1 (CreateFunction with iam:PassRole): the read is conditioned on the function."""
    for policy in [r for r in prod_run.by_type(ROLE_POLICY) if r.name.endswith("-bootstrap-secret")]:
        database = policy.name.removesuffix("-bootstrap-secret")
        function = next(f for f in prod_run.by_type(FUNCTION) if f.name == f"{database}-bootstrap")
        read = next(s for s in _statements(policy.inputs["policy"]) if s["Action"] == "secretsmanager:GetSecretValue")
        arn = read["Condition"]["ArnEquals"]["lambda:SourceFunctionArn"]
        assert arn.endswith(f":function:{function.inputs['name']}") and arn.startswith("arn:aws:lambda:")
    # A role policy without the condition would let any function given the role read it.
    doc = bootstrap_role_policy("arn:aws:secretsmanager:eu-west-1:123456789012:secret:m-Ab", "arn:k", "f")
    assert doc["Statement"][0]["Condition"] == {
        "ArnEquals": {"lambda:SourceFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:f"}}


def test_the_bootstrap_function_takes_everything_from_its_environment(prod_run):
    """Finding 2: limit and settings are in the function's environment; the invocation's input
    carries only what re-runs it (the handler ignores it)."""
    for function in prod_run.by_type(FUNCTION):
        env = function.inputs["environment"]["variables"]
        assert int(env[bootstrap_handler.ENV_CONNECTION_LIMIT]) >= 1
        assert isinstance(json.loads(env[bootstrap_handler.ENV_ROLE_SETTINGS]), dict)
        request = bootstrap_handler.RoleRequest.from_environment(env)
        assert request.role == env[bootstrap_handler.ENV_ROLE]
    for invocation in prod_run.by_type(INVOCATION):
        event = json.loads(invocation.inputs["input"])
        assert event["ignored_by_the_handler"] is True
        assert not {"connection_limit", "settings", "role", "db_name"} & set(event)


def test_the_bootstrap_log_group_exists_before_the_function_under_the_database_key(prod_run):
    """Finding 5: created by the stack, tier retention, the database's key, before the function."""
    for function in prod_run.by_type(FUNCTION):
        database = function.name.removesuffix("-bootstrap")
        group = next(g for g in prod_run.by_type(LOG_GROUP) if g.name == f"{database}-bootstrap-logs")
        assert group.inputs["name"] == f"/bulkhead/lambda/{function.inputs['name']}"
        # The function writes there (not to Lambda's /aws/lambda/<name>, which older stacks already have).
        assert function.inputs["loggingConfig"] == {"logFormat": "Text", "logGroup": group.inputs["name"]}
        assert group.inputs["retentionInDays"] == 30
        key = next(k for k in prod_run.by_type(KMS) if k.name == f"{database}-key")
        assert group.inputs["kmsKeyId"] == key.outputs["arn"]
        assert group.urn in function.dependencies
        logs = next(s for s in _statements(key.inputs["policy"]) if s["Sid"] == "CloudWatchLogsForThisDatabase")
        assert any(a.endswith(f":log-group:{group.inputs['name']}")
                   for a in logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])
    assert function_log_group("prod-app") == f"/bulkhead/lambda/{function_name('prod-app')}"


# --- endpoints, default group, flow logs ------------------------------------------------

def test_every_endpoint_has_a_policy(prod_run):
    """Finding 4: the S3 gateway reads ECR's layer bucket only; interface endpoints admit this account."""
    endpoints = prod_run.by_type(ENDPOINT)
    assert endpoints and all(e.inputs.get("policy") for e in endpoints)
    account = prod_run.exports["network"] and "123456789012"
    for endpoint in endpoints:
        (statement,) = _statements(endpoint.inputs["policy"])
        assert statement["Effect"] == "Allow"
        if endpoint.inputs["vpcEndpointType"] == "Gateway":
            assert _actions(statement) == ["s3:GetObject"]
            assert statement["Resource"] == [ecr_layer_bucket_arn("aws", "eu-west-1")]
            assert statement["Resource"] == ["arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*"]
        else:
            assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": account}}


def test_the_stack_vpcs_default_group_has_no_rules(prod_run):
    """FSBP EC2.2: the default group adopted with no ingress and no egress (the provider revokes AWS's)."""
    (group,) = prod_run.by_type(DEFAULT_SG)
    vpc = next(r for r in prod_run.resources if r.type == "aws:ec2/vpc:Vpc")
    assert group.inputs["vpcId"] == vpc.id
    assert not group.inputs.get("ingress") and not group.inputs.get("egress")


def test_flow_log_rejects_by_default_into_its_encrypted_group_and_the_role_writes_only_there(prod_run):
    """FSBP EC2.6."""
    (flow,) = prod_run.by_type(FLOW_LOG)
    group = next(g for g in prod_run.by_type(LOG_GROUP) if g.name == "foundation-flow-logs")
    key = next(k for k in prod_run.by_type(KMS) if k.name == "foundation-flow-logs-key")
    role = next(r for r in prod_run.by_type(ROLE) if r.name == "foundation-flow-logs")
    policy = next(p for p in prod_run.by_type(ROLE_POLICY) if p.name == "foundation-flow-logs-write")
    assert flow.inputs["trafficType"] == "REJECT" and flow.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow.inputs["logDestination"] == group.outputs["arn"] and flow.inputs["iamRoleArn"] == role.outputs["arn"]
    assert group.inputs["kmsKeyId"] == key.outputs["arn"] and group.inputs["retentionInDays"] == 30
    (statement,) = _statements(policy.inputs["policy"])
    assert set(_actions(statement)) == {"logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"}
    arn = f"arn:aws:logs:eu-west-1:123456789012:log-group:{group.inputs['name']}"
    assert statement["Resource"] == [arn, f"{arn}:log-stream:*"]
    (trust,) = _statements(role.inputs["assumeRolePolicy"])
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    logs = next(s for s in _statements(key.inputs["policy"]) if s["Sid"] == "CloudWatchLogsForThisDatabase")
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == [arn]


@pytest.mark.parametrize("choice, traffic", [("ALL", "ALL"), ("none", None)])
def test_flow_logs_key_chooses_all_or_none(choice, traffic):
    run = run_stack("prod", edit=lambda c: c.__setitem__("bulkhead:flow_logs", choice))
    flows = run.by_type(FLOW_LOG)
    assert [f.inputs["trafficType"] for f in flows] == ([traffic] if traffic else [])
    assert run.by_type(DEFAULT_SG), "the default group is managed whatever flow_logs says"


# --- auth: password ---------------------------------------------------------------------

APP_TASK_ROLE = "arn:aws:iam::123456789012:role/svc/app-service-task"


def _password(config):
    """auth: password on `app`, with the owner's role the catalogue requires for it."""
    _set_db("app", auth="password")(config)
    config["bulkhead:owner_principals"] = {"app-service": [APP_TASK_ROLE]}


@pytest.fixture(scope="module")
def password_run():
    return run_stack("prod", edit=_password)


def test_auth_password_plans_a_login_secret_and_outputs_its_arn_not_the_password(password_run):
    secrets = [s for s in password_run.by_type(SECRET) if s.name == "app-login-secret"]
    (secret,) = secrets
    key = next(k for k in password_run.by_type(KMS) if k.name == "app-key")
    assert secret.inputs["kmsKeyId"] == key.outputs["arn"]
    assert secret.inputs["namePrefix"].startswith("bulkhead/prod/app/login-")
    app = exports_plain(password_run.exports)["databases"]["app"]
    assert app["auth"] == "password" and app["login_secret_arn"] == secret.outputs["arn"]
    assert "password" not in app["url"].split("@")[0].split("//")[1]
    for value in password_run.secret_values:
        assert value not in json.dumps(exports_plain(password_run.exports))
    others = exports_plain(password_run.exports)["databases"]
    assert others["auth"]["auth"] == "iam" and "login_secret_arn" not in others["auth"]
    # The function sets the password from that secret.
    function = next(f for f in password_run.by_type(FUNCTION) if f.name == "app-bootstrap")
    env = function.inputs["environment"]["variables"]
    assert env[bootstrap_handler.ENV_AUTH] == "password"
    assert env[bootstrap_handler.ENV_LOGIN_SECRET_ARN] == secret.outputs["arn"]


def test_auth_password_access_policy_reads_its_own_login_secret_only(password_run):
    policy = next(p for p in password_run.by_type(POLICY) if p.name == "app-access")
    statements = _statements(policy.inputs["policy"])
    login = next(s for s in password_run.by_type(SECRET) if s.name == "app-login-secret").outputs["arn"]
    master = next(s for s in password_run.by_type(SECRET) if s.name == "app-master-secret").outputs["arn"]
    key = next(k for k in password_run.by_type(KMS) if k.name == "app-key").outputs["arn"]
    # the Deny of the stack's alarms apart (components/prod/alarms.py alarm_guard_statement)
    assert [s["Sid"] for s in statements if s["Effect"] == "Deny"] == ["NeverTheStacksAlarms"]
    statements = [s for s in statements if s["Effect"] != "Deny"]
    assert statements == [
        {"Sid": "ReadOwnLoginSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": login},
        {"Sid": "DecryptItThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key,
         "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}}},
    ]
    assert master not in json.dumps(statements) and "rds-db:connect" not in json.dumps(statements)
    # Its login secret's policy denies every write to all but deployers and break-glass.
    (login_policy,) = [p for p in password_run.by_type(SECRET_POLICY) if p.name == "app-login-secret-policy"]
    read, write = _statements(login_policy.inputs["policy"])
    assert set(_actions(write)) == set(key_policies.SECRET_ADMIN_ACTIONS)
    # and every read to all but the owner's role, the bootstrap role, deployers and break-glass
    assert _actions(read) == ["secretsmanager:GetSecretValue"] and read["Effect"] == "Deny"
    assert "arn:aws:iam::123456789012:role/app-service-task" in read["Condition"]["ArnNotLike"]["aws:PrincipalArn"]


def test_password_version_rotates_the_login_password_and_reruns_the_bootstrap(password_run):
    rotated = run_stack("prod", edit=lambda c: (_password(c), _set_db("app", password_version=2)(c)))
    def keepers(run):
        return next(p for p in run.by_type("random:index/randomPassword:RandomPassword")
                    if p.name == "app-login-password").inputs["keepers"]

    def event(run):
        return json.loads(next(i for i in run.by_type(INVOCATION) if i.name == "app-bootstrap-run").inputs["input"])

    assert keepers(password_run) == {"password_version": "1"} and keepers(rotated) == {"password_version": "2"}
    assert event(rotated) != event(password_run)
