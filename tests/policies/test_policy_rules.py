"""Every policy of the pack, one compliant and one violating resource set each, built with
pulumi_policy's own argument classes (ResourceValidationArgs / StackValidationArgs / PolicyResource)."""

from __future__ import annotations

import copy
import json
import os
import sys
from typing import Callable

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "policies"))

from bulkhead_policies import ALL_POLICIES, POLICIES_BY_NAME, thresholds  # noqa: E402

STACK = "prod"
REQUIRED = {
    "database-single-owner", "no-shared-credentials", "db-ingress-owner-only", "no-shared-volumes",
    "no-shared-networks", "dev-ports-loopback-only", "one-database-per-server", "access-policy-single-database",
    "platform-matches-stack", "rds-storage-encrypted", "rds-customer-managed-key", "rds-not-public",
    "rds-ssl-enforced", "rds-managed-master-password", "rds-iam-auth", "rds-current-ca",
    "rds-custom-admin-username", "kms-key-rotation", "sg-no-public-ingress", "secret-customer-managed-key",
    "rds-backup-retention", "rds-in-backup-plan", "rds-deletion-protection", "rds-final-snapshot",
    "rds-protected-resource", "rds-multi-az", "rds-enhanced-monitoring", "rds-log-exports",
    "rds-performance-insights-encrypted", "rds-auto-minor-upgrade", "rds-copy-tags-to-snapshot",
    "replica-matches-primary", "dev-image-pinned", "dev-resource-limits", "dev-healthcheck", "dev-volume-retained",
    "service-role-not-master",
    "kms-key-policy-scoped", "secret-resource-policy", "backup-vault-access-policy", "rds-log-groups-managed",
    "backup-restore-testing",
}


def urn_of(type_: str, name: str, stack: str = STACK) -> str:
    return f"urn:pulumi:{stack}::bulkhead::{type_}::{name}"


def opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def tags(db: str, owner: str, role: str, tier: str = "critical", stack: str = STACK) -> dict:
    return {"bulkhead:database": db, "bulkhead:owner": owner, "bulkhead:stack": stack, "bulkhead:tier": tier,
            "bulkhead:role": role}


def labels(db: str, owner: str, stack: str = "dev") -> list:
    return [{"label": k, "value": v} for k, v in sorted(
        {"bulkhead:database": db, "bulkhead:owner": owner, "bulkhead:stack": stack, "bulkhead:tier": "standard"}.items())]


# --- a compliant AWS world (one database `auth`, plus `app` for cross-references) -------------------
def R(type_, name, props, protect=False, deps=None, stack=STACK):
    return {"type": type_, "name": name, "props": props, "protect": protect, "deps": deps or {}, "stack": stack}


KEY_ARN = "arn:aws:kms:eu-west-1:1:key/k-auth"
APP_KEY_ARN = "arn:aws:kms:eu-west-1:1:key/k-app"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:1:secret:bulkhead/prod/auth/master-1-AbCdEf"
APP_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:1:secret:bulkhead/prod/app/master-1-GhIjKl"
RDS_MANAGED_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:1:secret:rds!db-auth"


def primary_props(db="auth", owner="auth-service", key=KEY_ARN, sg="sg-auth-db", pg="pg-auth") -> dict:
    return {
        "identifier": f"prod-{db}", "arn": f"arn:aws:rds:eu-west-1:1:db:prod-{db}", "id": f"prod-{db}",
        "resourceId": f"db-{db.upper()}", "engine": "postgres", "username": "bulkhead_admin",
        "storageEncrypted": True, "kmsKeyId": key, "password": "[secret]",
        "publiclyAccessible": False, "iamDatabaseAuthenticationEnabled": True, "caCertIdentifier": "rds-ca-rsa2048-g1",
        "vpcSecurityGroupIds": [sg], "parameterGroupName": pg, "port": 5432, "multiAz": True,
        "backupRetentionPeriod": 14, "deletionProtection": True, "skipFinalSnapshot": False,
        "finalSnapshotIdentifier": f"prod-{db}-final-1", "deleteAutomatedBackups": False,
        "monitoringInterval": 60, "monitoringRoleArn": "arn:aws:iam::1:role/mon",
        "performanceInsightsEnabled": True, "performanceInsightsKmsKeyId": key,
        "enabledCloudwatchLogsExports": ["postgresql", "upgrade"], "autoMinorVersionUpgrade": True,
        "copyTagsToSnapshot": True, "tags": tags(db, owner, "primary"),
    }


def replica_props() -> dict:
    p = primary_props()
    for k in ("username", "password", "finalSnapshotIdentifier", "dbName", "storageEncrypted", "kmsKeyId"):
        p.pop(k, None)
    p.update(identifier="prod-auth-replica-1", id="prod-auth-replica-1", arn="arn:aws:rds:eu-west-1:1:db:prod-auth-replica-1",
             replicateSourceDb="prod-auth", backupRetentionPeriod=0, skipFinalSnapshot=True, deletionProtection=False,
             multiAz=False, tags={**tags("auth", "auth-service", "replica")}, resourceId="db-AUTHREPLICA")
    return p


CONNECT_AUTH = ["arn:aws:rds-db:eu-west-1:1:dbuser:db-AUTH/auth", "arn:aws:rds-db:eu-west-1:1:dbuser:db-AUTHREPLICA/auth"]


def db_output(db: str, owner: str, user: str | None = None) -> dict:
    user = user or db
    return {"owner": owner, "platform": "aws", "security_group_id": f"sg-{db}-client", "username": user, "auth": "iam",
            "url": f"postgresql://{user}@prod-{db}.x.rds.amazonaws.com:5432/{db}?sslmode=verify-full",
            "instance_identifier": f"prod-{db}"}


def bootstrap_resources(db: str, owner: str, key: str, secret: str) -> list[dict]:
    role_name = f"bulkhead-prod-{db}-boot-1"
    return [
        R("aws:ec2/securityGroup:SecurityGroup", f"{db}-bootstrap", {"id": f"sg-{db}-bootstrap", "tags": tags(db, owner, "bootstrap")}),
        R("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", f"{db}-db-from-bootstrap", {
            "id": f"sgr-{db}-b", "securityGroupId": f"sg-{db}-db", "referencedSecurityGroupId": f"sg-{db}-bootstrap",
            "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "tags": tags(db, owner, "bootstrap")}),
        R("aws:iam/role:Role", f"{db}-bootstrap-role", {"id": role_name, "name": role_name,
                                                        "arn": f"arn:aws:iam::1:role/{role_name}", "tags": tags(db, owner, "bootstrap")}),
        R("aws:iam/rolePolicy:RolePolicy", f"{db}-bootstrap-secret", {"id": f"{role_name}:p", "role": role_name, "policy": json.dumps(
            {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret},
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key}]})}, deps={"role": [f"{db}-bootstrap-role"]}),
        R("aws:secretsmanager/secret:Secret", f"{db}-master-secret", {"id": secret, "arn": secret, "kmsKeyId": key,
                                                                     "tags": tags(db, owner, "master-secret")}),
        R("random:index/randomPassword:RandomPassword", f"{db}-master-password", {"length": 40}),
    ]


SCOPED_KEY_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "KeyAdministration", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
     "Action": ["kms:DescribeKey", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"], "Resource": "*"},
    {"Sid": "UseThroughAwsServices", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
     "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
     "Condition": {"StringEquals": {"kms:ViaService": ["rds.eu-west-1.amazonaws.com"]}}},
    {"Sid": "CloudWatchLogsForThisDatabase", "Effect": "Allow", "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
     "Action": ["kms:Decrypt*"], "Resource": "*",
     "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:1:log-group:/aws/rds/instance/prod-auth/*"}}}]})
DENY_ALL_BUT = {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::111111111111:root"]}}
SECRET_POLICY_DOC = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*",
     "Condition": DENY_ALL_BUT}]})
VAULT_POLICY_DOC = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Principal": {"AWS": "*"}, "Resource": "*", "Condition": DENY_ALL_BUT,
     "Action": ["backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle", "backup:PutBackupVaultAccessPolicy"]}]})


def boundary_resources() -> list[dict]:
    """What the boundary rules look for: the master secret's policy, the vault's, log groups, restore tests."""
    out = [
        # the master secrets of bootstrap_resources, each with its policy
        *[R("aws:secretsmanager/secretPolicy:SecretPolicy", f"{db}-master-secret-policy", {"secretArn": arn, "policy": SECRET_POLICY_DOC})
          for db, arn in (("auth", SECRET_ARN), ("app", APP_SECRET_ARN))],
        R("aws:backup/vault:Vault", "backup-vault", {"id": "bulkhead-prod-primary", "name": "bulkhead-prod-primary",
          "arn": "arn:aws:backup:eu-west-1:1:backup-vault:bulkhead-prod-primary", "kmsKeyArn": "arn:aws:kms:eu-west-1:1:key/k-vault"}, protect=True),
        R("aws:backup/vaultPolicy:VaultPolicy", "backup-vault-policy", {"backupVaultName": "bulkhead-prod-primary",
                                                                       "policy": VAULT_POLICY_DOC}),
    ]
    for ident, db, owner in (("prod-auth", "auth", "auth-service"), ("prod-app", "app", "app-service"),
                             ("prod-auth-replica-1", "auth", "auth-service")):
        for log_type in ("postgresql", "upgrade"):
            out.append(R("aws:cloudwatch/logGroup:LogGroup", f"{ident}-{log_type}", {
                "name": f"/aws/rds/instance/{ident}/{log_type}", "retentionInDays": 30, "kmsKeyId": KEY_ARN,
                "tags": tags(db, owner, "logs")}))
    for db in ("auth", "app"):
        out.append(R("aws:backup/restoreTestingSelection:RestoreTestingSelection", f"restore-testing-{db}", {
            "name": db, "protectedResourceType": "RDS", "protectedResourceArns": [f"arn:aws:rds:eu-west-1:1:db:prod-{db}"],
            "restoreTestingPlanName": "bulkhead_prod_critical"}))
    return out


def aws_world() -> list[dict]:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "rds-db:connect", "Resource": CONNECT_AUTH}]}
    return [
        R("pulumi:pulumi:Stack", "bulkhead-prod", {"databases": {
            "auth": db_output("auth", "auth-service"), "app": db_output("app", "app-service")}}),
        *bootstrap_resources("auth", "auth-service", KEY_ARN, SECRET_ARN),
        *bootstrap_resources("app", "app-service", APP_KEY_ARN, APP_SECRET_ARN),
        R("aws:kms/key:Key", "auth-key", {"id": "k-auth", "arn": KEY_ARN, "enableKeyRotation": True, "policy": SCOPED_KEY_POLICY,
                                          "tags": tags("auth", "auth-service", "key")}, protect=True),
        R("aws:kms/key:Key", "app-key", {"id": "k-app", "arn": APP_KEY_ARN, "enableKeyRotation": True, "policy": SCOPED_KEY_POLICY,
                                         "tags": tags("app", "app-service", "key", "standard")}, protect=True),
        R("aws:ec2/securityGroup:SecurityGroup", "auth-db", {"id": "sg-auth-db", "tags": tags("auth", "auth-service", "database")}),
        R("aws:ec2/securityGroup:SecurityGroup", "app-db", {"id": "sg-app-db", "tags": tags("app", "app-service", "database", "standard")}),
        R("aws:ec2/securityGroup:SecurityGroup", "auth-client", {"id": "sg-auth-client", "tags": {
            "bulkhead:database": "auth", "bulkhead:owner": "auth-service", "bulkhead:stack": STACK, "bulkhead:role": "client"}}),
        R("aws:ec2/securityGroup:SecurityGroup", "app-client", {"id": "sg-app-client", "tags": {
            "bulkhead:database": "app", "bulkhead:owner": "app-service", "bulkhead:stack": STACK, "bulkhead:role": "client"}}),
        R("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "auth-db-from-owner", {
            "id": "sgr-1", "securityGroupId": "sg-auth-db", "referencedSecurityGroupId": "sg-auth-client",
            "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "tags": tags("auth", "auth-service", "database")}),
        R("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "auth-owner-to-db", {
            "id": "sgr-2", "securityGroupId": "sg-auth-client", "referencedSecurityGroupId": "sg-auth-db",
            "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "tags": tags("auth", "auth-service", "client")}),
        R("aws:rds/parameterGroup:ParameterGroup", "auth-params", {"id": "pg-auth", "name": "pg-auth", "parameters": [
            {"name": "rds.force_ssl", "value": "1"}], "tags": tags("auth", "auth-service", "parameters")}),
        R("aws:rds/parameterGroup:ParameterGroup", "app-params", {"id": "pg-app", "name": "pg-app", "parameters": [
            {"name": "rds.force_ssl", "value": "1"}], "tags": tags("app", "app-service", "parameters", "standard")}),
        R("aws:rds/instance:Instance", "auth-primary", primary_props(), protect=True,
          deps={"password": ["auth-master-password"]}),
        R("aws:rds/instance:Instance", "app-primary", primary_props("app", "app-service", APP_KEY_ARN, "sg-app-db", "pg-app")
          | {"tags": tags("app", "app-service", "primary", "standard"), "backupRetentionPeriod": 7}, protect=True,
          deps={"password": ["app-master-password"]}),
        R("aws:rds/instance:Instance", "auth-replica-1", replica_props()),
        R("aws:iam/policy:Policy", "auth-access", {"id": "arn:aws:iam::1:policy/auth", "policy": json.dumps(doc),
                                                   "tags": tags("auth", "auth-service", "access")},
          deps={"policy": ["auth-primary", "auth-replica-1"]}),
        R("aws:backup/plan:Plan", "backup-critical", {"id": "plan-c", "rules": [{"lifecycle": {"deleteAfter": 30}}]}),
        R("aws:backup/plan:Plan", "backup-standard", {"id": "plan-s", "rules": [{"lifecycle": {"deleteAfter": 7}}]}),
        R("aws:backup/selection:Selection", "sel-critical", {"id": "s1", "planId": "plan-c", "resources": ["arn:aws:rds:*:*:db:*"],
          "conditions": [{"stringEquals": [{"key": "aws:ResourceTag/bulkhead:tier", "value": "critical"},
                                           {"key": "aws:ResourceTag/bulkhead:role", "value": "primary"}]}]}),
        R("aws:backup/selection:Selection", "sel-standard", {"id": "s2", "planId": "plan-s", "resources": ["arn:aws:rds:*:*:db:*"],
          "conditions": [{"stringEquals": [{"key": "aws:ResourceTag/bulkhead:tier", "value": "standard"},
                                           {"key": "aws:ResourceTag/bulkhead:role", "value": "primary"}]}]}),
        *boundary_resources(),
    ]


def _policy_with(statement: dict) -> Callable[[dict], None]:
    def fn(r):
        doc = json.loads(r["props"]["policy"])
        doc["Statement"].append(statement)
        r["props"]["policy"] = json.dumps(doc)
    return fn


def _without(*names: str) -> Callable[[], list[dict]]:
    return lambda: [r for r in aws_world() if r["name"] not in names]


HBA = ("local all all scram-sha-256\n"
       "hostssl \"auth\" \"auth\" 0.0.0.0/0 scram-sha-256\n"
       "hostssl all all all reject\n"
       "host all all all reject\n")


def docker_world() -> list[dict]:
    def container(name, db, owner, port, volume, network, passwords):
        return R("docker:index/container:Container", f"{name}-postgres", {
            "id": f"c-{name}", "name": f"bulkhead-dev-{name}", "image": f"sha256:{name}img",
            "ports": [{"internal": 5432, "external": port, "ip": "127.0.0.1"}],
            "volumes": [{"volumeName": volume, "containerPath": "/var/lib/postgresql/data"}],
            "networksAdvanced": [{"name": network}], "envs": "[secret]",
            "memory": 512, "memorySwap": 512, "cpus": "1",
            "healthcheck": {"tests": ["CMD-SHELL", "pg_isready"]}, "labels": labels(db, owner),
            "command": ["postgres", "-c", "ssl=on", "-c", "hba_file=/etc/bulkhead/pg_hba.conf"],
            "uploads": [{"file": "/etc/bulkhead/pg_hba.conf", "content": HBA}],
        }, deps={"envs": passwords, "volumes": [f"{name}-data"], "networksAdvanced": [f"{name}-network"],
                 "image": [f"{name}-image"]}, stack="dev")

    out = [R("pulumi:pulumi:Stack", "bulkhead-dev", {
        "databases": {"auth": {"owner": "auth-service"}, "app": {"owner": "app-service"}},
        "services": {"auth-service": {"databases": ["auth"]}, "app-service": {"databases": ["app"]}}}, stack="dev")]
    for name, db, owner, port in (("auth", "auth", "auth-service", 5433), ("app", "app", "app-service", 5434)):
        out += [
            R("docker:index/remoteImage:RemoteImage", f"{name}-image", {"id": f"sha256:{name}img", "imageId": f"sha256:{name}img",
                                                                        "name": "postgres:16-bookworm"}, stack="dev"),
            R("docker:index/network:Network", f"{name}-network", {"id": f"n-{name}", "name": f"bulkhead-dev-{name}",
                                                                  "labels": labels(db, owner)}, stack="dev"),
            R("docker:index/volume:Volume", f"{name}-data", {"id": f"bulkhead-dev-{name}-data", "name": f"bulkhead-dev-{name}-data",
                                                             "labels": labels(db, owner)}, stack="dev"),
            R("random:index/randomPassword:RandomPassword", f"{name}-admin-password", {"length": 32}, stack="dev"),
            R("random:index/randomPassword:RandomPassword", f"{name}-{name}-password", {"length": 32}, stack="dev"),
            container(name, db, owner, port, f"bulkhead-dev-{name}-data", f"bulkhead-dev-{name}",
                      [f"{name}-admin-password", f"{name}-{name}-password"]),
        ]
    return out


def engine_docker_world() -> list[dict]:
    """docker_world as the engine hands it to the analyzer: secrets in plain text (pulumi_policy
    unwraps them), so every generated password and every container's envs are visible."""
    world = docker_world()
    for r in world:
        if r["type"] == "random:index/randomPassword:RandomPassword":
            r["props"]["result"] = f"Gen{r['name'].replace('-', '')}Xy7Qz"
    for r in world:
        if r["type"] == "docker:index/container:Container":
            admin, own = (find(world, n)["props"]["result"] for n in r["deps"]["envs"])
            db = r["name"].split("-")[0]
            r["props"]["envs"] = ["POSTGRES_USER=bulkhead_admin", f"POSTGRES_PASSWORD={admin}", "POSTGRES_DB=postgres",
                                  f"BULKHEAD_PASSWORD_{db.upper()}={own}"]
    return world


def engine_docker_world_files() -> list[dict]:
    """engine_docker_world with the passwords as bulkhead uploads them now: a root-only file each
    under /etc/bulkhead/secrets (uploads), none in the environment."""
    world = engine_docker_world()
    for r in world:
        if r["type"] == "docker:index/container:Container":
            admin, own = (find(world, n)["props"]["result"] for n in r["deps"]["envs"])
            db = r["name"].split("-")[0]
            r["props"]["envs"] = ["POSTGRES_USER=bulkhead_admin", "POSTGRES_DB=postgres"]
            r["props"]["uploads"] = [
                *r["props"].get("uploads", []),
                {"file": "/etc/bulkhead/secrets/admin", "content": admin, "permissions": "0400"},
                {"file": f"/etc/bulkhead/secrets/role-{db}", "content": own, "permissions": "0400"},
            ]
            r["deps"]["uploads"] = r["deps"].pop("envs")
    return world


def set_upload(name: str, value: str):
    def fn(r):
        for upload in r["props"]["uploads"]:
            if upload["file"] == f"/etc/bulkhead/secrets/{name}":
                upload["content"] = value
    return fn


def set_env(name: str, value: str):
    def fn(r):
        r["props"]["envs"] = [e if e.split("=", 1)[0] != name else f"{name}={value}" for e in r["props"]["envs"]]
    return fn


def find(world: list[dict], name: str) -> dict:
    return next(r for r in world if r["name"] == name)


def stack_args(world: list[dict], config=None) -> StackValidationArgs:
    objs = {}
    for r in world:
        objs[r["name"]] = PolicyResource(r["type"], unknown_checking_proxy(copy.deepcopy(r["props"])),
                                         urn_of(r["type"], r["name"], r["stack"]), r["name"], opts(r["protect"]),
                                         None, None, [], {})
    for r in world:
        objs[r["name"]].property_dependencies = {k: [objs[n] for n in v] for k, v in r["deps"].items()}
        objs[r["name"]].dependencies = [objs[n] for v in r["deps"].values() for n in v]
    return StackValidationArgs(list(objs.values()), config)


def run_policy(name: str, world: list[dict], config=None) -> list[tuple[str, str]]:
    policy = POLICIES_BY_NAME[name]
    found: list[tuple[str, str]] = []
    if isinstance(policy, ResourceValidationPolicy):
        for r in world:
            urn = urn_of(r["type"], r["name"], r["stack"])
            args = ResourceValidationArgs(r["type"], unknown_checking_proxy(copy.deepcopy(r["props"])), urn, r["name"],
                                          opts(r["protect"]), None, config)
            policy.validate(args, lambda msg, u=None, _urn=urn: found.append((msg, u or _urn)))
    else:
        policy.validate(stack_args(world, config), lambda msg, u=None: found.append((msg, u or "")))
    return found


def mutate(base: Callable[[], list[dict]], name: str, fn: Callable[[dict], None]):
    def build():
        world = base()
        fn(find(world, name))
        return world
    return build


def props(**kv):
    return lambda r: r["props"].update(kv)


def drop(*keys):
    return lambda r: [r["props"].pop(k, None) for k in keys]


def add(world_fn, resource):
    return lambda: world_fn() + [resource]


def setdeps(**kv):
    return lambda r: r["deps"].update(kv)


# (policy, compliant world, violating world, resource the message must name, config)
CASES = [
    ("database-single-owner", aws_world, mutate(aws_world, "auth-primary", lambda r: r["props"]["tags"].pop("bulkhead:owner")), "auth-primary", None),
    ("database-single-owner", docker_world, mutate(docker_world, "app-postgres", lambda r: r["props"].update(
        volumes=[{"volumeName": "bulkhead-dev-auth-data", "containerPath": "/var/lib/postgresql/data"}]) or r["deps"].pop("volumes")), "app-postgres", None),
    ("no-shared-credentials", docker_world, mutate(docker_world, "app-postgres", setdeps(envs=["auth-admin-password", "app-app-password"])), "auth-admin-password", None),
    ("no-shared-credentials", docker_world, mutate(docker_world, "bulkhead-dev", lambda r: r["props"]["services"]["app-service"]["databases"].append("auth")), "app-service", None),
    # engine view (secrets in plain text): judged by where a password comes from, and by equal values
    ("no-shared-credentials", engine_docker_world, mutate(engine_docker_world, "app-postgres", lambda r: set_env("POSTGRES_PASSWORD", "TypedIntoTheProgram1")(r) or r["deps"].pop("envs")), "POSTGRES_PASSWORD", None),
    ("no-shared-credentials", engine_docker_world, mutate(engine_docker_world, "app-postgres", set_env("BULKHEAD_PASSWORD_APP", "TypedIntoTheProgram1")), "BULKHEAD_PASSWORD_APP", None),
    ("no-shared-credentials", engine_docker_world, mutate(engine_docker_world, "app-postgres", set_env("POSTGRES_PASSWORD", "Genauthadminpassword" + "Xy7Qz")), "auth-postgres", None),
    # passwords as files (uploads): the same two judgements
    ("no-shared-credentials", engine_docker_world_files, mutate(engine_docker_world_files, "app-postgres", set_upload("admin", "Genauthadminpassword" + "Xy7Qz")), "auth-postgres", None),
    ("no-shared-credentials", engine_docker_world_files, mutate(engine_docker_world_files, "app-postgres", lambda r: set_upload("admin", "TypedIntoTheProgram1")(r) or r["deps"].pop("uploads")), "/etc/bulkhead/secrets/admin", None),
    ("db-ingress-owner-only", aws_world, mutate(aws_world, "auth-db-from-owner", props(referencedSecurityGroupId="sg-app-client")), "auth-db-from-owner", None),
    ("db-ingress-owner-only", aws_world, mutate(aws_world, "auth-db-from-owner", lambda r: r["props"].pop("referencedSecurityGroupId") and r["props"].update(cidrIpv4="10.0.0.0/8")), "auth-db-from-owner", None),
    # another database's bootstrap group, even of the same owner, is not this database's
    ("db-ingress-owner-only", aws_world, mutate(aws_world, "auth-db-from-bootstrap", props(referencedSecurityGroupId="sg-app-bootstrap")), "bootstrap function group", None),
    ("no-shared-volumes", docker_world, mutate(docker_world, "app-postgres", props(volumes=[{"volumeName": "bulkhead-dev-auth-data", "containerPath": "/var/lib/postgresql/data"}])), "auth-data", None),
    ("no-shared-networks", docker_world, mutate(docker_world, "app-postgres", props(networksAdvanced=[{"name": "bulkhead-dev-auth"}])), "auth-network", None),
    ("no-shared-networks", aws_world, mutate(aws_world, "app-primary", props(vpcSecurityGroupIds=["sg-auth-db"])), "auth-db", None),
    ("dev-ports-loopback-only", docker_world, mutate(docker_world, "auth-postgres", props(ports=[{"internal": 5432, "external": 5433, "ip": "0.0.0.0"}])), "auth-postgres", None),
    ("one-database-per-server", aws_world, mutate(aws_world, "auth-primary", lambda r: r["props"]["tags"].update({"bulkhead:database": "app,auth"})), "auth-primary", None),
    ("one-database-per-server", docker_world, mutate(docker_world, "auth-postgres", lambda r: r["props"].update(labels=labels("auth,billing", "auth-service,billing-service"))), "auth-postgres", {"allowSharedDevServers": False}),
    ("access-policy-single-database", aws_world, mutate(aws_world, "auth-access", lambda r: r["props"].update(policy=json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": [SECRET_ARN, APP_SECRET_ARN]}]}))), "auth-access", None),
    ("access-policy-single-database", aws_world, mutate(aws_world, "auth-access", props(policy="04da6b54-80e4-46f7-96ec-b56ff0331ba9")) , None, "unknown-deps"),
    ("access-policy-single-database", aws_world, mutate(aws_world, "auth-access", props(policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "rds-db:connect", "Resource": "arn:aws:rds-db:eu-west-1:1:dbuser:db-AUTH/*"}]}))), "dbuser:db-AUTH/*", None),
    ("access-policy-single-database", aws_world, mutate(aws_world, "auth-access", props(policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "rds-db:connect", "Resource": CONNECT_AUTH},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET_ARN}]}))), "master secret", None),
    ("access-policy-single-database", aws_world, mutate(aws_world, "auth-access", props(policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": RDS_MANAGED_SECRET_ARN}]}))), "master secret", None),
    ("platform-matches-stack", aws_world, add(aws_world, R("docker:index/container:Container", "stray", {"labels": labels("auth", "auth-service", STACK)})), "stray", None),
    ("rds-storage-encrypted", aws_world, mutate(aws_world, "auth-primary", props(storageEncrypted=False)), "auth-primary", None),
    ("rds-customer-managed-key", aws_world, mutate(aws_world, "auth-primary", drop("kmsKeyId")), "auth-primary", None),
    # A replica that leaves both out inherits its primary's encryption; one that sets them is held to them.
    ("rds-storage-encrypted", aws_world, mutate(aws_world, "auth-replica-1", props(storageEncrypted=False)), "auth-replica-1", None),
    ("rds-customer-managed-key", aws_world, mutate(aws_world, "auth-replica-1", props(kmsKeyId="alias/aws/rds")), "auth-replica-1", None),
    ("rds-not-public", aws_world, mutate(aws_world, "auth-primary", props(publiclyAccessible=True)), "auth-primary", None),
    ("rds-ssl-enforced", aws_world, mutate(aws_world, "auth-params", props(parameters=[{"name": "rds.force_ssl", "value": "0"}])), "auth-params", None),
    # a password no RandomPassword generated (typed into the program)
    ("rds-managed-master-password", aws_world, mutate(aws_world, "auth-primary", lambda r: r["deps"].pop("password")), "auth-primary", None),
    # RDS-managed master on a primary with replicas: RDS refuses to create the replicas
    ("rds-managed-master-password", aws_world, mutate(aws_world, "auth-primary", lambda r: r["props"].update(
        manageMasterUserPassword=True, password=None) or r["deps"].pop("password")), "read replicas", None),
    ("service-role-not-master", aws_world, mutate(aws_world, "bulkhead-prod", lambda r: r["props"]["databases"].__setitem__(
        "auth", db_output("auth", "auth-service", "bulkhead_admin"))), "databases.auth.username", None),
    ("service-role-not-master", aws_world, mutate(aws_world, "auth-access", props(policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "rds-db:connect", "Resource": "arn:aws:rds-db:eu-west-1:1:dbuser:db-AUTH/bulkhead_admin"}]}))),
     "bulkhead_admin, the master user", None),
    ("service-role-not-master", aws_world, mutate(aws_world, "auth-access", props(policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET_ARN}]}))), "master credentials of auth", None),
    # the bootstrap policy of app reading auth's master secret is no longer the one allowed grant
    ("service-role-not-master", aws_world, mutate(aws_world, "app-bootstrap-secret", props(policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET_ARN}]}))), "app-bootstrap-secret", None),
    ("rds-iam-auth", aws_world, mutate(aws_world, "auth-primary", props(iamDatabaseAuthenticationEnabled=False)), "auth-primary", None),
    ("rds-current-ca", aws_world, mutate(aws_world, "auth-primary", props(caCertIdentifier="rds-ca-2019")), "auth-primary", None),
    ("rds-custom-admin-username", aws_world, mutate(aws_world, "auth-primary", props(username="admin")), "auth-primary", None),
    ("kms-key-rotation", aws_world, mutate(aws_world, "auth-key", props(enableKeyRotation=False)), "auth-key", None),
    ("sg-no-public-ingress", aws_world, mutate(aws_world, "auth-db", props(ingress=[{"cidrBlocks": ["0.0.0.0/0"], "fromPort": 5432, "toPort": 5432}])), "auth-db", None),
    ("secret-customer-managed-key", aws_world, mutate(aws_world, "auth-master-secret", drop("kmsKeyId")), "auth-master-secret", None),
    ("secret-customer-managed-key", aws_world, mutate(aws_world, "auth-master-secret", props(kmsKeyId="alias/aws/secretsmanager")), "auth-master-secret", None),
    ("rds-backup-retention", aws_world, mutate(aws_world, "auth-primary", props(backupRetentionPeriod=7)), "auth-primary", None),
    ("rds-in-backup-plan", aws_world, mutate(aws_world, "backup-critical", props(rules=[{"lifecycle": {"deleteAfter": 5}}])), "auth-primary", None),
    ("rds-deletion-protection", aws_world, mutate(aws_world, "auth-primary", props(deletionProtection=False)), "auth-primary", None),
    ("rds-final-snapshot", aws_world, mutate(aws_world, "auth-primary", props(skipFinalSnapshot=True)), "auth-primary", None),
    ("rds-protected-resource", aws_world, mutate(aws_world, "auth-primary", lambda r: r.update(protect=False)), "auth-primary", None),
    ("rds-multi-az", aws_world, mutate(aws_world, "auth-primary", props(multiAz=False)), "auth-primary", None),
    ("rds-enhanced-monitoring", aws_world, mutate(aws_world, "auth-primary", props(monitoringInterval=0)), "auth-primary", None),
    ("rds-log-exports", aws_world, mutate(aws_world, "auth-primary", props(enabledCloudwatchLogsExports=["postgresql"])), "auth-primary", None),
    ("rds-performance-insights-encrypted", aws_world, mutate(aws_world, "auth-primary", props(performanceInsightsKmsKeyId="alias/aws/rds")), "auth-primary", None),
    ("rds-auto-minor-upgrade", aws_world, mutate(aws_world, "auth-primary", props(autoMinorVersionUpgrade=False)), "auth-primary", None),
    ("rds-copy-tags-to-snapshot", aws_world, mutate(aws_world, "auth-primary", props(copyTagsToSnapshot=False)), "auth-primary", None),
    ("replica-matches-primary", aws_world, mutate(aws_world, "auth-replica-1", props(kmsKeyId=APP_KEY_ARN)), "auth-replica-1", None),
    ("kms-key-policy-scoped", aws_world, mutate(aws_world, "auth-key", drop("policy")), "auth-key", None),
    ("kms-key-policy-scoped", aws_world, mutate(aws_world, "app-key", _policy_with(
        {"Sid": "EnableIamUserPermissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
         "Action": "kms:*", "Resource": "*"})), "EnableIamUserPermissions", None),
    ("kms-key-policy-scoped", aws_world, mutate(aws_world, "auth-key", _policy_with(
        {"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
         "Condition": {"StringEquals": {"kms:CallerAccount": "111111111111"}}})), "auth-key", None),
    ("secret-resource-policy", aws_world, _without("auth-master-secret-policy"), "auth-master-secret", None),
    ("secret-resource-policy", aws_world, mutate(aws_world, "auth-master-secret-policy", props(policy=json.dumps(
        {"Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue",
                        "Resource": "*", "Condition": {"StringNotEquals": {"aws:SourceVpc": "vpc-1"}}}]}))), "auth-master-secret", None),
    ("secret-resource-policy", aws_world, mutate(aws_world, "app-master-secret-policy", _policy_with(
        {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"})),
     "app-master-secret-policy", None),
    ("backup-vault-access-policy", aws_world, _without("backup-vault-policy"), "backup-vault", None),
    ("backup-vault-access-policy", aws_world, mutate(aws_world, "backup-vault-policy", props(policy=json.dumps(
        {"Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Resource": "*", "Condition": DENY_ALL_BUT,
                        "Action": ["backup:DeleteRecoveryPoint"]}]}))), "backup:UpdateRecoveryPointLifecycle", None),
    ("rds-log-groups-managed", aws_world, _without("prod-auth-replica-1-postgresql"), "auth-replica-1", None),
    ("rds-log-groups-managed", aws_world, mutate(aws_world, "prod-app-postgresql", drop("retentionInDays")), "prod-app-postgresql", None),
    ("rds-log-groups-managed", aws_world, mutate(aws_world, "prod-auth-upgrade", drop("kmsKeyId")), "prod-auth-upgrade", None),
    ("backup-restore-testing", aws_world, _without("restore-testing-app"), "app-primary", None),
    ("dev-image-pinned", docker_world, mutate(docker_world, "auth-image", props(name="postgres:latest")), "auth-image", None),
    ("dev-resource-limits", docker_world, mutate(docker_world, "auth-postgres", drop("memory", "memorySwap")), "auth-postgres", None),
    ("dev-healthcheck", docker_world, mutate(docker_world, "auth-postgres", props(healthcheck={"tests": ["NONE"]})), "auth-postgres", None),
    ("dev-volume-retained", docker_world, mutate(docker_world, "auth-postgres", props(volumes=[])), "auth-postgres", None),
    ("dev-ssl-enforced", docker_world, mutate(docker_world, "auth-postgres", props(command=["postgres", "-c", "ssl=off", "-c", "hba_file=/etc/bulkhead/pg_hba.conf"])), "auth-postgres", None),
    ("dev-ssl-enforced", docker_world, mutate(docker_world, "auth-postgres", props(command=["postgres", "-c", "ssl=on"])), "auth-postgres", None),
    ("dev-ssl-enforced", docker_world, mutate(docker_world, "auth-postgres", props(uploads=[{"file": "/etc/bulkhead/pg_hba.conf", "content": "host all all 0.0.0.0/0 scram-sha-256\n"}])), "auth-postgres", None),
    ("dev-ssl-enforced", docker_world, mutate(docker_world, "auth-postgres", props(uploads=[{"file": "/etc/bulkhead/pg_hba.conf", "content": "hostssl all all 0.0.0.0/0 trust\n"}])), "auth-postgres", None),
]


# --- issue 20's policies: small worlds of their own ------------------------------------------------
from bulkhead_policies.baseline import SECRET_WRITE_ACTIONS as WRITE_ACTIONS  # noqa: E402
I20_SECRET = "arn:aws:secretsmanager:eu-west-1:1:secret:bulkhead/prod/auth/master-1-ZyXwVu"


def _i20_secret_world(actions=tuple(WRITE_ACTIONS)) -> Callable[[], list[dict]]:
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue", "Resource": "*",
         "Condition": DENY_ALL_BUT},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": list(actions), "Resource": "*", "Condition": DENY_ALL_BUT}]})
    return lambda: [R("aws:secretsmanager/secret:Secret", "auth-master-secret", {"arn": I20_SECRET, "kmsKeyId": KEY_ARN}),
                    R("aws:secretsmanager/secretPolicy:SecretPolicy", "auth-master-secret-policy",
                      {"secretArn": I20_SECRET, "policy": doc})]


def _endpoint(name, kind, policy):
    return R("aws:ec2/vpcEndpoint:VpcEndpoint", name, {"vpcEndpointType": kind, "policy": json.dumps(policy) if policy else None})


S3_OK = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
                        "Resource": ["arn:aws:s3:::prod-eu-west-1-starport-layer-bucket/*"]}]}
IF_OK = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*",
                        "Condition": {"StringEquals": {"aws:PrincipalAccount": "1"}}}]}


def _vpc_world(default_sg=True, sg_rules=False, flow_log=True) -> Callable[[], list[dict]]:
    def build():
        out = [R("aws:ec2/vpc:Vpc", "foundation-vpc", {"id": "vpc-1", "cidrBlock": "10.42.0.0/16"})]
        if default_sg:
            out.append(R("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "foundation-default-sg",
                         {"vpcId": "vpc-1", **({"ingress": [{"protocol": "-1", "self": True}]} if sg_rules else {})},
                         deps={"vpcId": ["foundation-vpc"]}))
        if flow_log:
            out.append(R("aws:ec2/flowLog:FlowLog", "foundation-flow-log", {"vpcId": "vpc-1", "trafficType": "REJECT"},
                         deps={"vpcId": ["foundation-vpc"]}))
        return out
    return build


def _function_world(group=True, retention=30, configured=None, group_name="/aws/lambda/prod-auth-bootstrap"):
    def build():
        inputs = {"name": "prod-auth-bootstrap"}
        if configured:  # the function's logging_config names its group
            inputs["loggingConfig"] = {"logFormat": "Text", "logGroup": configured}
        out = [R("aws:lambda/function:Function", "auth-bootstrap", inputs)]
        if group:
            out.append(R("aws:cloudwatch/logGroup:LogGroup", "auth-bootstrap-logs", {
                "name": group_name, "kmsKeyId": KEY_ARN,
                **({"retentionInDays": retention} if retention else {})}))
        return out
    return build


CASES += [
    ("secret-writes-denied", _i20_secret_world(), _i20_secret_world([a for a in WRITE_ACTIONS
                                                                       if a != "secretsmanager:PutSecretValue"]),
     "auth-master-secret", None),
    ("vpc-endpoint-policy", lambda: [_endpoint("endpoints-s3", "Gateway", S3_OK), _endpoint("endpoints-sts", "Interface", IF_OK)],
     lambda: [_endpoint("endpoints-s3", "Gateway", None)], "endpoints-s3", None),
    ("vpc-endpoint-policy", lambda: [_endpoint("endpoints-sts", "Interface", IF_OK)],
     lambda: [_endpoint("endpoints-sts", "Interface", {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*",
                                                                      "Resource": "*"}]})], "endpoints-sts", None),
    ("vpc-endpoint-policy", lambda: [_endpoint("endpoints-s3", "Gateway", S3_OK)],
     lambda: [_endpoint("endpoints-s3", "Gateway", {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:*",
                                                                   "Resource": "*"}]})], "endpoints-s3", None),
    ("default-security-group-closed", _vpc_world(), _vpc_world(default_sg=False), "foundation-vpc", None),
    ("default-security-group-closed", _vpc_world(), _vpc_world(sg_rules=True), "foundation-default-sg", None),
    ("vpc-flow-logs", _vpc_world(), _vpc_world(flow_log=False), "foundation-vpc", None),
    ("function-log-groups-managed", _function_world(), _function_world(group=False), "auth-bootstrap", None),
    ("function-log-groups-managed", _function_world(), _function_world(retention=None), "auth-bootstrap-logs", None),
    # A configured group: the stack's group of that name counts, Lambda's default name does not.
    ("function-log-groups-managed",
     _function_world(configured="/bulkhead/lambda/prod-auth-bootstrap", group_name="/bulkhead/lambda/prod-auth-bootstrap"),
     _function_world(configured="/bulkhead/lambda/prod-auth-bootstrap"), "auth-bootstrap", None),
]


# --- rds-proxy-owner-only (issue 24): a proxy in front of `auth` -----------------------------------
def _proxy_world(source="sg-auth-client", require_tls=True, cidr=None, ports=(5432, 5432), inline=None, legacy=None,
                 scheme="IAM_AUTH", auths=None):
    """`inline`: an `ingress` block on the proxy's group; `legacy`: an aws.ec2.SecurityGroupRule into it
    (review: both admitted the VPC past this rule, which judged SecurityGroupIngressRule only)."""
    def build():
        rule = {"id": "sgr-p1", "securityGroupId": "sg-auth-proxy", "ipProtocol": "tcp",
                "fromPort": ports[0], "toPort": ports[1], "tags": tags("auth", "auth-service", "proxy")}
        rule.update({"cidrIpv4": cidr} if cidr else {"referencedSecurityGroupId": source})
        group = {"id": "sg-auth-proxy", "tags": tags("auth", "auth-service", "proxy")}
        if inline is not None:
            group["ingress"] = [inline]
        extra = [] if legacy is None else [R("aws:ec2/securityGroupRule:SecurityGroupRule", "auth-proxy-legacy", {
            "id": "sgrule-1", "type": "ingress", "securityGroupId": "sg-auth-proxy", **legacy})]
        return [r for r in aws_world() if r["type"] == "aws:ec2/securityGroup:SecurityGroup"] + extra + [
            R("aws:ec2/securityGroup:SecurityGroup", "auth-proxy-group", group),
            R("aws:rds/proxy:Proxy", "auth-proxy", {"id": "prod-auth-proxy", "name": "prod-auth-proxy",
                                                    "engineFamily": "POSTGRESQL", "requireTls": require_tls,
                                                    "defaultAuthScheme": scheme, "vpcSecurityGroupIds": ["sg-auth-proxy"],
                                                    **({"auths": auths} if auths else {}),
                                                    "tags": tags("auth", "auth-service", "proxy")}),
            R("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "auth-proxy-from-owner", rule),
        ]
    return build


CASES += [
    ("rds-proxy-owner-only", _proxy_world(), _proxy_world(source="sg-app-client"), "auth-proxy-from-owner", None),
    ("rds-proxy-owner-only", _proxy_world(), _proxy_world(source="sg-auth-db"), "auth-proxy-from-owner", None),
    ("rds-proxy-owner-only", _proxy_world(), _proxy_world(cidr="10.0.0.0/8"), "address range", None),
    ("rds-proxy-owner-only", _proxy_world(), _proxy_world(ports=(0, 65535)), "more than tcp 5432", None),
    ("rds-proxy-owner-only", _proxy_world(), _proxy_world(require_tls=False), "auth-proxy", None),
    ("rds-proxy-owner-only", _proxy_world(inline={"protocol": "tcp", "fromPort": 5432, "toPort": 5432,
                                                  "securityGroups": ["sg-auth-client"]}),
     _proxy_world(inline={"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["10.0.0.0/16"]}),
     "address range", None),
    ("rds-proxy-owner-only", _proxy_world(), _proxy_world(inline={"protocol": "tcp", "fromPort": 5432, "toPort": 5432,
                                                                  "securityGroups": ["sg-app-client"]}),
     "auth-proxy-group", None),
    ("rds-proxy-owner-only", _proxy_world(legacy={"protocol": "tcp", "fromPort": 5432, "toPort": 5432,
                                                  "sourceSecurityGroupId": "sg-auth-client"}),
     _proxy_world(legacy={"protocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrBlocks": ["10.0.0.0/16"]}),
     "auth-proxy-legacy", None),
    # review: a proxy logging in with a stored secret (here the master's) passed the rule
    ("rds-proxy-owner-only", _proxy_world(), _proxy_world(scheme="NONE", auths=[{
        "authScheme": "SECRETS", "iamAuth": "DISABLED",
        "secretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:bulkhead/prod/auth/master-AbCdEf"}]),
     "default_auth_scheme NONE", None),
    ("rds-proxy-owner-only", _proxy_world(), _proxy_world(auths=[{"authScheme": "SECRETS", "iamAuth": "REQUIRED",
        "secretArn": "arn:aws:secretsmanager:eu-west-1:1:secret:bulkhead/prod/auth/master-AbCdEf"}]),
     "`auth` blocks", None),
]


# --- issue 20 (rest): an auth: password login secret reads for its owner only ----------------------
LOGIN_ARN = "arn:aws:secretsmanager:eu-west-1:1:secret:bulkhead/prod/app/login-1-MnOpQr"
OWNER_ONLY = {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::111111111111:role/app-task",
                                                  "arn:aws:iam::111111111111:role/*/app-task",
                                                  "arn:aws:iam::111111111111:root"]}}


def _login_world(read_condition=OWNER_ONLY) -> Callable[[], list[dict]]:
    statements = [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": list(WRITE_ACTIONS), "Resource": "*",
                   "Condition": DENY_ALL_BUT}]
    if read_condition is not None:
        statements.insert(0, {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue",
                              "Resource": "*", "Condition": read_condition})
    return lambda: [R("aws:secretsmanager/secret:Secret", "app-login-secret",
                      {"arn": LOGIN_ARN, "kmsKeyId": APP_KEY_ARN, "namePrefix": "bulkhead/prod/app/login-",
                       "tags": tags("app", "app-service", "login-secret")}),
                    R("aws:secretsmanager/secretPolicy:SecretPolicy", "app-login-secret-policy",
                      {"secretArn": LOGIN_ARN, "policy": json.dumps({"Version": "2012-10-17", "Statement": statements})})]


CASES += [
    # the policy the stack wrote before owner_principals: writes denied, reading left to IAM
    ("login-secret-owner-only", _login_world(), _login_world(read_condition=None), "app-login-secret", None),
    # a read deny whose exemption admits every role of the account
    ("login-secret-owner-only", _login_world(), _login_world(
        {"ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::111111111111:role/*"]}}), "role/*", None),
]


def test_every_required_policy_exists_with_metadata():
    names = [p.name for p in ALL_POLICIES]
    assert len(names) == len(set(names))
    assert REQUIRED <= set(names)
    for p in ALL_POLICIES:
        assert p.description and p.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY)
    assert POLICIES_BY_NAME["one-database-per-server"].enforcement_level == EnforcementLevel.ADVISORY
    assert POLICIES_BY_NAME["rds-multi-az"].enforcement_level == EnforcementLevel.ADVISORY
    assert POLICIES_BY_NAME["rds-not-public"].enforcement_level == EnforcementLevel.MANDATORY
    assert "allowedCaIdentifiers" in POLICIES_BY_NAME["rds-current-ca"].config_schema.properties
    assert "minRetentionDaysByTier" in POLICIES_BY_NAME["rds-backup-retention"].config_schema.properties
    assert thresholds.MIN_RETENTION_DAYS_BY_TIER["critical"] >= thresholds.MIN_RETENTION_DAYS_BY_TIER["standard"]


# --- issue 24: database-alarms-and-events ------------------------------------------------------------

def _i24_world(alarm_actions=("arn:aws:sns:eu-west-1:1:alerts",), metrics=("CPUUtilization", "FreeStorageSpace",
               "DatabaseConnections", "FreeableMemory"), source_ids=("prod-auth",)):
    def build():
        world = [R("aws:rds/instance:Instance", "auth-primary", primary_props(), protect=True)]
        for m in metrics:
            world.append(R("aws:cloudwatch/metricAlarm:MetricAlarm", f"auth-alarms-{m}", {
                "namespace": "AWS/RDS", "metricName": m, "dimensions": {"DBInstanceIdentifier": "prod-auth"},
                "alarmActions": list(alarm_actions)}))
        if source_ids is not None:
            world.append(R("aws:rds/eventSubscription:EventSubscription", "events-subscription", {
                "sourceType": "db-instance", "sourceIds": list(source_ids), "snsTopic": "arn:aws:sns:eu-west-1:1:alerts"}))
        return world
    return build


CASES += [
    ("database-alarms-and-events", _i24_world(), _i24_world(metrics=("CPUUtilization",)), "auth-primary", None),
    ("database-alarms-and-events", _i24_world(), _i24_world(alarm_actions=()), "auth-primary", None),
    ("database-alarms-and-events", _i24_world(), _i24_world(source_ids=None), "auth-primary", None),
    ("database-alarms-and-events", _i24_world(), _i24_world(source_ids=("prod-other",)), "auth-primary", None),
]


def test_every_policy_has_a_case():
    assert {c[0] for c in CASES} == {p.name for p in ALL_POLICIES}


@pytest.mark.parametrize("policy,good,bad,named,config", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule(policy, good, bad, named, config):
    cfg = config if isinstance(config, dict) else None
    assert run_policy(policy, good(), cfg) == []
    if config == "unknown-deps":
        # the document is unknown at preview: the rule reports it could not run, naming the resource
        from pulumi_policy.proxy import UnknownValueError
        with pytest.raises(UnknownValueError) as exc:
            run_policy(policy, bad(), None)
        assert "auth-access" in exc.value.message and "could not run" in exc.value.message
        return
    found = run_policy(policy, bad(), cfg)
    assert found, f"{policy} missed the violation"
    assert any(named in msg for msg, _ in found), found
    for msg, urn in found:
        assert msg[0].isupper() and msg.endswith("."), msg
        assert urn.startswith("urn:pulumi:"), urn


def test_custom_threshold_config():
    world = aws_world()
    find(world, "auth-primary")["props"]["backupRetentionPeriod"] = 20
    assert run_policy("rds-backup-retention", world) == []
    found = run_policy("rds-backup-retention", world, {"minRetentionDaysByTier": {"critical": 30}})
    assert found and "30 days" in found[0][0]
    world = aws_world()
    assert run_policy("rds-current-ca", world, {"allowedCaIdentifiers": ["rds-ca-ecc384-g1"]})


def test_credentials_judged_by_source_not_visibility():
    """The engine sends secrets in plain text: generated passwords pass whether or not their
    values are visible; literal ones fail either way; equal visible values are sharing."""
    assert run_policy("no-shared-credentials", engine_docker_world()) == []
    # a plan/export without --show-secrets: envs hidden, generated passwords behind them
    assert run_policy("no-shared-credentials", docker_world()) == []
    # visible envs but hidden RandomPassword results: the count of distinct values gives a literal away
    world = engine_docker_world()
    for r in world:
        r["props"].pop("result", None)
    assert run_policy("no-shared-credentials", world) == []
    find(world, "auth-postgres")["props"]["envs"].append("EXTRA_PASSWORD=TypedIntoTheProgram1")
    found = run_policy("no-shared-credentials", world)
    assert len(found) == 1 and "auth-postgres" in found[0][0] and "3 different passwords" in found[0][0], found
    # one container gives two roles the same value
    world = engine_docker_world()
    set_env("BULKHEAD_PASSWORD_AUTH", find(world, "auth-admin-password")["props"]["result"])(find(world, "auth-postgres"))
    assert any("same password" in m for m, _ in run_policy("no-shared-credentials", world))
    # the literal message says where the password came from, not that it is visible
    world = engine_docker_world()
    find(world, "app-postgres")["deps"].pop("envs")
    msgs = [m for m, _ in run_policy("no-shared-credentials", world)]
    assert any("draws on no RandomPassword" in m and "POSTGRES_PASSWORD" in m for m in msgs), msgs


def test_credentials_at_preview():
    # envs unknown (the passwords are not generated yet): the RandomPassword dependencies decide
    world = docker_world()
    for r in world:
        if r["type"] == "docker:index/container:Container":
            r["props"]["envs"] = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    assert run_policy("no-shared-credentials", world) == []
    find(world, "app-postgres")["deps"].pop("envs")
    from pulumi_policy.proxy import UnknownValueError
    with pytest.raises(UnknownValueError) as exc:
        run_policy("no-shared-credentials", world)
    assert "app-postgres" in exc.value.message


@pytest.mark.parametrize("stack,production,platform", [
    ("prod", True, "aws"), ("prod-eu", True, "aws"), ("prod_eu", True, "aws"), ("prod.eu", True, "aws"),
    ("production", True, "aws"), ("production-eu", True, "aws"), ("production_eu", True, "aws"),
    ("productionx", False, None), ("prodx", False, None), ("product", False, None), ("preprod", False, None),
    ("staging", False, "aws"), ("staging-2", False, "aws"), ("dev", False, "docker"), ("dev-alice", False, "docker"),
    ("local", False, "docker"), ("devx", False, None), ("", False, None), (None, False, None),
    # a prod suffix says prod too, and a name saying both is prod (aws)
    ("shop-prod", True, "aws"), ("shop_prod", True, "aws"), ("shop.production", True, "aws"),
    ("dev-prod", True, "aws"), ("prod-dev", True, "aws"), ("shop-dev", False, "docker"), ("shopprod", False, None),
])
def test_stack_name_table(stack, production, platform):
    assert thresholds.is_production_stack(stack) is production
    assert thresholds.expected_platform(stack or "") == platform
    # the platform rule reads the same function
    if stack:
        world = [R("docker:index/container:Container", "c", {"labels": labels("auth", "auth-service", stack)}, stack=stack)]
        found = run_policy("platform-matches-stack", world)
        assert bool(found) == (platform == "aws"), found


def test_checks_are_registered_where_defined_and_the_old_way_still_works():
    """@resource_rule/@stack_rule build the policy next to its check; a POLICIES list written the old
    way (resource_policy(...) entries) still adds to a module; rebinding POLICIES is refused."""
    from bulkhead_policies import _resources as res
    from bulkhead_policies import dev

    assert [p.name for p in dev.POLICIES][:2] == ["dev-image-pinned", "dev-resource-limits"]
    assert POLICIES_BY_NAME["dev-healthcheck"].check is dev.check_dev_healthcheck
    before = list(res.DECORATED)
    try:
        module_policies: list = []

        @res.resource_rule(module_policies, "test-only-rule", "A rule for this test.", res.ADVISORY, [res.CONTAINER])
        def check_test_only(r, cfg):
            return []

        module_policies += [res.resource_policy("test-old-way", "Listed the old way.", res.ADVISORY, [res.CONTAINER],
                                                check_test_only)]
        assert [p.name for p in module_policies] == ["test-only-rule", "test-old-way"]
        res.check_registered([*ALL_POLICIES, *module_policies])
        with pytest.raises(RuntimeError, match="test-only-rule"):
            res.check_registered([*ALL_POLICIES, module_policies[1]])  # as if POLICIES had been rebound
    finally:
        res.DECORATED[:] = before
    res.check_registered(ALL_POLICIES)
    with pytest.raises(RuntimeError, match="registered twice: dev-healthcheck"):
        res.check_registered([*ALL_POLICIES, POLICIES_BY_NAME["dev-healthcheck"]])

