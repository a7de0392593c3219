"""The prod stack under Pulumi's mock runtime: every RDS setting, separation, data safety."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import pulumi

from bulkhead.offline.mock_runtime import Secret, exports_plain
from components.catalogue.model import DEFAULT_TIERS
from components.prod.rds_postgres import CA_CERT_IDENTIFIER

from tests.support.program import ROOT, run_stack, stack_config

from policies.bulkhead_types import BACKUP_PLAN, IAM_ROLE, SECRET, SECRET_VERSION
from policies.bulkhead_types import BACKUP_SELECTION as SELECTION
from policies.bulkhead_types import EGRESS_RULE as EGRESS
from policies.bulkhead_types import IAM_POLICY as POLICY
from policies.bulkhead_types import IAM_ROLE_POLICY as ROLE_POLICY
from policies.bulkhead_types import INGRESS_RULE as INGRESS
from policies.bulkhead_types import KMS_KEY as KMS
from policies.bulkhead_types import LAMBDA_FUNCTION as FUNCTION
from policies.bulkhead_types import LAMBDA_INVOCATION as INVOCATION
from policies.bulkhead_types import RANDOM_PASSWORD as PASSWORD
from policies.bulkhead_types import RDS_INSTANCE as RDS
from policies.bulkhead_types import RDS_PARAMETER_GROUP as PARAMS
from policies.bulkhead_types import SECURITY_GROUP as SG


def _db(r) -> str:
    return r.inputs.get("tags", {}).get("bulkhead:database", "")


def _role(r) -> str:
    return r.inputs.get("tags", {}).get("bulkhead:role", "")


def _of(run, typ, database=None, role=None):
    return [r for r in run.by_type(typ)
            if (database is None or _db(r) == database) and (role is None or _role(r) == role)]


def generated_catalogue(n: int) -> dict:
    """n databases, replicas and tiers mixed as in Pulumi.prod.yaml."""
    config = stack_config("prod")
    dbs = {}
    for i in range(n):
        dbs[f"svc{i:02d}"] = {
            "owner": f"service-{i % (n // 2 or 1):02d}",
            "tier": "critical" if i % 3 == 0 else "standard",
            "replicas": i % 3,
            "env_var": f"SVC{i:02d}_DATABASE_URL",
        }
    config["bulkhead:databases"] = dbs
    return config


@pytest.fixture(scope="module")
def big_run():
    return run_stack("prod", config=generated_catalogue(20))


@pytest.fixture(scope="module", params=["prod", "generated20"])
def any_prod(request, prod_run, big_run):
    return prod_run if request.param == "prod" else big_run


def _catalogue(run):
    cfg = stack_config("prod") if len(run.exports["databases"]) == 3 else generated_catalogue(20)
    return cfg["bulkhead:databases"]


def test_per_database_resource_counts(any_prod):
    catalogue = _catalogue(any_prod)
    for name, spec in catalogue.items():
        assert len(_of(any_prod, KMS, name, "key")) == 1, name
        assert len(_of(any_prod, SG, name, "database")) == 1, name
        assert len(_of(any_prod, PARAMS, name)) == 1, name
        assert len(_of(any_prod, RDS, name, "primary")) == 1, name
        assert len(_of(any_prod, RDS, name, "replica")) == spec.get("replicas", 0), name
        assert len(_of(any_prod, POLICY, name)) == 1, name
        # Credentials: one generated master, one secret, one bootstrap function of its own.
        assert len(_of(any_prod, SECRET, name, "master-secret")) == 1, name
        assert len(_of(any_prod, FUNCTION, name, "bootstrap")) == 1, name
        assert len(_of(any_prod, SG, name, "bootstrap")) == 1, name
        assert len(_of(any_prod, IAM_ROLE, name, "bootstrap")) == 1, name
        assert len([r for r in any_prod.by_type(INVOCATION) if r.name == f"{name}-bootstrap-run"]) == 1, name
        assert len([r for r in any_prod.by_type(PASSWORD) if r.name == f"{name}-master-password"]) == 1, name
    assert len(any_prod.by_type(FUNCTION)) == len(any_prod.by_type(INVOCATION)) == len(catalogue)
    bootstrap_policies = [r for r in any_prod.by_type(ROLE_POLICY) if r.name.endswith("-bootstrap-secret")]
    assert len(any_prod.by_type(SECRET_VERSION)) == len(bootstrap_policies) == len(catalogue)
    # The one other inline policy: the VPC flow log's role (issue 20).
    assert {r.name for r in any_prod.by_type(ROLE_POLICY)} - {r.name for r in bootstrap_policies} == {
        "foundation-flow-logs-write"}
    owners = {spec["owner"] for spec in catalogue.values()}
    clients = [r for r in any_prod.by_type(SG) if _role(r) == "client"]
    assert sorted(r.inputs["tags"]["bulkhead:owner"] for r in clients) == sorted(owners)


PRIMARY_SETTINGS = {
    "engine": "postgres",
    "storageType": "gp3",
    "storageEncrypted": True,
    "username": "bulkhead_admin",
    "publiclyAccessible": False,
    "iamDatabaseAuthenticationEnabled": True,
    "caCertIdentifier": CA_CERT_IDENTIFIER,
    "monitoringInterval": 60,
    "performanceInsightsEnabled": True,
    "performanceInsightsRetentionPeriod": 7,
    "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
    "copyTagsToSnapshot": True,
    "autoMinorVersionUpgrade": True,
    # False: a major upgrade needs allow_major_upgrade_to naming it (issue 19, docs/prod-stack.md "Major version upgrades")
    "allowMajorVersionUpgrade": False,  # only with allow_major_upgrade_to (test_day2_changes)
    "applyImmediately": False,
    "skipFinalSnapshot": False,
    "deleteAutomatedBackups": False,
    # backupWindow / maintenanceWindow: staggered per database since issue 24 (tests/program/test_operations.py)
    "port": 5432,
}


@pytest.mark.parametrize("setting,expected", sorted(PRIMARY_SETTINGS.items()))
def test_primary_setting(prod_run, setting, expected):
    for primary in _of(prod_run, RDS, role="primary"):
        assert primary.inputs.get(setting) == expected, f"{primary.name}.{setting}"


def test_primary_settings_follow_catalogue(prod_run):
    catalogue = stack_config("prod")["bulkhead:databases"]
    for name, spec in catalogue.items():
        (primary,) = _of(prod_run, RDS, name, "primary")
        (key,) = _of(prod_run, KMS, name, "key")
        (group,) = _of(prod_run, SG, name, "database")
        (params,) = _of(prod_run, PARAMS, name)
        key_arn = key.outputs["arn"]
        tier = DEFAULT_TIERS[spec.get("tier", "standard")]
        assert primary.inputs["identifier"] == f"prod-{name}"
        assert primary.inputs["dbName"] == name
        assert primary.inputs["engineVersion"] == spec.get("engine_version", "16")
        assert primary.inputs["instanceClass"] == spec.get("instance_class", "db.t4g.medium")
        assert primary.inputs["allocatedStorage"] == spec.get("storage_gb", 20)
        assert primary.inputs["maxAllocatedStorage"] == spec.get("max_storage_gb", 100)
        assert primary.inputs["multiAz"] is spec.get("multi_az", True)
        assert primary.inputs["deletionProtection"] is True
        assert primary.inputs["backupRetentionPeriod"] == tier["pitr_days"]
        # Its own key for storage, the managed secret and Performance Insights.
        assert primary.inputs["kmsKeyId"] == key_arn
        assert primary.inputs["performanceInsightsKmsKeyId"] == key_arn
        assert primary.inputs["vpcSecurityGroupIds"] == [group.id]
        assert primary.inputs["parameterGroupName"] == params.outputs["name"]
        (password,) = [r for r in prod_run.by_type(PASSWORD) if r.name == f"{name}-master-password"]
        assert primary.property_dependencies["password"] == [password.urn]
        assert password.inputs["keepers"] == {"master_password_version": "1"}
        assert password.inputs["length"] >= 32 and password.inputs["special"] is False
        assert primary.inputs["monitoringRoleArn"].startswith("arn:aws:iam::")
        assert key.inputs["enableKeyRotation"] is True
        assert key.inputs["deletionWindowInDays"] == 30


def test_parameter_group_forces_ssl_and_logs(prod_run):
    catalogue = stack_config("prod")["bulkhead:databases"]
    for name, spec in catalogue.items():
        (params,) = _of(prod_run, PARAMS, name)
        values = {p["name"]: p["value"] for p in params.inputs["parameters"]}
        assert values["rds.force_ssl"] == "1"
        # The bootstrap logs in by SCRAM with channel binding only; md5 is 13's default.
        assert values["password_encryption"] == "scram-sha-256"
        assert values["log_connections"] == "1"
        assert values["log_min_duration_statement"] == "1000"
        # RDS parameter groups take base units: the catalogue's "16MB" of work_mem is sent as kB.
        rds_form = {"16MB": "16384"}
        for key, value in (spec.get("parameters") or {}).items():
            assert values[key] == rds_form.get(str(value), str(value))
        major = spec.get("engine_version", "16").split(".")[0]
        assert params.inputs["family"] == f"postgres{major}"
        # A prefix, so a new family's group can exist before the old one is deleted.
        assert "name" not in params.inputs and params.inputs["namePrefix"].startswith(f"bulkhead-prod-{name}-pg{major}-")


def test_replicas_follow_primary(any_prod):
    for primary in _of(any_prod, RDS, role="primary"):
        name = _db(primary)
        for index, replica in enumerate(sorted(_of(any_prod, RDS, name, "replica"), key=lambda r: r.name), start=1):
            assert replica.inputs["replicateSourceDb"] == primary.outputs["identifier"]
            assert replica.inputs["identifier"] == f"{primary.inputs['identifier']}-replica-{index}"
            # Same-region replicas take their encryption and key from the source (CreateDBInstanceReadReplica).
            assert "kmsKeyId" not in replica.inputs and "storageEncrypted" not in replica.inputs
            for same in ("vpcSecurityGroupIds", "parameterGroupName",
                         "monitoringInterval", "monitoringRoleArn", "performanceInsightsKmsKeyId",
                         "caCertIdentifier", "iamDatabaseAuthenticationEnabled", "publiclyAccessible"):
                assert replica.inputs[same] == primary.inputs[same], f"{replica.name}.{same}"
            assert replica.inputs["skipFinalSnapshot"] is True
            assert "finalSnapshotIdentifier" not in replica.inputs
            assert replica.inputs["tags"]["bulkhead:owner"] == primary.inputs["tags"]["bulkhead:owner"]
            assert primary.urn in replica.dependencies


def test_security_group_admits_only_owner_client_group_and_own_bootstrap(any_prod):
    clients = {r.inputs["tags"]["bulkhead:owner"]: r.id for r in any_prod.by_type(SG) if _role(r) == "client"}
    bootstraps = {_db(r): r.id for r in _of(any_prod, SG, role="bootstrap")}
    for group in _of(any_prod, SG, role="database"):
        assert "ingress" not in group.inputs and "egress" not in group.inputs, "no inline rules"
        owner = group.inputs["tags"]["bulkhead:owner"]
        rules = [r for r in any_prod.by_type(INGRESS) if r.inputs["securityGroupId"] == group.id]
        assert sorted(r.inputs["referencedSecurityGroupId"] for r in rules) == sorted(
            [clients[owner], bootstraps[_db(group)]]), group.name
        for rule in rules:
            assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (5432, 5432, "tcp")
            assert not any(k in rule.inputs for k in ("cidrIpv4", "cidrIpv6", "prefixListId"))
    # The client group's egress goes only to its own databases' groups (5432) and the endpoints (443);
    # a bootstrap group's to its own database's group and the endpoints (443).
    db_groups = {r.id: (r.inputs["tags"]["bulkhead:owner"], _db(r)) for r in _of(any_prod, SG, role="database")}
    (endpoints,) = [r.id for r in any_prod.by_type(SG) if _role(r) == "endpoints"]
    for rule in any_prod.by_type(EGRESS):
        source = rule.inputs["securityGroupId"]
        if rule.inputs["fromPort"] == 443 and "prefixListId" in rule.inputs:
            # a client group's HTTPS to S3 through the gateway (ECR image layers)
            assert source in clients.values() and rule.inputs["toPort"] == 443, rule.name
            continue
        if rule.inputs["fromPort"] == 443:
            assert rule.inputs["toPort"] == 443 and rule.inputs["referencedSecurityGroupId"] == endpoints, rule.name
            assert "cidrIpv4" not in rule.inputs
            continue
        if source in bootstraps.values():
            db = [d for d, gid in bootstraps.items() if gid == source][0]
            assert db_groups[rule.inputs["referencedSecurityGroupId"]][1] == db
            assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (5432, 5432)
            continue
        owner = [o for o, gid in clients.items() if gid == source][0]
        assert db_groups[rule.inputs["referencedSecurityGroupId"]][0] == owner


def test_access_policy_is_exactly_the_service_login(any_prod):
    exports = exports_plain(any_prod.exports)["databases"]
    for name, info in exports.items():
        (policy,) = _of(any_prod, POLICY, name)
        doc = json.loads(policy.inputs["policy"])
        instances = _of(any_prod, RDS, name)
        region = instances[0].outputs["arn"].split(":")[3]
        expected = sorted(f"arn:aws:rds-db:{region}:123456789012:dbuser:{i.outputs['resourceId']}/{info['username']}"
                          for i in instances)
        # rds-db:connect only, for the service role on the primary and each replica; no secret, no key;
        # and the Deny of the stack's alarms (components/prod/alarms.py alarm_guard_statement).
        assert [(s["Effect"], s["Action"]) for s in doc["Statement"] if s["Effect"] == "Allow"] == [("Allow", "rds-db:connect")]
        assert [s["Sid"] for s in doc["Statement"] if s["Effect"] != "Allow"] == ["NeverTheStacksAlarms"]
        assert sorted(doc["Statement"][0]["Resource"]) == expected
        assert len(expected) == 1 + len(_of(any_prod, RDS, name, "replica"))
        assert info["username"] == info["db_name"] != "bulkhead_admin"
        assert info["secret_arn"] not in policy.inputs["policy"] and "secretsmanager" not in policy.inputs["policy"]
        assert info["access_policy_arn"] == policy.outputs["arn"]


def test_bootstrap_reads_only_its_own_master_secret(any_prod):
    exports = exports_plain(any_prod.exports)["databases"]
    for name, info in exports.items():
        (role,) = _of(any_prod, IAM_ROLE, name, "bootstrap")
        (inline,) = [p for p in any_prod.by_type(ROLE_POLICY) if p.inputs["role"] == role.id]
        doc = json.loads(inline.inputs["policy"])
        assert {(s["Action"], s["Resource"]) for s in doc["Statement"]} == {  # GetSecretValue from its function only
            ("secretsmanager:GetSecretValue", info["secret_arn"]), ("kms:Decrypt", info["kms_key_arn"])}
        assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
        (function,) = _of(any_prod, FUNCTION, name, "bootstrap")
        assert function.inputs["role"] == role.outputs["arn"]
        assert function.inputs["environment"]["variables"]["BULKHEAD_SECRET_ARN"] == info["secret_arn"]
        # Pinned to its own target: the handler refuses an input naming another db or role.
        variables = function.inputs["environment"]["variables"]
        assert (variables["BULKHEAD_DATABASE"], variables["BULKHEAD_DB_NAME"], variables["BULKHEAD_ROLE"]) == (
            name, info["db_name"], info["username"])
        (group,) = _of(any_prod, SG, name, "bootstrap")
        assert function.inputs["vpcConfig"]["securityGroupIds"] == [group.id]
        assert len(function.inputs["vpcConfig"]["subnetIds"]) == 3
        assert function.inputs["runtime"] == "python3.13"
        (run,) = [r for r in any_prod.by_type(INVOCATION) if r.name == f"{name}-bootstrap-run"]
        # The handler ignores the event (issue 20): what it does is in the function's environment;
        # the input only makes a new spec or password version re-run it.
        event = json.loads(run.inputs["input"])
        assert set(event) == {"ignored_by_the_handler", "spec_sha256", "master_password_version",
                              "login_password_version"} and event["master_password_version"] == 1
        assert (variables["BULKHEAD_CONNECTION_LIMIT"], json.loads(variables["BULKHEAD_ROLE_SETTINGS"])) == (
            "100", {"idle_in_transaction_session_timeout": "10min", "statement_timeout": "5min"})
        assert run.inputs["functionName"] == function.outputs["name"]
        (primary,) = _of(any_prod, RDS, name, "primary")
        (version,) = [v for v in any_prod.by_type(SECRET_VERSION) if v.name == f"{name}-master-secret-value"]
        assert {primary.urn, version.urn, function.urn} <= set(run.dependencies)
        # ... and for its network path: the database group's rule for it and its own egress.
        rules = [r.urn for r in any_prod.resources if r.name in (f"{name}-db-from-bootstrap", f"{name}-bootstrap-to-db",
                                                               f"{name}-bootstrap-https")]
        assert len(rules) == 3 and set(rules) <= set(run.dependencies)


def test_master_password_and_secret_value_are_secret_envelopes(prod_export, prod_run):
    from bulkhead.planfile import SECRET_ENVELOPE

    by_name = {r["urn"].rsplit("::", 1)[1]: r for r in prod_export["deployment"]["resources"]}
    text = json.dumps(prod_export)
    for name in stack_config("prod")["bulkhead:databases"]:
        assert by_name[f"{name}-primary"]["inputs"]["password"] == SECRET_ENVELOPE
        assert "manageMasterUserPassword" not in by_name[f"{name}-primary"]["inputs"]
        assert by_name[f"{name}-master-secret-value"]["inputs"]["secretString"] == SECRET_ENVELOPE
        assert by_name[f"{name}-master-password"]["outputs"]["result"] == SECRET_ENVELOPE
        (secret,) = [r for r in prod_run.by_type(SECRET) if r.name == f"{name}-master-secret"]
        (key,) = _of(prod_run, KMS, name, "key")
        assert secret.inputs["kmsKeyId"] == key.outputs["arn"]
    assert prod_run.secret_values and not any(v in text for v in prod_run.secret_values)
    # What the secret holds: the JSON RDS and the rotation functions use, with the password.
    (version,) = [v for v in prod_run.by_type(SECRET_VERSION) if v.name == "auth-master-secret-value"]
    (value,) = [v for v in prod_run.secret_values if v.startswith("{") and '"prod-auth"' in v]
    assert set(json.loads(value)) == {"engine", "host", "port", "username", "password", "dbname", "dbInstanceIdentifier"}


def test_no_primary_manages_its_master_password(any_prod):
    for primary in _of(any_prod, RDS, role="primary"):
        assert not primary.inputs.get("manageMasterUserPassword"), primary.name
        assert "masterUserSecretKmsKeyId" not in primary.inputs
    for replica in _of(any_prod, RDS, role="replica"):
        assert "password" not in replica.inputs and not replica.inputs.get("manageMasterUserPassword")


def test_function_archive_is_identical_across_plans(prod_run):
    import base64
    import hashlib

    again = run_stack("prod")
    first = {f.name: f.inputs for f in prod_run.by_type(FUNCTION)}
    second = {f.name: f.inputs for f in again.by_type(FUNCTION)}
    assert first == second
    (hashes,) = {f["sourceCodeHash"] for f in first.values()},
    path = next(iter(first.values()))["code"]["path"]
    with open(path, "rb") as handle:
        assert base64.b64encode(hashlib.sha256(handle.read()).digest()).decode() == next(iter(hashes))


def _selects(selection, tags) -> bool:
    (condition,) = selection.inputs["conditions"]
    wanted = {c["key"].removeprefix("aws:ResourceTag/"): c["value"] for c in condition["stringEquals"]}
    return all(tags.get(k) == v for k, v in wanted.items())


def test_backup_selections_cover_every_primary_once_by_tier(any_prod):
    selections = any_prod.by_type(SELECTION)
    for instance in any_prod.by_type(RDS):
        tags = instance.inputs["tags"]
        matching = [s for s in selections if _selects(s, tags)]
        if _role(instance) == "primary":
            assert len(matching) == 1, instance.name
            assert matching[0].name == f"backup-{tags['bulkhead:tier']}-selection"
        else:
            assert matching == [], f"replica {instance.name} must not be backed up"


def test_backup_plans_follow_tiers_and_copy_to_dr(prod_run):
    plans = {p.inputs["name"]: p for p in prod_run.by_type(BACKUP_PLAN)}
    assert set(plans) == {"bulkhead-prod-critical", "bulkhead-prod-standard"}
    dr_vaults = [v for v in prod_run.by_type("aws:backup/vault:Vault") if v.inputs["name"].endswith("-dr")]
    assert len(dr_vaults) == 1 and dr_vaults[0].provider, "the DR vault is created through the DR provider"
    for tier, plan in (("critical", plans["bulkhead-prod-critical"]), ("standard", plans["bulkhead-prod-standard"])):
        (rule,) = plan.inputs["rules"]
        assert rule["schedule"] == DEFAULT_TIERS[tier]["schedule"]
        assert rule["lifecycle"]["deleteAfter"] == DEFAULT_TIERS[tier]["retention_days"]
        copies = rule.get("copyActions") or []
        if DEFAULT_TIERS[tier]["copy_to_dr"]:
            assert [c["destinationVaultArn"] for c in copies] == [dr_vaults[0].outputs["arn"]]
            assert ":eu-central-1:" in copies[0]["destinationVaultArn"]
        else:
            assert copies == []
    for vault in prod_run.by_type("aws:backup/vault:Vault"):
        assert vault.inputs["kmsKeyArn"].startswith("arn:aws:kms:") and vault.protect


def test_no_internet_path_in_created_vpc(prod_run):
    types = {r.type for r in prod_run.resources}
    assert "aws:ec2/internetGateway:InternetGateway" not in types
    assert "aws:ec2/natGateway:NatGateway" not in types
    subnets = prod_run.by_type("aws:ec2/subnet:Subnet")
    assert len(subnets) == 3 and len({s.inputs["availabilityZone"] for s in subnets}) == 3
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)


def test_given_network_creates_no_vpc():
    def edit(cfg):
        cfg["bulkhead:network"] = {"vpc_id": "vpc-0abc1234", "subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222"],
                                   "secretsmanager_endpoint_exists": True}

    run = run_stack("prod", edit=edit)
    # The bootstrap functions run in the given subnets; HTTPS goes to the VPC's own range (its endpoint).
    for function in run.by_type(FUNCTION):
        assert function.inputs["vpcConfig"]["subnetIds"] == ["subnet-0aaa1111", "subnet-0bbb2222"]
    https = [r for r in run.by_type(EGRESS) if r.inputs["fromPort"] == 443]
    assert len(https) == 3 and {r.inputs["cidrIpv4"] for r in https} == {"10.0.0.0/16"}
    assert not run.by_type("aws:ec2/vpc:Vpc") and not run.by_type("aws:ec2/subnet:Subnet")
    (group,) = run.by_type("aws:rds/subnetGroup:SubnetGroup")
    assert group.inputs["subnetIds"] == ["subnet-0aaa1111", "subnet-0bbb2222"]
    assert all(sg.inputs["vpcId"] == "vpc-0abc1234" for sg in run.by_type(SG))


def test_outputs_shape_and_no_password(prod_run):
    required = {"owner", "platform", "host", "port", "db_name", "username", "sslmode", "env_var", "tier",
                "reader_hosts", "secret_arn", "url", "security_group_id", "access_policy_arn", "kms_key_arn", "auth"}
    # The master password lives only in Secrets Manager: no output carries it.
    for name, info in prod_run.exports["databases"].items():
        assert required <= set(info), name
        assert "password" not in info
        assert not any(isinstance(v, Secret) for v in info.values()), "nothing in aws outputs is a secret"
        assert info["sslmode"] == "verify-full"
        assert info["platform"] == "aws" and info["auth"] == "iam"
        assert "@" in info["url"] and ":" not in info["url"].split("//")[1].split("@")[0], "no password in the URL"
        assert info["url"].startswith(f"postgresql://{info['username']}@") and info["username"] != "bulkhead_admin"
        assert info["url"].endswith("?sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle.pem")
        assert len(info["reader_hosts"]) == stack_config("prod")["bulkhead:databases"][name].get("replicas", 0)
    services = exports_plain(prod_run.exports)["services"]
    assert services["auth-service"]["env"]["AUTH_DATABASE_URL"] == exports_plain(prod_run.exports)["databases"]["auth"]["url"]


def test_data_safety(prod_run):
    other = run_stack("prod", stack_name="staging")
    ids = {}
    for run in (prod_run, other):
        for primary in _of(run, RDS, role="primary"):
            assert primary.protect, primary.name
            assert primary.inputs["deletionProtection"] is True
            assert primary.inputs["skipFinalSnapshot"] is False
            ids[(run.stack, primary.name)] = primary.inputs["finalSnapshotIdentifier"]
        for key in _of(run, KMS, role="key"):
            assert key.protect, key.name
        for replica in _of(run, RDS, role="replica"):
            assert "finalSnapshotIdentifier" not in replica.inputs and replica.inputs["skipFinalSnapshot"] is True
    assert len(set(ids.values())) == len(ids), "final snapshot ids differ between databases and stacks"
    suffixes = [r for r in prod_run.by_type("random:index/randomId:RandomId")]
    assert len(suffixes) == 3


def test_protect_false_is_refused_as_the_pack_would():
    # rds-protected-resource (mandatory) refuses unprotected primaries: the catalogue says so before any resource.
    with pytest.raises(pulumi.RunError) as err:
        run_stack("prod", edit=lambda c: c.__setitem__("bulkhead:protect", False))
    assert "bulkhead:protect: protect: false leaves the databases unprotected in Pulumi, which policy " \
           "rds-protected-resource (mandatory) refuses" in str(err.value)


# One per tier in use: adding a tier or moving the last database off one adds or drops them.
TIER_WIDE_TYPES = ("aws:backup/plan:Plan", "aws:backup/selection:Selection",
                   "aws:backup/restoreTestingPlan:RestoreTestingPlan", "bulkhead:index:AwsBackup",
                   "bulkhead:index:RestoreTesting")
REPLACEMENT_INPUTS = ("identifier", "kmsKeyId", "username", "dbName", "storageEncrypted", "engine",
                      "replicateSourceDb", "dbSubnetGroupName")


def _snapshot(run, exclude: str):
    """URN -> replacement-triggering inputs of every resource not of database `exclude`
    (nor of its owner's client group, whose tags list that database's tier)."""
    owner = (stack_config("prod")["bulkhead:databases"].get(exclude) or {}).get("owner")
    out = {}
    for r in run.resources:
        if f"::{exclude}" in r.urn or f"${exclude}-" in r.urn or r.urn.rsplit("::", 1)[1].startswith(f"{exclude}-"):
            continue
        if owner and r.urn.rsplit("::", 1)[1].startswith(f"client-{owner}"):
            assert r.type != RDS
            continue
        if r.type in TIER_WIDE_TYPES:
            continue  # stack-wide; a tier change may add or drop a plan
        if r.type == "aws:backup/restoreTestingSelection:RestoreTestingSelection" and r.name == f"restore-testing-{exclude}":
            continue  # the edited database's own selection
        if r.type == RDS:
            out[r.urn] = {k: r.inputs.get(k) for k in REPLACEMENT_INPUTS}
        elif r.type == "aws:rds/eventSubscription:EventSubscription":
            # The stack's one event subscription lists every instance: `source_ids` is updated in place
            # (AddSourceIdentifierToSubscription; not ForceNew in terraform-provider-aws rds/event_subscription.go).
            out[r.urn] = {k: v for k, v in r.inputs.items() if k != "sourceIds"}
        else:
            out[r.urn] = r.inputs
    return out


def _set_db(name, **changes):
    def edit(cfg):
        cfg["bulkhead:databases"][name].update(changes)
    return edit


def _add_db(cfg):
    cfg["bulkhead:databases"]["search"] = {"owner": "search-service", "replicas": 1}


def _add_tier(cfg):
    cfg["bulkhead:backup_tiers"] = {"gold": {"schedule": "cron(0/30 * * * ? *)", "retention_days": 90, "pitr_days": 35, "copy_to_dr": True}}
    cfg["bulkhead:databases"]["worker"]["tier"] = "gold"


@pytest.mark.parametrize(
    "edit,edited",
    [
        pytest.param(_add_db, "search", id="add-database"),
        pytest.param(_set_db("worker", instance_class="db.m7g.large"), "worker", id="instance-class"),
        pytest.param(_set_db("worker", replicas=3), "worker", id="replicas"),
        pytest.param(_set_db("worker", parameters={"work_mem": "65536"}), "worker", id="parameters"),
        pytest.param(_set_db("worker", tier="critical"), "worker", id="tier"),
        pytest.param(_set_db("worker", storage_gb=200, max_storage_gb=400), "worker", id="storage"),
        pytest.param(_add_tier, "worker", id="add-tier"),
        pytest.param(_set_db("worker", master_password_version=2), "worker", id="master-password-version"),
        pytest.param(_set_db("worker", connection_limit=50), "worker", id="connection-limit"),
    ],
)
def test_replacement_guard(prod_run, edit, edited):
    before = _snapshot(prod_run, edited)
    after = _snapshot(run_stack("prod", edit=edit), edited)
    missing = set(before) - set(after)
    assert not missing, f"resources of other databases disappeared: {sorted(missing)[:3]}"
    changed = [urn for urn in before if before[urn] != after[urn]]
    assert not changed, f"other databases' resources changed: {changed[:3]}"
    assert before, "the guard compared something"
    # the new boundary resources are under the guard too: endpoints, vault policies, other databases'
    # log groups and restore testing selections
    guarded = {urn.split("::")[2].split("$")[-1] for urn in before}
    assert {"aws:ec2/vpcEndpoint:VpcEndpoint", "aws:backup/vaultPolicy:VaultPolicy", "aws:cloudwatch/logGroup:LogGroup",
            "aws:backup/restoreTestingSelection:RestoreTestingSelection", "aws:kms/key:Key"} <= guarded


@pytest.mark.parametrize(
    "edit,path",
    [
        (lambda c: c["bulkhead:databases"]["auth"].update(replicas=6), "bulkhead:databases.auth.replicas"),
        (lambda c: c.__setitem__("bulkhead:backup_tiers", {"standard": {"pitr_days": 36}}), "bulkhead:backup_tiers.standard.pitr_days"),
        (lambda c: c.__setitem__("bulkhead:backup_tiers", {"standard": {"pitr_days": 0}}), "bulkhead:backup_tiers.standard.pitr_days"),
        (lambda c: c["bulkhead:databases"]["app"].update(server="shared"), "bulkhead:databases.app.server"),
        (lambda c: c["bulkhead:databases"]["app"].update(instance_class="r6g.large"), "bulkhead:databases.app.instance_class"),
        (lambda c: c.__setitem__("bulkhead:dr_region", "eu-west-1"), "bulkhead:dr_region"),
        (lambda c: c["bulkhead:databases"]["auth"].update(master_password_version=0), "bulkhead:databases.auth.master_password_version"),
        (lambda c: c["bulkhead:databases"]["auth"].update(connection_limit=0), "bulkhead:databases.auth.connection_limit"),
        (lambda c: c["bulkhead:databases"]["auth"].update(master_password_version="2"), "bulkhead:databases.auth.master_password_version"),
        (lambda c: c.__setitem__("bulkhead:network", {"vpc_id": "vpc-0abc1234", "subnet_ids": ["subnet-0aaa1111", "subnet-0bbb2222"],
                                                      "secretsmanager_endpoint_exists": "yes"}), "bulkhead:network.secretsmanager_endpoint_exists"),
        # app has replicas: an explicit major upgrade is refused with the runbook (issue 19, second pass)
        (lambda c: c["bulkhead:databases"]["app"].update(engine_version="17", allow_major_upgrade_to=17),
         "bulkhead:databases.app.allow_major_upgrade_to"),
    ],
    ids=["replicas-6", "pitr-36", "pitr-0", "server-on-aws", "instance-class", "dr-equals-region",
         "master-password-version-0", "connection-limit-0", "master-password-version-string", "endpoint-exists-not-bool",
         "major-upgrade-with-replicas"],
)
def test_aws_catalogue_errors_exit_2(tmp_path, edit, path):
    import shutil

    import yaml

    for item in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(f"{ROOT}/{item}", tmp_path / item)
    shutil.copytree(f"{ROOT}/components", tmp_path / "components")
    config = copy.deepcopy(yaml.safe_load(open(f"{ROOT}/Pulumi.prod.yaml"))["config"])
    edit(config)
    (tmp_path / "Pulumi.bad.yaml").write_text(yaml.safe_dump({"config": config}))
    proc = subprocess.run(
        [sys.executable, "-m", "bulkhead", "plan", "--stack", "bad"],
        cwd=ROOT, capture_output=True, text=True, env={**__import__("os").environ, "BULKHEAD_PROJECT_DIR": str(tmp_path)},
    )
    assert proc.returncode == 2, proc.stderr
    assert path in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / ".bulkhead").exists(), "nothing is written for a bad config"


def test_pinned_minor_turns_auto_minor_upgrade_off():
    def edit(cfg):
        cfg["bulkhead:databases"]["worker"]["engine_version"] = "16.9"  # a minor RDS offers (aws_offerings)

    run = run_stack("prod", edit=edit)
    for instance in run.by_type(RDS):
        pinned = _db(instance) == "worker"
        # RDS would move a pinned minor forward and the next `up` would try to go back.
        assert instance.inputs["autoMinorVersionUpgrade"] is (not pinned), instance.name
        if pinned:
            assert instance.inputs.get("engineVersion", "16.9") == "16.9"


def test_dr_provider_uses_the_stacks_credentials():
    def edit(cfg):
        cfg["aws:profile"] = "prod-admin"
        cfg["aws:assumeRoles"] = [{"roleArn": "arn:aws:iam::123456789012:role/deployer"}]

    run = run_stack("prod", edit=edit)
    (provider,) = run.by_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-central-1"
    assert provider.inputs["profile"] == "prod-admin"
    assert "deployer" in json.dumps(provider.inputs["assumeRoles"])


AWS_NAME = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*-?$"


def test_names_are_valid_for_awkward_stack_and_database_names():
    import re

    def edit(cfg):
        cfg["bulkhead:databases"]["billing_v2"] = {"owner": "billing-service"}
        cfg["bulkhead:dr_region"] = "eu-central-1"

    run = run_stack("prod", edit=edit, stack_name="Prod.EU_1")
    checked = 0
    for r in run.resources:
        for key in ("identifier", "namePrefix"):
            value = r.inputs.get(key)
            if value and r.type.startswith(("aws:rds/", "aws:backup/")):
                assert re.match(AWS_NAME, value), f"{r.name}.{key} = {value!r}"
                assert "--" not in value
                checked += 1
        if r.type == "aws:kms/alias:Alias":
            assert re.match(r"^alias/[A-Za-z0-9/_-]+$", r.inputs["name"]), r.inputs["name"]
    assert checked >= 8


def test_new_names_fit_aws_limits_for_the_longest_names():
    """Lambda FunctionName <= 64 ([a-zA-Z0-9-_]), IAM role name_prefix <= 38, secret names
    a-zA-Z0-9/_+=.@- (<= 512 with the provider's 26-character suffix), EC2 group descriptions
    a-zA-Z0-9 and ._-:/()#,@[]+=&;{}!$* with spaces, at most 255."""
    import re

    long_name = "d" + "x_" * 31  # 63 characters, the longest database name
    owner = "o" + "-y" * 31

    def edit(cfg):
        cfg["bulkhead:databases"] = {long_name: {"owner": owner, "replicas": 1}, "a": {"owner": "a-service"}}

    run = run_stack("prod", edit=edit, stack_name="Production.Europe_West.Tenant-Number-42-Of-Many")
    for function in run.by_type(FUNCTION):
        assert len(function.inputs["name"]) <= 64 and re.fullmatch(r"[a-zA-Z0-9_-]+", function.inputs["name"])
    for role in run.by_type(IAM_ROLE):
        assert len(role.inputs["namePrefix"]) <= 38, role.inputs["namePrefix"]
    for secret in run.by_type(SECRET):
        assert re.fullmatch(r"[A-Za-z0-9/_+=.@-]+", secret.inputs["namePrefix"]) and len(secret.inputs["namePrefix"]) <= 512 - 26
    for group in run.by_type(SG):
        if _role(group) == "bootstrap":
            assert re.fullmatch(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]+", group.inputs["description"])
            assert len(group.inputs["description"]) <= 255 and len(group.inputs["namePrefix"]) <= 255 - 26
    assert len(run.by_type(FUNCTION)) == 2 and len({f.inputs["name"] for f in run.by_type(FUNCTION)}) == 2


def test_master_password_version_rotates_only_that_database(prod_run):
    rotated = run_stack("prod", edit=_set_db("worker", master_password_version=2))
    def by_name(run, typ):
        return {r.name: r for r in run.by_type(typ)}
    before, after = by_name(prod_run, PASSWORD), by_name(rotated, PASSWORD)
    assert after["worker-master-password"].inputs["keepers"] == {"master_password_version": "2"}
    runs_before, runs_after = by_name(prod_run, INVOCATION), by_name(rotated, INVOCATION)
    assert json.loads(runs_after["worker-bootstrap-run"].inputs["input"])["master_password_version"] == 2
    for other in ("auth", "app"):
        assert runs_after[f"{other}-bootstrap-run"].inputs == runs_before[f"{other}-bootstrap-run"].inputs
        assert after[f"{other}-master-password"].inputs == before[f"{other}-master-password"].inputs


def test_aws_identifier_collision_is_refused():
    from components.catalogue.model import CatalogueError, load_catalogue

    raw = {"platform": "aws", "databases": {"a_b": {"owner": "x"}, "a__b": {"owner": "y", "db_name": "ab2"}}}
    with pytest.raises(CatalogueError) as err:
        load_catalogue(raw, "prod", region="eu-west-1")
    assert [p.path for p in err.value.problems] == ["bulkhead:databases.a__b"]
    assert "AWS name 'a-b'" in str(err.value)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_two_runs_give_the_same_plan(stack):
    """The SDK registers resources in a varying order; the plan must not vary with it."""
    from bulkhead.offline.mock_runtime import to_stack_export

    first, second = (json.dumps(to_stack_export(run_stack(stack))) for _ in range(2))
    assert first == second
    resources = json.loads(first)["deployment"]["resources"]
    seen = set()
    for r in resources:
        for before in [r.get("parent"), *r.get("dependencies", [])]:
            assert not before or before in seen, f"{r['urn']} comes before {before}"
        seen.add(r["urn"])
