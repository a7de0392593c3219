"""`bulkhead audit` against a moto account built from the prod catalogue.

The account is built FIRST (moto chooses its own ids and ARNs), then an outputs
file in the shape of the prod stack's outputs is written from what moto
returned. A compliant account audits clean (exit 0); each drift, one at a
time, is reported against the right database and check (exit 1).

moto 5.2 has no AWS Backup selections API, so the tests answer
ListBackupSelections/GetBackupSelection from a small in-test store through a
botocore `before-call` hook on the audit's session (everything else is moto).
"""

from __future__ import annotations

import copy
import json
import os
import types

import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT_ID
from moto.rds.models import rds_backends

from bulkhead import aws_errors
from bulkhead.commands import audit as audit_mod
from bulkhead.cli import main
from bulkhead.offline.mock_runtime import exports_plain
from bulkhead.offline.stack_config import load_catalogue_for
from components.prod.alarms import alarm_guard_statement
from components.prod.rds_postgres import BASE_PARAMETERS, CA_CERT_IDENTIFIER, instance_identifier
from tests.support.bootstrap_function import create_bootstrap_function

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "eu-west-1"
STACK = "prod"
DR_VAULT_ARN = "arn:aws:backup:eu-central-1:123456789012:backup-vault:bulkhead-prod-dr"


class FakeSelections:
    """ListBackupSelections / GetBackupSelection, which moto 5.2 lacks."""

    def __init__(self):
        self.by_plan: dict[str, dict[str, dict]] = {}

    def add(self, plan_id: str, selection: dict) -> str:
        sid = f"sel-{len(self.by_plan.get(plan_id, {})) + 1}-{plan_id[:8]}"
        self.by_plan.setdefault(plan_id, {})[sid] = selection
        return sid

    def _plan_id(self, params) -> str:
        return params["url_path"].split("/backup/plans/", 1)[1].split("/", 1)[0]

    def list(self, params, **_):
        plan_id = self._plan_id(params)
        items = [{"SelectionId": sid, "SelectionName": s["SelectionName"], "BackupPlanId": plan_id,
                  "IamRoleArn": s["IamRoleArn"]} for sid, s in self.by_plan.get(plan_id, {}).items()]
        return types.SimpleNamespace(status_code=200, headers={}), {"BackupSelectionsList": items}

    def get(self, params, **_):
        plan_id = self._plan_id(params)
        sid = params["url_path"].rstrip("/").rsplit("/", 1)[1]
        sel = self.by_plan.get(plan_id, {}).get(sid)
        if sel is None:
            return (types.SimpleNamespace(status_code=404, headers={}),
                    {"Error": {"Code": "ResourceNotFoundException", "Message": "no such selection"}})
        return (types.SimpleNamespace(status_code=200, headers={}),
                {"BackupSelection": sel, "SelectionId": sid, "BackupPlanId": plan_id})


class FakeProxyEndpoints:
    """DescribeDBProxyEndpoints, which moto 5.2 lacks: each proxy's default endpoint (IsDefault true, as
    RDS lists it), and whatever a test adds by hand."""

    def __init__(self, rds):
        self.rds = rds
        self.extra: list[dict] = []

    def describe(self, params, **_):
        name = params["body"].get("DBProxyName")
        proxies = [p for p in self.rds.describe_db_proxies()["DBProxies"] if name in (None, p["DBProxyName"])]
        if name and not proxies:
            return (types.SimpleNamespace(status_code=404, headers={}),
                    {"Error": {"Code": "DBProxyNotFoundFault", "Message": f"{name} not found"}})
        found = [{"DBProxyEndpointName": "default", "DBProxyName": p["DBProxyName"], "VpcId": p.get("VpcId"),
                  "Endpoint": p["Endpoint"], "TargetRole": "READ_WRITE", "IsDefault": True,
                  "VpcSecurityGroupIds": p.get("VpcSecurityGroupIds", [])} for p in proxies]
        found += [e for e in self.extra if name in (None, e["DBProxyName"])]
        return types.SimpleNamespace(status_code=200, headers={}), {"DBProxyEndpoints": found}


@pytest.fixture
def account(prod_run, tmp_path, monkeypatch):
    """A compliant account for the prod catalogue; yields a namespace with clients and the outputs path."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        catalogue = load_catalogue_for(ROOT, STACK)
        # One shared model loader (aws_errors.session): moto resets boto3's default session per test.
        sess = aws_errors.session(REGION)
        rds, ec2, kms, sm, backup, iam = (sess.client(s, region_name=REGION)
                                          for s in ("rds", "ec2", "kms", "secretsmanager", "backup", "iam"))
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        outputs = copy.deepcopy(exports_plain(prod_run.exports))
        clients = {}
        for owner in catalogue.owners():
            clients[owner] = ec2.create_security_group(GroupName=f"{owner}-client", Description="client", VpcId=vpc)["GroupId"]
        for name, db in catalogue.databases.items():
            tier = catalogue.backup_tiers[db.tier]
            ident = instance_identifier(STACK, name)
            tags = {"bulkhead:database": name, "bulkhead:owner": db.owner, "bulkhead:stack": STACK, "bulkhead:tier": db.tier}
            key = kms.create_key(Description=f"{name}")["KeyMetadata"]["Arn"]
            db_group = ec2.create_security_group(GroupName=f"{name}-db", Description="db", VpcId=vpc)["GroupId"]
            bootstrap_group = ec2.create_security_group(GroupName=f"{name}-bootstrap", Description="bootstrap", VpcId=vpc)["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=db_group, IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": clients[db.owner], "Description": f"PostgreSQL from {db.owner}"},
                                     {"GroupId": bootstrap_group, "Description": f"bootstrap of {name}"}]}])
            pg = f"bulkhead-{STACK}-{name}-pg{db.major}"
            rds.create_db_parameter_group(DBParameterGroupName=pg, DBParameterGroupFamily=f"postgres{db.major}", Description="x")
            rds.modify_db_parameter_group(DBParameterGroupName=pg, Parameters=[
                {"ParameterName": k, "ParameterValue": v, "ApplyMethod": "pending-reboot"} for k, v in BASE_PARAMETERS.items()])
            inst = rds.create_db_instance(
                DBInstanceIdentifier=ident, Engine="postgres", EngineVersion=db.engine_version,
                DBInstanceClass=db.instance_class, AllocatedStorage=db.storage_gb, DBName=db.db_name,
                MasterUsername="bulkhead_admin", MasterUserPassword=f"Generated{name}Passw0rdOf40Characters1234",
                StorageEncrypted=True, KmsKeyId=key, PubliclyAccessible=False, VpcSecurityGroupIds=[db_group],
                DBParameterGroupName=pg, MultiAZ=db.multi_az, BackupRetentionPeriod=tier.pitr_days,
                DeletionProtection=db.deletion_protection, EnableIAMDatabaseAuthentication=True,
                CACertificateIdentifier=CA_CERT_IDENTIFIER,
                Tags=[{"Key": k, "Value": v} for k, v in {**tags, "bulkhead:role": "primary"}.items()],
            )["DBInstance"]
            readers = []
            for i in range(1, db.replicas + 1):
                rep = rds.create_db_instance_read_replica(
                    DBInstanceIdentifier=f"{ident}-replica-{i}", SourceDBInstanceIdentifier=ident,
                    DBInstanceClass=db.replica_instance_class, PubliclyAccessible=False, DeletionProtection=False,
                    Tags=[{"Key": k, "Value": v} for k, v in {**tags, "bulkhead:role": "replica"}.items()],
                )["DBInstance"]
                readers.append(rep["Endpoint"]["Address"] if rep.get("Endpoint") else
                               rds.describe_db_instances(DBInstanceIdentifier=rep["DBInstanceIdentifier"])["DBInstances"][0]["Endpoint"]["Address"])
            # moto gives every instance one constant DbiResourceId; AWS gives each its own.
            backend = rds_backends[ACCOUNT_ID][REGION]
            for i, each in enumerate([ident] + [f"{ident}-replica-{i}" for i in range(1, db.replicas + 1)]):
                backend.databases[each].dbi_resource_id = f"db-{name.upper()}{i}RESOURCEID"
            inst = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
            out = outputs["databases"][name]
            host = inst["Endpoint"]["Address"]
            # bulkhead's master secret (components/prod/rds_postgres.py), under the database's key.
            secret_arn = sm.create_secret(
                Name=f"bulkhead/{STACK}/{name}/master-20261201000000000000000001", KmsKeyId=key,
                SecretString=json.dumps({"engine": "postgres", "host": host, "port": 5432, "username": "bulkhead_admin",
                                         "password": f"Generated{name}Passw0rdOf40Characters1234", "dbname": db.db_name,
                                         "dbInstanceIdentifier": ident}))["ARN"]
            resource_ids = [inst["DbiResourceId"]] + [
                rds.describe_db_instances(DBInstanceIdentifier=f"{ident}-replica-{i}")["DBInstances"][0]["DbiResourceId"]
                for i in range(1, db.replicas + 1)]
            policy_arn = iam.create_policy(PolicyName=f"bulkhead-{STACK}-{name}-access", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Sid": "ConnectAsServiceRole", "Effect": "Allow", "Action": "rds-db:connect",
                    "Resource": [f"arn:aws:rds-db:{REGION}:{ACCOUNT_ID}:dbuser:{rid}/{db.db_name}" for rid in resource_ids]},
                    alarm_guard_statement("aws", REGION, ACCOUNT_ID, STACK)]}))["Policy"]["Arn"]
            out.update(host=host, reader_hosts=readers, secret_arn=secret_arn, access_policy_arn=policy_arn,
                       url=f"postgresql://{db.db_name}@{host}:5432/{db.db_name}?sslmode=verify-full",
                       security_group_id=clients[db.owner], kms_key_arn=key, database_security_group_id=db_group,
                       bootstrap_security_group_id=bootstrap_group,
                       instance_identifier=ident, resource_id=inst["DbiResourceId"])
            # The bootstrap function as the deployment leaves it (code, configuration, environment).
            create_bootstrap_function(sess, REGION, name, db, out)
        vault = backup.create_backup_vault(BackupVaultName=f"bulkhead-{STACK}-primary")["BackupVaultName"]
        selections = FakeSelections()
        proxy_endpoints = FakeProxyEndpoints(rds)
        plans = {}
        for tier_name in sorted({d.tier for d in catalogue.databases.values()}):
            tier = catalogue.backup_tiers[tier_name]
            rule = {"RuleName": f"{tier_name}-scheduled", "TargetBackupVaultName": vault, "ScheduleExpression": tier.schedule,
                    "Lifecycle": {"DeleteAfterDays": tier.retention_days}}
            if tier.copy_to_dr:
                rule["CopyActions"] = [{"DestinationBackupVaultArn": DR_VAULT_ARN, "Lifecycle": {"DeleteAfterDays": tier.retention_days}}]
            plan_id = backup.create_backup_plan(BackupPlan={"BackupPlanName": f"bulkhead-{STACK}-{tier_name}", "Rules": [rule]})["BackupPlanId"]
            plans[tier_name] = plan_id
            selections.add(plan_id, {
                "SelectionName": f"bulkhead-{STACK}-{tier_name}", "IamRoleArn": "arn:aws:iam::123456789012:role/backup",
                "Resources": ["arn:aws:rds:*:*:db:*"], "ListOfTags": [], "NotResources": [],
                "Conditions": {"StringEquals": [
                    {"ConditionKey": "aws:ResourceTag/bulkhead:tier", "ConditionValue": tier_name},
                    {"ConditionKey": "aws:ResourceTag/bulkhead:stack", "ConditionValue": STACK},
                    {"ConditionKey": "aws:ResourceTag/bulkhead:role", "ConditionValue": "primary"}]},
            })

        def hooked_session(region=None):
            sess = aws_errors.session(region)
            sess.events.register("before-call.backup.ListBackupSelections", selections.list)
            sess.events.register("before-call.backup.GetBackupSelection", selections.get)
            sess.events.register("before-call.rds.DescribeDBProxyEndpoints", proxy_endpoints.describe)
            return sess

        monkeypatch.setattr(audit_mod, "session", hooked_session)
        path = tmp_path / "prod-outputs.json"
        path.write_text(json.dumps(outputs))
        yield types.SimpleNamespace(rds=rds, ec2=ec2, kms=kms, sm=sm, backup=backup, iam=iam, outputs=outputs, path=str(path),
                                    clients=clients, catalogue=catalogue, selections=selections, plans=plans,
                                    session=hooked_session, proxy_endpoints=proxy_endpoints)


def run_audit(account, capsys, *extra) -> tuple[int, str, str]:
    code = main(["audit", "--stack", STACK, "--outputs", account.path, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def drifts(account, capsys) -> tuple[int, set[tuple[str, str]], dict]:
    code, out, err = run_audit(account, capsys, "--json")
    assert "Traceback" not in err
    data = json.loads(out)
    found = {(name, f["check"]) for name, d in data["databases"].items() for f in d["findings"] if f["status"] == "DRIFT"}
    return code, found, data


def test_compliant_account_is_clean(account, capsys):
    code, out, err = run_audit(account, capsys)
    assert code == 0, out
    assert "no drift: 3 database(s)" in out
    # the table: one row per check, one column per database, each ok
    for check in audit_mod.CHECK_NAMES:
        row = next(line for line in out.splitlines() if line.startswith(check + " "))
        assert row.split()[1:] == ["ok", "ok", "ok"], row
    # progress per database on stderr, never on stdout
    assert "audit: [1/3] app" in err and "audit:" not in out


def test_json_is_machine_readable_and_clean(account, capsys):
    code, found, data = drifts(account, capsys)
    assert code == 0 and found == set()
    assert data["stack"] == STACK and data["region"] == REGION and data["drift"] == 0
    assert sorted(data["databases"]) == ["app", "auth", "worker"]
    assert {f["check"] for f in data["databases"]["auth"]["findings"]} == set(audit_mod.CHECK_NAMES)


def _find_id(account, name):
    return account.outputs["databases"][name]["instance_identifier"]


def _parameter_group(account, name):
    """The instance's parameter group (its name follows the catalogue's engine major)."""
    [inst] = account.rds.describe_db_instances(DBInstanceIdentifier=_find_id(account, name))["DBInstances"]
    return inst["DBParameterGroups"][0]["DBParameterGroupName"]


DRIFTS = {
    "public-access-on": (lambda a: a.rds.modify_db_instance(DBInstanceIdentifier=_find_id(a, "app"), PubliclyAccessible=True),
                         {("app", "not-public")}),
    "replica-deleted": (lambda a: a.rds.delete_db_instance(DBInstanceIdentifier=_find_id(a, "auth") + "-replica-2", SkipFinalSnapshot=True),
                        {("auth", "replicas")}),
    "force-ssl-off": (lambda a: a.rds.modify_db_parameter_group(
        DBParameterGroupName=_parameter_group(a, "worker"), Parameters=[
            {"ParameterName": "rds.force_ssl", "ParameterValue": "0", "ApplyMethod": "pending-reboot"}]),
                      {("worker", "ssl-forced")}),
    "retention-lowered": (lambda a: a.rds.modify_db_instance(DBInstanceIdentifier=_find_id(a, "auth"), BackupRetentionPeriod=3),
                          {("auth", "retention")}),
    "deletion-protection-off": (lambda a: a.rds.modify_db_instance(DBInstanceIdentifier=_find_id(a, "app"), DeletionProtection=False),
                                {("app", "deletion-protection")}),
    "cidr-rule-added": (lambda a: a.ec2.authorize_security_group_ingress(
        GroupId=a.outputs["databases"]["worker"]["database_security_group_id"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]),
                        {("worker", "ingress")}),
    "other-databases-bootstrap-admitted": (lambda a: a.ec2.authorize_security_group_ingress(
        GroupId=a.outputs["databases"]["auth"]["database_security_group_id"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                        "UserIdGroupPairs": [{"GroupId": a.outputs["databases"]["app"]["bootstrap_security_group_id"]}]}]),
                                           {("auth", "ingress")}),
    "foreign-group-admitted": (lambda a: a.ec2.authorize_security_group_ingress(
        GroupId=a.outputs["databases"]["auth"]["database_security_group_id"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                        "UserIdGroupPairs": [{"GroupId": a.clients["app-service"]}]}]),
                               {("auth", "ingress")}),
    "secret-deleted": (lambda a: a.sm.delete_secret(SecretId=a.outputs["databases"]["app"]["secret_arn"], ForceDeleteWithoutRecovery=True),
                       {("app", "master-secret")}),
    "iam-auth-off": (lambda a: a.rds.modify_db_instance(DBInstanceIdentifier=_find_id(a, "worker"), EnableIAMDatabaseAuthentication=False),
                     {("worker", "iam-auth")}),
    "instance-missing": (lambda a: (a.rds.modify_db_instance(DBInstanceIdentifier=_find_id(a, "worker"), DeletionProtection=False),
                                    a.rds.delete_db_instance(DBInstanceIdentifier=_find_id(a, "worker"), SkipFinalSnapshot=True)),
                         {("worker", "instance")}),
    "old-ca": (lambda a: a.rds.modify_db_instance(DBInstanceIdentifier=_find_id(a, "auth"), CACertificateIdentifier="rds-ca-2019"),
               {("auth", "ca")}),
    "multi-az-off": (lambda a: a.rds.modify_db_instance(DBInstanceIdentifier=_find_id(a, "app"), MultiAZ=False),
                     {("app", "multi-az")}),
    "backup-selection-removed": (lambda a: a.selections.by_plan[a.plans["critical"]].clear(),
                                 {("auth", "backup-plan")}),
    "managed-master-turned-on": (lambda a: a.rds.modify_db_instance(DBInstanceIdentifier=_find_id(a, "auth"), ManageMasterUserPassword=True),
                                 {("auth", "master-secret")}),
    "secret-under-another-key": (lambda a: a.sm.update_secret(SecretId=a.outputs["databases"]["worker"]["secret_arn"],
                                                              KmsKeyId=a.outputs["databases"]["app"]["kms_key_arn"]),
                                 {("worker", "master-secret")}),
    "outputs-name-another-secret": (lambda a: (a.outputs["databases"]["app"].update(
        secret_arn=a.outputs["databases"]["auth"]["secret_arn"]), open(a.path, "w").write(json.dumps(a.outputs))),
                                    # the bootstrap function reads another secret than the outputs name
                                    {("app", "master-secret"), ("app", "bootstrap")}),
    "access-policy-any-user": (lambda a: _policy_version(a, "auth", lambda doc: doc["Statement"][0].update(
        Resource=[r.rsplit("/", 1)[0] + "/*" for r in doc["Statement"][0]["Resource"]])), {("auth", "access-policy")}),
    "access-policy-grants-master-secret": (lambda a: _policy_version(a, "app", lambda doc: doc["Statement"].append(
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": a.outputs["databases"]["app"]["secret_arn"]})),
        {("app", "access-policy")}),
    "access-policy-reaches-another-database": (lambda a: _policy_version(a, "worker", lambda doc: doc["Statement"][0]["Resource"].append(
        f"arn:aws:rds-db:{REGION}:{ACCOUNT_ID}:dbuser:{a.outputs['databases']['auth']['resource_id']}/worker")),
        {("worker", "access-policy")}),
    # IAM answers NoSuchEntity (not a *NotFound code): audit crashed with "AWS error" (issue 19, finding 8)
    "access-policy-deleted": (lambda a: a.iam.delete_policy(PolicyArn=a.outputs["databases"]["auth"]["access_policy_arn"]),
                              {("auth", "access-policy")}),
    "key-scheduled-for-deletion": (lambda a: a.kms.schedule_key_deletion(KeyId=a.outputs["databases"]["app"]["kms_key_arn"].rsplit("/", 1)[1],
                                                                         PendingWindowInDays=30),
                                   {("app", "database-key")}),
    "key-disabled": (lambda a: a.kms.disable_key(KeyId=a.outputs["databases"]["worker"]["kms_key_arn"].rsplit("/", 1)[1]),
                     {("worker", "database-key")}),
    "key-deleted": (lambda a: _delete_key(a, a.outputs["databases"]["worker"]["kms_key_arn"]),
                    {("worker", "database-key")}),
    # o-fix review of issue 24: the Deny of the stack's alarms removed by hand
    "access-policy-alarm-guard-removed": (lambda a: _policy_version(a, "app", lambda doc: doc.update(
        Statement=[x for x in doc["Statement"] if x["Effect"] != "Deny"])), {("app", "access-policy")}),
    "access-policy-misses-a-replica": (lambda a: _policy_version(a, "auth", lambda doc: doc["Statement"][0]["Resource"].pop()),
                                       {("auth", "access-policy")}),
}


def _bootstrap(account, name, **update):
    """Change a database's bootstrap function as someone with lambda:UpdateFunction* could."""
    from components.prod.rds_bootstrap import function_name

    lam = account.session(REGION).client("lambda", region_name=REGION)
    fname = function_name(account.outputs["databases"][name]["instance_identifier"])
    if "code" in update:
        lam.update_function_code(FunctionName=fname, ZipFile=update.pop("code"))
    if "layer" in update:
        update.pop("layer")
        layer = lam.publish_layer_version(LayerName="wrapper", Content={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
        update["Layers"] = [layer["LayerVersionArn"]]
    if "env" in update:
        env = lam.get_function_configuration(FunctionName=fname)["Environment"]["Variables"]
        update["Environment"] = {"Variables": {**env, **update.pop("env")}}
    if update:
        lam.update_function_configuration(FunctionName=fname, **update)


BOOTSTRAP_DRIFTS = {
    "bootstrap-code-changed": (lambda a: _bootstrap(a, "app", code=_other_zip()), {("app", "bootstrap")}),
    "bootstrap-layer-added": (lambda a: _bootstrap(a, "app", layer=True), {("app", "bootstrap")}),
    "bootstrap-exec-wrapper": (lambda a: _bootstrap(a, "auth", env={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/steal"}),
                               {("auth", "bootstrap")}),
    "bootstrap-other-secret": (lambda a: _bootstrap(a, "worker", env={
        "BULKHEAD_SECRET_ARN": a.outputs["databases"]["app"]["secret_arn"]}), {("worker", "bootstrap")}),
    "bootstrap-handler-changed": (lambda a: _bootstrap(a, "worker", Handler="evil.handler"), {("worker", "bootstrap")}),
    # the function would send its signed GetSecretValue to another host (a replayable request for the master)
    "bootstrap-secrets-endpoint-elsewhere": (lambda a: _bootstrap(a, "app", env={
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "https://secretsmanager.eu-west-1.amazonaws.com.attacker.example"}),
        {("app", "bootstrap")}),
    "bootstrap-secrets-endpoint-other-region": (lambda a: _bootstrap(a, "app", env={
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "https://vpce-0a1b2c3d4e5f60718-abcdefgh.secretsmanager.us-east-1.vpce.amazonaws.com"}),
        {("app", "bootstrap")}),
    "bootstrap-deleted": (lambda a: a.session(REGION).client("lambda", region_name=REGION).delete_function(
        FunctionName=f"{a.outputs['databases']['app']['instance_identifier']}-bootstrap"), {("app", "bootstrap")}),
}


def _other_zip() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("components/postgres/bootstrap_handler.py", "def handler(e, c): return 'master'\n")
    return buf.getvalue()


@pytest.mark.parametrize("drift", sorted(BOOTSTRAP_DRIFTS))
def test_a_changed_bootstrap_function_is_drift(account, capsys, drift):
    """Finding 1: whoever changes the bootstrap function can become the master: audit says so."""
    make, expected = BOOTSTRAP_DRIFTS[drift]
    make(account)
    code, found, data = drifts(account, capsys)
    assert code == 1 and found == expected, f"{drift}: expected {expected}, got {found}"
    (name, _), = expected
    message = next(f["message"] for f in data["databases"][name]["findings"] if f["check"] == "bootstrap")
    assert "bootstrap" in message and ("can become the master" in message or "does not exist" in message)


def test_the_given_network_endpoint_url_is_not_drift(account, capsys):
    """A given VPC's Secrets Manager endpoint has no private DNS: the stack sets the function's
    AWS_ENDPOINT_URL_SECRETS_MANAGER to the endpoint's Regional name, which is not drift."""
    _bootstrap(account, "app", env={"AWS_ENDPOINT_URL_SECRETS_MANAGER":
                                    f"https://vpce-0a1b2c3d4e5f60718-abcdefgh.secretsmanager.{REGION}.vpce.amazonaws.com"})
    code, found, _ = drifts(account, capsys)
    assert ("app", "bootstrap") not in found, found


def test_a_master_older_than_the_tiers_maximum_is_drift(account, capsys, monkeypatch):
    """Secrets Manager does not rotate the master: audit flags it past master_max_age_days."""
    import datetime as dt

    original = audit_mod.Auditor.__init__

    def later(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.now = self.now + dt.timedelta(days=91, hours=1)

    monkeypatch.setattr(audit_mod.Auditor, "__init__", later)
    code, found, data = drifts(account, capsys)
    assert code == 1
    # (91 days on, the recovery points are late too: that check's business)
    assert {f for f in found if f[1] == "master-age"} == {(name, "master-age") for name in account.catalogue.databases}
    message = next(f["message"] for f in data["databases"]["app"]["findings"] if f["check"] == "master-age")
    assert "91 days old" in message and "raise master_password_version" in message


def _delete_key(account, arn):
    """A key past its deletion window (moto keeps scheduled keys: remove it from the backend)."""
    from moto.kms.models import kms_backends

    kms_backends[ACCOUNT_ID][REGION].keys.pop(arn.rsplit("/", 1)[1])


def _policy_version(account, name, edit):
    """A new default version of the database's access policy, edited by hand."""
    arn = account.outputs["databases"][name]["access_policy_arn"]
    policy = account.iam.get_policy(PolicyArn=arn)["Policy"]
    doc = account.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    edit(doc)
    account.iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc), SetAsDefault=True)


@pytest.mark.parametrize("drift", sorted(DRIFTS))
def test_each_drift_is_reported_against_its_database_and_check(account, capsys, drift):
    make, expected = DRIFTS[drift]
    make(account)
    code, found, data = drifts(account, capsys)
    assert code == 1
    assert found == expected, f"{drift}: expected {expected}, got {found}"
    assert data["drift"] == len(expected)


def test_parameter_group_pending_reboot_is_drift_with_the_reboot_command(account, capsys, monkeypatch):
    """moto always reports a parameter group in-sync; real RDS reports `pending-reboot` after a
    static setting changed. The hook rewrites only that field of moto's DescribeDBInstances answer."""
    ident = _find_id(account, "app")

    def pending(parsed, **_):
        for inst in parsed.get("DBInstances", []):
            if inst["DBInstanceIdentifier"] == ident:
                for group in inst["DBParameterGroups"]:
                    group["ParameterApplyStatus"] = "pending-reboot"

    def hooked(region=None):
        sess = account.session(region)
        sess.events.register("after-call.rds.DescribeDBInstances", lambda parsed, **kw: pending(parsed))
        return sess

    monkeypatch.setattr(audit_mod, "session", hooked)
    code, found, data = drifts(account, capsys)
    assert code == 1 and found == {("app", "parameters-applied")}
    (finding,) = [f for f in data["databases"]["app"]["findings"] if f["check"] == "parameters-applied"]
    text = json.dumps(finding)
    assert "pending-reboot" in text and f"aws rds reboot-db-instance --db-instance-identifier {ident}" in text


def test_table_names_the_drift(account, capsys):
    DRIFTS["cidr-rule-added"][0](account)
    code, out, _ = run_audit(account, capsys)
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("ingress "))
    assert row.split()[1:] == ["ok", "ok", "DRIFT"]
    assert any(line.strip().startswith("worker") and "10.0.0.0/8" in line for line in out.splitlines())
    assert "1 drift(s) in 1 of 3 database(s)" in out


def test_no_secret_in_audit_output(account, capsys):
    DRIFTS["secret-deleted"][0](account)
    code, out, err = run_audit(account, capsys)
    # The only secret material an aws stack has is in Secrets Manager; audit never reads values.
    assert code == 1
    for db in account.outputs["databases"].values():
        value = json.loads(account.sm.get_secret_value(SecretId=db["secret_arn"])["SecretString"]) if db["secret_arn"] != account.outputs["databases"]["app"]["secret_arn"] else None
        if value:
            assert value["password"] not in out + err


def test_outputs_without_file_or_cli_say_how(account, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    code = main(["audit", "--stack", STACK])
    _, err = capsys.readouterr()
    assert code == 2 and "pulumi stack output --json --show-secrets --stack prod" in err


def test_docker_stack_is_bad_input(capsys):
    assert main(["audit", "--stack", "dev", "--outputs", "/nonexistent.json"]) == 2
    assert "platform docker" in capsys.readouterr().err


def test_bad_outputs_file_is_bad_input(account, capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["audit", "--stack", STACK, "--outputs", str(bad)]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_access_denied_is_a_clear_message(account, capsys, monkeypatch):
    def denied(**_):
        return (types.SimpleNamespace(status_code=403, headers={}),
                {"Error": {"Code": "AccessDenied", "Message": "User is not authorized to perform: rds:DescribeDBInstances"}})

    def session_denied(region=None):
        sess = account.session(region)
        sess.events.register("before-call.rds.DescribeDBInstances", denied)
        return sess

    monkeypatch.setattr(audit_mod, "session", session_denied)
    code, out, err = run_audit(account, capsys)
    assert code == 2 and out == ""
    assert "access denied" in err and "DescribeDBInstances" in err and "Traceback" not in err


def test_throttling_after_retries_is_a_clear_message(account, capsys, monkeypatch):
    def throttled(**_):
        return (types.SimpleNamespace(status_code=400, headers={}),
                {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}})

    def session_throttled(region=None):
        sess = account.session(region)
        sess.events.register("before-call.ec2.DescribeSecurityGroupRules", throttled)
        return sess

    monkeypatch.setattr(audit_mod, "session", session_throttled)
    code, out, err = run_audit(account, capsys)
    assert code == 2 and "throttling" in err and "Traceback" not in err


def test_no_credentials_is_a_clear_message(prod_run, tmp_path, capsys, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(exports_plain(prod_run.exports)))
    code = main(["audit", "--stack", STACK, "--outputs", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "no AWS credentials" in err and "Traceback" not in err


def test_retries_use_standard_mode():
    assert aws_errors.RETRIES["mode"] == "standard"
    c = aws_errors.client(aws_errors.session(REGION), "rds", REGION)
    assert c.meta.config.retries["mode"] == "standard"


def test_schedule_intervals():
    from datetime import timedelta

    assert audit_mod.schedule_interval("cron(0 * * * ? *)") == timedelta(hours=1)
    assert audit_mod.schedule_interval("cron(0 */6 * * ? *)") == timedelta(hours=6)
    assert audit_mod.schedule_interval("cron(0 5 * * ? *)") == timedelta(days=1)
    assert audit_mod.schedule_interval("rate(12 hours)") == timedelta(hours=12)


def test_thresholds_are_the_policy_packs_loaded_lazily():
    """The pack (and pulumi_policy) is loaded by the audit, not when the CLI imports the module."""
    import subprocess
    import sys

    from bulkhead.commands.check import load_pack

    assert audit_mod.load_thresholds() is load_pack().thresholds
    probe = ("import sys, bulkhead.commands.audit; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'pulumi_policy', 'bulkhead_policies', 'boto3'}))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_audit_applies_the_packs_thresholds(account, capsys, monkeypatch):
    """A stricter pack threshold shows up as drift: the numbers are not copied into the audit."""
    real = audit_mod.load_thresholds()
    stricter = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if k.isupper()})
    stricter.ALLOWED_CA_IDENTIFIERS = ("rds-ca-some-future-ca",)
    monkeypatch.setattr(audit_mod, "load_thresholds", lambda: stricter)
    code, found, _ = drifts(account, capsys)
    assert code == 1 and found == {(n, "ca") for n in ("app", "auth", "worker")}


def _add_proxy(account, name="app"):
    """`proxy: true` for `name` in the moto account: a proxy whose group admits its owner's client group."""
    out = account.outputs["databases"][name]
    vpc = account.ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in account.ec2.describe_subnets()["Subnets"]][:2]
    group = account.ec2.create_security_group(GroupName=f"{name}-proxy", Description="proxy", VpcId=vpc)["GroupId"]
    account.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": out["security_group_id"]}]}])
    proxy = account.rds.create_db_proxy(
        DBProxyName=f"prod-{name}-proxy", EngineFamily="POSTGRESQL", Auth=[], RoleArn="arn:aws:iam::123456789012:role/p",
        VpcSubnetIds=subnets, VpcSecurityGroupIds=[group], RequireTLS=True)["DBProxy"]
    out["proxy_host"] = proxy["Endpoint"]
    with open(account.path, "w") as fh:
        json.dump(account.outputs, fh)
    return group


def test_proxy_is_checked_and_another_group_in_it_is_drift(account, capsys):
    group = _add_proxy(account)
    code, found, data = drifts(account, capsys)
    assert code == 0 and found == set()
    assert any(f["check"] == "proxy" and f["status"] == "ok" and "prod-app-proxy" in f["message"]
               for f in data["databases"]["app"]["findings"])
    other = account.outputs["databases"]["auth"]["security_group_id"]
    account.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": other}]}])
    code, found, data = drifts(account, capsys)
    assert code == 1 and found == {("app", "proxy")}
    message = next(f["message"] for f in data["databases"]["app"]["findings"] if f["check"] == "proxy")
    assert other in message


def test_proxy_host_of_no_proxy_is_drift(account, capsys):
    account.outputs["databases"]["worker"]["proxy_host"] = "prod-worker-proxy.proxy-x.eu-west-1.rds.amazonaws.com"
    with open(account.path, "w") as fh:
        json.dump(account.outputs, fh)
    code, found, _ = drifts(account, capsys)
    assert code == 1 and found == {("worker", "proxy")}


@pytest.mark.parametrize("role, vpc", [("READ_ONLY", None), ("READ_WRITE", "vpc-0other")])
def test_a_proxy_endpoint_bulkhead_did_not_declare_is_drift(account, capsys, role, vpc):
    """Review of issue 24 (o-fix): audit looked at the proxy's own endpoint and group only; a read-only endpoint,
    or one in another VPC with groups of its own, added by hand (CreateDBProxyEndpoint) is another way into the
    database that the proxy's group does not guard, and audit said ok."""
    group = _add_proxy(account)
    proxy = account.rds.describe_db_proxies(DBProxyName="prod-app-proxy")["DBProxies"][0]
    code, found, _ = drifts(account, capsys)
    assert code == 0 and found == set()  # the default endpoint alone is what bulkhead declares
    account.proxy_endpoints.extra.append({
        "DBProxyEndpointName": "by-hand", "DBProxyName": "prod-app-proxy", "VpcId": vpc or proxy.get("VpcId"),
        "VpcSecurityGroupIds": ["sg-0byhand"], "TargetRole": role, "IsDefault": False,
        "Endpoint": "by-hand.endpoint.proxy-x.eu-west-1.rds.amazonaws.com"})
    code, found, data = drifts(account, capsys)
    assert code == 1 and found == {("app", "proxy")}
    message = next(f["message"] for f in data["databases"]["app"]["findings"] if f["check"] == "proxy")
    assert "by-hand" in message and role in message and "delete-db-proxy-endpoint" in message
    assert ("another VPC" in message) == (vpc is not None)
    assert group
