"""The prod stack's network and IAM boundary under the mock runtime, on Pulumi.prod.yaml with
and without `bulkhead:network`: VPC endpoints and their rules, the `network` output, every
key, secret and vault policy document parsed (who may decrypt, restore, delete), managed log
groups, restore testing, vault lock, the DR provider's credentials."""

from __future__ import annotations

import fnmatch
import json
import re

import pytest

from bulkhead.offline.mock_runtime import FAKE_ACCOUNT, Secret, exports_plain
from bulkhead.planfile import SECRET_ENVELOPE
from components.prod import key_policies
from components.catalogue.model import CatalogueError, load_catalogue
from components.prod.vpc_endpoints import INTERFACE_SERVICES, endpoint_url
from components.postgres.bootstrap_handler import is_secrets_endpoint_url

from tests.support.program import run_stack, stack_config

from policies.bulkhead_types import BACKUP_VAULT as VAULT
from policies.bulkhead_types import BACKUP_VAULT_LOCK as VAULT_LOCK
from policies.bulkhead_types import BACKUP_VAULT_POLICY as VAULT_POLICY
from policies.bulkhead_types import EGRESS_RULE as EGRESS
from policies.bulkhead_types import INGRESS_RULE as INGRESS
from policies.bulkhead_types import KMS_KEY as KMS
from policies.bulkhead_types import LAMBDA_FUNCTION as FUNCTION
from policies.bulkhead_types import LOG_GROUP
from policies.bulkhead_types import RDS_INSTANCE as RDS
from policies.bulkhead_types import RESTORE_TESTING_PLAN as RT_PLAN
from policies.bulkhead_types import RESTORE_TESTING_SELECTION as RT_SELECTION
from policies.bulkhead_types import SECURITY_GROUP as SG
from policies.bulkhead_types import VPC_ENDPOINT as ENDPOINT
# `bulkhead:deployers` of Pulumi.prod.yaml: the policies name them, never the caller of the moment
DEPLOYERS = tuple(stack_config("prod")["bulkhead:deployers"])
ROOT_ARN = f"arn:aws:iam::{FAKE_ACCOUNT}:root"
REGION = "eu-west-1"
GIVEN_NETWORK = {"vpc_id": "vpc-0abc1234", "subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222"]}
CATALOGUE = stack_config("prod")["bulkhead:databases"]


@pytest.fixture(scope="module")
def given_network_run():
    network = {**GIVEN_NETWORK, "secretsmanager_endpoint_exists": True}
    return run_stack("prod", edit=lambda c: c.__setitem__("bulkhead:network", network))


def _role(r) -> str:
    return r.inputs.get("tags", {}).get("bulkhead:role", "")


def _db(r) -> str:
    return r.inputs.get("tags", {}).get("bulkhead:database", "")


# --- reading policy documents ------------------------------------------------------------------
def _list(value) -> list:
    return value if isinstance(value, list) else [value]


def _matches(patterns, action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in _list(patterns))


def _principals(statement) -> list[str]:
    principal = statement["Principal"]
    if principal == "*":
        return ["*"]
    return [p for values in principal.values() for p in _list(values)]


def allowing(doc: dict, action: str) -> list[dict]:
    """The Allow statements of `doc` that grant `action`."""
    return [s for s in doc["Statement"] if s["Effect"] == "Allow" and _matches(s["Action"], action)]


def exempt_from_deny(doc: dict, action: str) -> set[str]:
    """Principals not denied `action` by the doc's Deny-everyone statements (their ArnNotLike)."""
    denies = [s for s in doc["Statement"] if s["Effect"] == "Deny" and _matches(s["Action"], action)]
    assert denies, f"nothing denies {action}"
    exempt = None
    for s in denies:
        assert _principals(s) == ["*"], s
        names = set(_list(s["Condition"]["ArnNotLike"]["aws:PrincipalArn"]))
        exempt = names if exempt is None else exempt & names
    return exempt


def key_policy_of(run, key) -> dict:
    return json.loads(key.inputs["policy"])


# --- network -----------------------------------------------------------------------------------
def test_endpoints_in_the_created_vpc(prod_run):
    (vpc,) = prod_run.by_type("aws:ec2/vpc:Vpc")
    subnets = sorted(s.id for s in prod_run.by_type("aws:ec2/subnet:Subnet"))
    (group,) = [g for g in prod_run.by_type(SG) if _role(g) == "endpoints"]
    endpoints = {e.inputs["serviceName"]: e for e in prod_run.by_type(ENDPOINT)}
    assert set(endpoints) == {f"com.amazonaws.{REGION}.{s}" for s in (*INTERFACE_SERVICES, "s3")}
    for service in INTERFACE_SERVICES:
        e = endpoints[f"com.amazonaws.{REGION}.{service}"]
        assert e.inputs["vpcEndpointType"] == "Interface" and e.inputs["privateDnsEnabled"] is True
        assert e.inputs["vpcId"] == vpc.id
        assert sorted(e.inputs["subnetIds"]) == subnets, "one interface per AZ, in the database subnets"
        assert e.inputs["securityGroupIds"] == [group.id]
    s3 = endpoints[f"com.amazonaws.{REGION}.s3"]
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    assert s3.inputs["routeTableIds"] == [vpc.outputs["mainRouteTableId"]]
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True


def test_endpoint_group_admits_443_from_client_and_bootstrap_groups_only(prod_run):
    (group,) = [g for g in prod_run.by_type(SG) if _role(g) == "endpoints"]
    assert "ingress" not in group.inputs and "egress" not in group.inputs
    clients = {g.id for g in prod_run.by_type(SG) if _role(g) == "client"}
    bootstraps = {g.id for g in prod_run.by_type(SG) if _role(g) == "bootstrap"}
    assert len(clients) == 3 and len(bootstraps) == len(CATALOGUE)
    ingress = [r for r in prod_run.by_type(INGRESS) if r.inputs["securityGroupId"] == group.id]
    assert sorted(r.inputs["referencedSecurityGroupId"] for r in ingress) == sorted(clients | bootstraps)
    # each bootstrap group's HTTPS goes to the endpoint group, never to an address range
    for bootstrap in bootstraps:
        https = [r for r in prod_run.by_type(EGRESS) if r.inputs["securityGroupId"] == bootstrap and r.inputs["fromPort"] == 443]
        assert [r.inputs.get("referencedSecurityGroupId") for r in https] == [group.id]
        assert not any("cidrIpv4" in r.inputs for r in https)
    for rule in ingress:
        assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 443, 443)
        assert not any(k in rule.inputs for k in ("cidrIpv4", "cidrIpv6", "prefixListId"))
    # each client group: 443 to the endpoint group only, 5432 to its own databases' groups only
    db_groups = {g.id: g.inputs["tags"]["bulkhead:owner"] for g in prod_run.by_type(SG) if _role(g) == "database"}
    owners = {g.id: g.inputs["tags"]["bulkhead:owner"] for g in prod_run.by_type(SG) if _role(g) == "client"}
    for client in clients:
        egress = [r for r in prod_run.by_type(EGRESS) if r.inputs["securityGroupId"] == client]
        to_endpoints = [r for r in egress if r.inputs.get("referencedSecurityGroupId") == group.id]
        assert len(to_endpoints) == 1 and to_endpoints[0].inputs["fromPort"] == 443
        # and 443 to the S3 gateway's prefix list (ECR image layers), nothing else outside the VPC
        (s3_gateway,) = [e for e in prod_run.by_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Gateway"]
        to_s3 = [r for r in egress if "prefixListId" in r.inputs]
        assert [(r.inputs["prefixListId"], r.inputs["fromPort"], r.inputs["toPort"]) for r in to_s3] == [
            (s3_gateway.outputs["prefixListId"], 443, 443)]
        for rule in egress:
            if rule in to_s3:
                continue
            if rule not in to_endpoints:
                assert rule.inputs["fromPort"] == 5432
                assert db_groups[rule.inputs["referencedSecurityGroupId"]] == owners[client]
            assert not any(k in rule.inputs for k in ("cidrIpv4", "cidrIpv6", "prefixListId"))


def test_network_output_references_the_created_resources(prod_run):
    network = exports_plain(prod_run.exports)["network"]
    (vpc,) = prod_run.by_type("aws:ec2/vpc:Vpc")
    (group,) = [g for g in prod_run.by_type(SG) if _role(g) == "endpoints"]
    assert network == {
        "vpc_id": vpc.id,
        # in AZ order (foundation-private-0, -1, -2); the SDK registers them in any order
        "subnet_ids": [s.id for s in sorted(prod_run.by_type("aws:ec2/subnet:Subnet"), key=lambda s: s.name)],
        "endpoint_security_group_id": group.id,
    }
    assert not any(isinstance(v, Secret) for v in prod_run.exports["network"].values())


def test_given_network_creates_no_endpoints_and_exports_it(given_network_run):
    run = given_network_run
    assert not run.by_type(ENDPOINT)
    assert not [g for g in run.by_type(SG) if _role(g) == "endpoints"]
    # HTTPS only from the bootstrap groups, inside the given VPC (its own endpoints); never to a group of ours
    https = [r for r in run.by_type(EGRESS) + run.by_type(INGRESS) if r.inputs["fromPort"] != 5432]
    bootstraps = {g.id for g in run.by_type(SG) if _role(g) == "bootstrap"}
    assert https and all(r.inputs["securityGroupId"] in bootstraps and "referencedSecurityGroupId" not in r.inputs
                         for r in https)
    assert exports_plain(run.exports)["network"] == {**GIVEN_NETWORK, "endpoint_security_group_id": None}


def test_given_network_without_a_secrets_endpoint_gets_one():
    """secretsmanager_endpoint_exists: false (the default) used to do nothing: no endpoint, and the
    bootstrap's only HTTPS rule went to the VPC's range, where nothing answered (issue 19, finding 3)."""
    run = run_stack("prod", edit=lambda c: c.__setitem__("bulkhead:network", GIVEN_NETWORK))
    (endpoint,) = run.by_type(ENDPOINT)
    assert endpoint.inputs["serviceName"] == f"com.amazonaws.{REGION}.secretsmanager"
    assert endpoint.inputs["vpcId"] == GIVEN_NETWORK["vpc_id"] and endpoint.inputs["subnetIds"] == GIVEN_NETWORK["subnet_ids"]
    assert endpoint.inputs["vpcEndpointType"] == "Interface"
    # private DNS would make secretsmanager.<region>.amazonaws.com resolve to this endpoint (bulkhead's
    # groups only) for every workload of a possibly shared VPC: off, and the bootstrap calls it by name
    assert endpoint.inputs["privateDnsEnabled"] is False
    url = endpoint_url(endpoint.outputs["dnsEntries"])
    assert url.startswith("https://vpce-") and url.endswith(f".secretsmanager.{REGION}.vpce.amazonaws.com")
    assert is_secrets_endpoint_url(url, REGION)
    for function in run.by_type(FUNCTION):
        assert function.inputs["environment"]["variables"]["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == url
    (group,) = [g for g in run.by_type(SG) if _role(g) == "endpoints"]
    assert endpoint.inputs["securityGroupIds"] == [group.id]
    for bootstrap in [g for g in run.by_type(SG) if _role(g) == "bootstrap"]:
        https = [r for r in run.by_type(EGRESS) if r.inputs["securityGroupId"] == bootstrap.id and r.inputs["fromPort"] == 443]
        assert [r.inputs.get("referencedSecurityGroupId") for r in https] == [group.id]
        (ingress,) = [r for r in run.by_type(INGRESS) if r.inputs.get("referencedSecurityGroupId") == bootstrap.id
                      and r.inputs["securityGroupId"] == group.id]
        assert ingress.inputs["fromPort"] == 443
    # the first invocation waits for the endpoint
    for invocation in run.by_type("aws:lambda/invocation:Invocation"):
        assert endpoint.urn in invocation.dependencies
    assert exports_plain(run.exports)["network"]["endpoint_security_group_id"] == group.id


# --- key policies ------------------------------------------------------------------------------
def _decryptors(doc: dict) -> list[tuple[list[str], dict]]:
    return [(_principals(s), s.get("Condition", {})) for s in allowing(doc, "kms:Decrypt")]


@pytest.mark.parametrize("stack_edit", ["default", "key-admins"])
def test_database_key_policies_say_who_may_decrypt(stack_edit):
    # the deployers must be key administrators too (components/catalogue/deployers.py)
    admins = sorted(["arn:aws:iam::123456789012:role/db-key-admins", *stack_config("prod")["bulkhead:deployers"]])
    edit = (lambda c: c.__setitem__("bulkhead:key_admins", admins)) if stack_edit == "key-admins" else None
    run = run_stack("prod", edit=edit)
    expected_admins = admins if edit else [ROOT_ARN]
    for key in [k for k in run.by_type(KMS) if _role(k) == "key"]:
        name = _db(key)
        doc = key_policy_of(run, key)
        assert not [s for s in doc["Statement"] if "*" in _principals(s)], "nobody is granted by wildcard"
        (admin,) = [s for s in doc["Statement"] if s["Sid"] == "KeyAdministration"]
        assert _principals(admin) == expected_admins
        for action in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom", "kms:CreateGrant"):
            assert not _matches(admin["Action"], action), f"administrators never get {action}"
        assert _matches(admin["Action"], "kms:ScheduleKeyDeletion") and _matches(admin["Action"], "kms:PutKeyPolicy")
        decryptors = _decryptors(doc)
        assert len(decryptors) == 3, decryptors
        (bootstrap,) = [r for r in run.by_type("aws:iam/role:Role") if _role(r) == "bootstrap" and _db(r) == name]
        for principals, condition in decryptors:
            if principals == [bootstrap.outputs["arn"]]:
                # this database's bootstrap function, through Secrets Manager only
                assert condition == {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}
            elif principals == [ROOT_ARN]:
                # the account's principals, only through the services that need the key, in this region
                assert condition["StringEquals"]["kms:ViaService"] == [
                    f"{s}.{REGION}.amazonaws.com" for s in ("backup", "logs", "rds", "secretsmanager")]
                assert condition["StringEquals"]["kms:CallerAccount"] == FAKE_ACCOUNT
            else:
                # CloudWatch Logs, for this database's instances' log groups and its bootstrap
                # function's group only (issue 20)
                assert principals == [f"logs.{REGION}.amazonaws.com"]
                idents = [r.inputs["identifier"] for r in run.by_type(RDS) if _db(r) == name]
                primary = next(r.inputs["identifier"] for r in run.by_type(RDS) if _db(r) == name and _role(r) == "primary")
                assert sorted(condition["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]) == sorted(
                    [f"arn:aws:logs:{REGION}:{FAKE_ACCOUNT}:log-group:/aws/rds/instance/{i}/*" for i in idents]
                    + [f"arn:aws:logs:{REGION}:{FAKE_ACCOUNT}:log-group:/bulkhead/lambda/{primary}-bootstrap"])
        # grants: only for AWS resources, only through the services
        (grants,) = allowing(doc, "kms:CreateGrant")
        assert grants["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}
        assert "kms:ViaService" in grants["Condition"]["StringEquals"]


def test_vault_keys_are_used_through_backup_and_rds_of_their_region(prod_run):
    keys = [k for k in prod_run.by_type(KMS) if _role(k) == "backup-key"]
    regions = sorted("eu-central-1" if k.provider else REGION for k in keys)
    assert regions == ["eu-central-1", REGION]
    for key in keys:
        region = "eu-central-1" if key.provider else REGION
        doc = key_policy_of(prod_run, key)
        ((principals, condition),) = _decryptors(doc)
        assert principals == [ROOT_ARN]
        assert condition["StringEquals"]["kms:ViaService"] == [f"backup.{region}.amazonaws.com", f"rds.{region}.amazonaws.com"]


def test_key_policy_bootstrap_role_decrypts_through_secrets_manager_only():
    role = "arn:aws:iam::123456789012:role/bootstrap-auth"
    doc = key_policies.key_policy(partition="aws", region=REGION, account=FAKE_ACCOUNT, admins=[],
                                  services=key_policies.DATABASE_KEY_SERVICES, decrypt_roles=[role])
    (statement,) = [s for s in allowing(doc, "kms:Decrypt") if _principals(s) == [role]]
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}
    assert not _matches(statement["Action"], "kms:Encrypt")


# --- backup vault --------------------------------------------------------------------------------
@pytest.mark.parametrize("break_glass", [[], ["arn:aws:iam::123456789012:role/break-glass"]])
def test_vault_policies_say_who_may_delete_and_restore(break_glass):
    run = run_stack("prod", edit=lambda c: c.__setitem__("bulkhead:break_glass_principals", break_glass) if break_glass else None)
    vaults = run.by_type(VAULT)
    policies = run.by_type(VAULT_POLICY)
    assert sorted(p.inputs["backupVaultName"] for p in policies) == sorted(v.outputs["name"] for v in vaults)
    (role,) = [r for r in run.by_type("aws:iam/role:Role") if "backup" in r.inputs["namePrefix"]]
    allowed = set(break_glass or [ROOT_ARN])
    for policy in policies:
        doc = json.loads(policy.inputs["policy"])
        assert not allowing(doc, "backup:DeleteRecoveryPoint"), "the vault policy grants nothing"
        for action in ("backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle",
                       "backup:DeleteBackupVaultAccessPolicy"):
            assert exempt_from_deny(doc, action) == allowed, action
        # the deployers put the policy on an `up` that changes it, as break-glass may
        assert exempt_from_deny(doc, "backup:PutBackupVaultAccessPolicy") == allowed | set(key_policies.deployer_principals(DEPLOYERS))
        restore_testing = f"arn:aws:iam::{FAKE_ACCOUNT}:role/aws-service-role/restore-testing.backup.amazonaws.com/*"
        assert exempt_from_deny(doc, "backup:StartRestoreJob") == allowed | {role.outputs["arn"], restore_testing}
        for action in ("backup:StartBackupJob", "backup:DescribeRecoveryPoint"):
            assert not [s for s in doc["Statement"] if _matches(s["Action"], action)], action


def test_vault_lock_off_by_default_and_on_when_asked(prod_run):
    assert not prod_run.by_type(VAULT_LOCK)
    lock = {"min_retention_days": 7, "max_retention_days": 400, "changeable_for_days": 3}
    run = run_stack("prod", edit=lambda c: c.__setitem__("bulkhead:backup_vault_lock", lock))
    locks = run.by_type(VAULT_LOCK)
    assert sorted(l.inputs["backupVaultName"] for l in locks) == sorted(v.outputs["name"] for v in run.by_type(VAULT))
    for l in locks:
        assert (l.inputs["minRetentionDays"], l.inputs["maxRetentionDays"], l.inputs["changeableForDays"]) == (7, 400, 3)
        assert l.protect


# --- log groups --------------------------------------------------------------------------------
def test_one_managed_log_group_per_instance_and_type_created_first(prod_run):
    keys = {_db(k): k for k in prod_run.by_type(KMS) if _role(k) == "key"}
    groups = {g.inputs["name"]: g for g in prod_run.by_type(LOG_GROUP) if g.inputs["name"].startswith("/aws/rds/")}
    instances = prod_run.by_type(RDS)
    assert len(groups) == 2 * len(instances)
    for instance in instances:
        name, ident = _db(instance), instance.inputs["identifier"]
        tier = CATALOGUE[name].get("tier", "standard")
        for log_type in instance.inputs["enabledCloudwatchLogsExports"]:
            group = groups[f"/aws/rds/instance/{ident}/{log_type}"]
            assert group.urn in instance.dependencies, f"{ident} is created after its {log_type} log group"
            assert group.inputs["retentionInDays"] == stack_config("prod").get("bulkhead:backup_tiers", {}).get(tier, {}).get("log_retention_days", 30)
            assert group.inputs["kmsKeyId"] == keys[name].outputs["arn"]
            assert _db(group) == name


def test_log_retention_follows_the_tier():
    run = run_stack("prod", edit=lambda c: c.__setitem__("bulkhead:backup_tiers", {"critical": {"log_retention_days": 365}}))
    for group in run.by_type(LOG_GROUP):
        if not _db(group):  # the VPC's flow logs: the longest retention of the tiers in use
            assert _role(group) == "flow-logs" and group.inputs["retentionInDays"] == 365
            continue
        tier = CATALOGUE[_db(group)].get("tier", "standard")
        assert group.inputs["retentionInDays"] == (365 if tier == "critical" else 30)


# --- restore testing ---------------------------------------------------------------------------
NAME_RE = r"^[A-Za-z0-9_]{1,50}$"


def test_restore_testing_plan_per_tier_and_selection_per_database(prod_run):
    (vault,) = [v for v in prod_run.by_type(VAULT) if not v.provider]
    (role,) = [r for r in prod_run.by_type("aws:iam/role:Role") if "backup" in r.inputs["namePrefix"]]
    (subnet_group,) = prod_run.by_type("aws:rds/subnetGroup:SubnetGroup")
    plans = {p.inputs["name"]: p for p in prod_run.by_type(RT_PLAN)}
    assert set(plans) == {"bulkhead_prod_critical", "bulkhead_prod_standard"}
    assert plans["bulkhead_prod_critical"].inputs["scheduleExpression"] == "cron(0 6 ? * SUN *)"
    assert plans["bulkhead_prod_standard"].inputs["scheduleExpression"] == "cron(0 6 1 * ? *)"
    for plan in plans.values():
        assert re.match(NAME_RE, plan.inputs["name"])
        selection = plan.inputs["recoveryPointSelection"]
        assert selection["algorithm"] == "LATEST_WITHIN_WINDOW"
        assert selection["includeVaults"] == [vault.outputs["arn"]]
        assert selection["recoveryPointTypes"] == ["SNAPSHOT"]
    selections = prod_run.by_type(RT_SELECTION)
    assert len(selections) == len(CATALOGUE)
    for primary in [r for r in prod_run.by_type(RDS) if _role(r) == "primary"]:
        name = _db(primary)
        (selection,) = [s for s in selections if s.inputs["protectedResourceArns"] == [primary.outputs["arn"]]]
        tier = CATALOGUE[name].get("tier", "standard")
        assert selection.inputs["restoreTestingPlanName"] == f"bulkhead_prod_{tier}"
        assert selection.inputs["protectedResourceType"] == "RDS"
        assert selection.inputs["iamRoleArn"] == role.outputs["arn"]
        assert re.match(NAME_RE, selection.inputs["name"])
        (db_group,) = [g for g in prod_run.by_type(SG) if _role(g) == "database" and _db(g) == name]
        assert selection.inputs["restoreMetadataOverrides"] == {
            "dbSubnetGroupName": subnet_group.outputs["name"],
            "vpcSecurityGroupIds": json.dumps([db_group.id]),
        }


@pytest.mark.parametrize("parts,expected", [
    (("bulkhead", "prod", "critical"), "bulkhead_prod_critical"),
    (("bulkhead", "Prod.EU-1", "gold"), "bulkhead_Prod_EU_1_gold"),
    (("a" * 40, "b" * 40), None),
])
def test_restore_testing_names(parts, expected):
    from components.prod.restore_testing import restore_testing_name

    got = restore_testing_name(*parts)
    assert re.match(NAME_RE, got), got
    if expected:
        assert got == expected
    else:
        assert 40 <= len(got) <= 50 and got != restore_testing_name(*parts[:1], "c" * 40)


# --- DR provider -------------------------------------------------------------------------------
def test_dr_provider_takes_every_credential_setting():
    def edit(cfg):
        cfg["aws:accessKey"] = "AKIAEXAMPLEEXAMPLE12"
        cfg["aws:secretKey"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        cfg["aws:token"] = "FwoGZXIvYXdzEXAMPLETOKEN"
        cfg["aws:allowedAccountIds"] = ["123456789012"]
        cfg["aws:defaultTags"] = {"tags": {"cost-centre": "platform"}}

    run = run_stack("prod", edit=edit)
    (provider,) = run.by_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-central-1"
    assert json.loads(provider.inputs["allowedAccountIds"]) == ["123456789012"]
    assert json.loads(provider.inputs["defaultTags"]) == {"tags": {"cost-centre": "platform"}}
    # the provider SDK wraps all three in Output.secret (pulumi_aws Provider): never in plaintext
    for key in ("accessKey", "secretKey", "token"):
        assert provider.inputs[key] == SECRET_ENVELOPE, key
    assert "wJalrXUtnFEMI" not in json.dumps(provider.inputs)


# --- catalogue: the new keys -------------------------------------------------------------------
def _aws(**extra) -> dict:
    return {"platform": "aws", "databases": {"a": {"owner": "a-service", "tier": "critical"}}, **extra}


@pytest.mark.parametrize("raw,path,words", [
    (_aws(key_admins="arn:aws:iam::123456789012:root"), "bulkhead:key_admins", "must be a list"),
    (_aws(key_admins=["admins"]), "bulkhead:key_admins.0", "is not an IAM principal ARN"),
    (_aws(break_glass_principals=["arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/a"]),
     "bulkhead:break_glass_principals.1", "listed twice"),
    (_aws(backup_vault_lock={"min_retention_days": 60}), "bulkhead:backup_tiers.critical.retention_days",
     "below bulkhead:backup_vault_lock.min_retention_days 60"),
    (_aws(backup_vault_lock={"min_retention_days": 7, "max_retention_days": 10}),
     "bulkhead:backup_tiers.critical.retention_days", "above bulkhead:backup_vault_lock.max_retention_days 10"),
    (_aws(backup_vault_lock={"min_retention_days": 7, "changeable_for_days": 1}),
     "bulkhead:backup_vault_lock.changeable_for_days", "out of range"),
    (_aws(backup_vault_lock={"min_retention_days": 7, "mode": "compliance"}), "bulkhead:backup_vault_lock.mode", "unknown key"),
    (_aws(backup_tiers={"critical": {"log_retention_days": 31}}), "bulkhead:backup_tiers.critical.log_retention_days",
     "not a CloudWatch Logs retention period"),
    (_aws(backup_tiers={"critical": {"restore_test_schedule": "weekly"}}),
     "bulkhead:backup_tiers.critical.restore_test_schedule", "AWS Backup expression"),
    ({"platform": "docker", "databases": {"a": {"owner": "a-service", "port": 5433}},
      "break_glass_principals": ["arn:aws:iam::123456789012:root"]},
     "bulkhead:break_glass_principals", "applies only to platform aws"),
])
def test_new_keys_refused_with_their_path(raw, path, words):
    with pytest.raises(CatalogueError) as err:
        load_catalogue(raw, "prod")
    problems = {p.path: p.message for p in err.value.problems}
    assert path in problems, problems
    assert words in problems[path], problems[path]


def test_new_keys_accepted():
    cat = load_catalogue(_aws(key_admins=["arn:aws:iam::123456789012:role/admins"],
                              break_glass_principals=["arn:aws:iam::123456789012:user/alice"],
                              backup_vault_lock={"min_retention_days": 7, "changeable_for_days": 3}), "prod", region="eu-west-1")
    assert cat.key_admins == ("arn:aws:iam::123456789012:role/admins",)
    assert cat.break_glass_principals == ("arn:aws:iam::123456789012:user/alice",)
    assert cat.backup_vault_lock.changeable_for_days == 3


# --- parameter apply methods -------------------------------------------------------------------
def test_apply_methods_split_by_context():
    from components.catalogue import settings as pg_settings
    from components.prod.rds_postgres import RDS_FAMILY_DEFAULTS

    def edit(cfg):
        cfg["bulkhead:databases"]["worker"]["parameters"] = {"shared_buffers": "65536", "max_connections": "200",
                                                             "work_mem": "8192", "statement_timeout": "30000"}

    run = run_stack("prod", edit=edit)
    seen = set()
    for group in run.by_type("aws:rds/parameterGroup:ParameterGroup"):
        major = int(group.inputs["family"].removeprefix("postgres"))
        for p in group.inputs["parameters"]:
            restart = pg_settings.context(major, p["name"]) == "postmaster"
            # a value at the family's default is sent as AWS reads it back (test_parameter_groups_settle.py)
            at_default = RDS_FAMILY_DEFAULTS.get(p["name"], lambda m: None)(major) == p["value"]
            assert p["applyMethod"] == ("pending-reboot" if restart or at_default else "immediate"), (group.name, p)
            seen.add((p["name"], p["applyMethod"]))
    # both kinds occur, so the split is exercised, and bulkhead's own settings apply at once
    assert {("shared_buffers", "pending-reboot"), ("max_connections", "pending-reboot"),
            ("work_mem", "immediate"), ("rds.force_ssl", "pending-reboot"), ("log_connections", "immediate")} <= seen


@pytest.mark.parametrize("major,name,expected", [
    (16, "shared_buffers", "pending-reboot"), (13, "max_connections", "pending-reboot"),
    (17, "work_mem", "immediate"), (15, "log_min_duration_statement", "immediate"),
    (16, "rds.force_ssl", "immediate"), (16, "rds.logical_replication", "pending-reboot"),
    (16, "not_a_setting", "pending-reboot"),
])
def test_parameter_apply_method_table(major, name, expected):
    from components.prod.rds_postgres import parameter_apply_method

    assert parameter_apply_method(major, name) == expected


# --- master secret policy ------------------------------------------------------------------------


@pytest.mark.parametrize("break_glass", [[], ["arn:aws:iam::123456789012:role/break-glass"]])
def test_master_secret_policy_says_who_may_read_and_delete(break_glass):
    run = run_stack("prod", edit=lambda c: c.__setitem__("bulkhead:break_glass_principals", break_glass) if break_glass else None)
    secrets = run.by_type("aws:secretsmanager/secret:Secret")
    policies = {p.inputs["secretArn"]: p for p in run.by_type("aws:secretsmanager/secretPolicy:SecretPolicy")}
    assert sorted(policies) == sorted(s.outputs["arn"] for s in secrets), "one policy per master secret"
    admins = set(break_glass or [ROOT_ARN]) | set(key_policies.deployer_principals(DEPLOYERS))
    for secret in secrets:
        name = _db(secret)
        policy = policies[secret.outputs["arn"]]
        doc = json.loads(policy.inputs["policy"])
        assert policy.inputs["blockPublicPolicy"] is True
        assert not allowing(doc, "secretsmanager:GetSecretValue"), "the policy only denies"
        (bootstrap,) = [r for r in run.by_type("aws:iam/role:Role") if _role(r) == "bootstrap" and _db(r) == name]
        assert exempt_from_deny(doc, "secretsmanager:GetSecretValue") == admins | {bootstrap.outputs["arn"]}
        for action in ("secretsmanager:DeleteSecret", "secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy"):
            assert exempt_from_deny(doc, action) == admins, action
        # no other database's bootstrap role may read it
        others = {r.outputs["arn"] for r in run.by_type("aws:iam/role:Role") if _role(r) == "bootstrap" and _db(r) != name}
        assert others and not others & exempt_from_deny(doc, "secretsmanager:GetSecretValue")
        # the password is written only after the policy is in place
        (version,) = [v for v in run.by_type("aws:secretsmanager/secretVersion:SecretVersion") if v.name == f"{name}-master-secret-value"]
        assert policy.urn in version.dependencies


@pytest.mark.parametrize("listed,expected", [
    (["arn:aws:iam::123456789012:user/ci"],
     ["arn:aws:iam::123456789012:user/*/ci", "arn:aws:iam::123456789012:user/ci"]),
    # An Identity Center role listed without its path still matches its sessions' aws:PrincipalArn
    # (role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_...): else one `up` locks out the next.
    (["arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_abc"],
     ["arn:aws:iam::123456789012:role/*/AWSReservedSSO_Admin_abc", "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_abc"]),
    (["arn:aws-us-gov:iam::123456789012:role/ci/deployer"],
     ["arn:aws-us-gov:iam::123456789012:role/*/deployer", "arn:aws-us-gov:iam::123456789012:role/deployer"]),
])
def test_deployer_principals(listed, expected):
    assert key_policies.deployer_principals(listed) == expected


def test_a_pathless_listed_role_matches_its_sessions_principal_arn():
    """The review's lockout: listed without its path, the role's real aws:PrincipalArn must still be exempt."""
    from fnmatch import fnmatchcase

    patterns = key_policies.deployer_principals(["arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_abc"])
    real = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_abc"
    assert any(fnmatchcase(real, p) for p in patterns)
    assert not any(fnmatchcase("arn:aws:iam::123456789012:role/aws-reserved/other", p) for p in patterns)


def test_stack_keys_agree_everywhere():
    """The catalogue accepts (and __main__.py, importing the same tuple, reads) the stack keys
    Pulumi.yaml documents."""
    import os

    import yaml

    from components.catalogue import model as catalog
    from tests.support.program import ROOT

    schema = yaml.safe_load(open(os.path.join(ROOT, "Pulumi.yaml")))["config"]
    documented = {k.removeprefix("bulkhead:") for k in schema if k.startswith("bulkhead:")}
    assert set(catalog.STACK_KEYS) == documented
    for key in ("key_admins", "break_glass_principals"):
        assert schema[f"bulkhead:{key}"]["type"] == "array" and schema[f"bulkhead:{key}"]["items"] == {"type": "string"}


def test_bootstrap_runs_only_after_the_endpoints_admit_it(prod_run):
    """The first invocation needs Secrets Manager: both sides of its 443 path exist before it."""
    (endpoints,) = [g for g in prod_run.by_type(SG) if _role(g) == "endpoints"]
    invocations = prod_run.by_type("aws:lambda/invocation:Invocation")
    assert len(invocations) == len(CATALOGUE)
    for invocation in invocations:
        name = invocation.name.removesuffix("-bootstrap-run")
        (group,) = [g for g in prod_run.by_type(SG) if _role(g) == "bootstrap" and _db(g) == name]
        (ingress,) = [r for r in prod_run.by_type(INGRESS) if r.inputs["securityGroupId"] == endpoints.id
                      and r.inputs["referencedSecurityGroupId"] == group.id]
        (egress,) = [r for r in prod_run.by_type(EGRESS) if r.inputs["securityGroupId"] == group.id
                     and r.inputs.get("referencedSecurityGroupId") == endpoints.id]
        assert ingress.urn in invocation.dependencies and egress.urn in invocation.dependencies, name


def test_bootstrap_runs_only_after_the_secrets_manager_endpoint_exists(prod_run):
    """The group rules to the endpoint group exist long before the endpoint is `available`:
    the invocation waits for the endpoint resource itself (its GetSecretValue goes there)."""
    endpoints = [e for e in prod_run.by_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                 if e.inputs["serviceName"].endswith(".secretsmanager")]
    assert len(endpoints) == 1
    invocations = prod_run.by_type("aws:lambda/invocation:Invocation")
    assert invocations
    for invocation in invocations:
        assert endpoints[0].urn in invocation.dependencies, invocation.name


def test_the_stack_vpc_keeps_private_dns_and_sets_no_endpoint_url(prod_run_for_endpoints):
    """In the stack's own VPC private DNS is right (Fargate's agent resolves Secrets Manager, ECR and
    logs by their public names): every interface endpoint keeps it, and no function gets a URL."""
    run = prod_run_for_endpoints
    interfaces = [e for e in run.by_type(ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"]
    assert interfaces and all(e.inputs["privateDnsEnabled"] is True for e in interfaces)
    for function in run.by_type(FUNCTION):
        assert "AWS_ENDPOINT_URL_SECRETS_MANAGER" not in function.inputs["environment"]["variables"]


@pytest.fixture(scope="module")
def prod_run_for_endpoints():
    return run_stack("prod")
