"""The translator's mapping table, checked against both sides it claims to connect.

- every pulumi-aws input it names exists in pulumi_aws's `...Args` class in .venv (nested too);
- every CloudFormation property it names exists in cfn-lint's bundled schema (nested too), and
  every property it claims a type lacks is indeed absent;
- per mapped type, a small hand-written plan resource translates to the same property names as
  a known-good CloudFormation example written here after the AWS resource reference's own
  examples, and both templates pass cfn-lint.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Optional

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from bulkhead.planfile import SECRET_ENVELOPE
from tests.support.cfn import mappings
from tests.support.cfn.lint import Template, lint_template, unaccepted
from tests.support.cfn.mappings import PULUMI_ONLY_TYPES, TYPE_MAPS, coverage, sdk_inputs
from tests.support.cfn.translate import FLATTEN, ListOf, Prop, Struct, TranslationError, translate

REGION = "eu-west-1"
ACCOUNT = "123456789012"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/bulkhead-prod-backup"
VAULT_ARN = f"arn:aws:backup:eu-central-1:{ACCOUNT}:backup-vault:bulkhead-prod-dr"
SG = "sg-0123456789abcdef0"
SG2 = "sg-0fedcba9876543210"
VPC = "vpc-0123456789abcdef0"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
POLICY = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}'
POLICY_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}
# A resource policy (key, vault, secret, endpoint policies) names its principal.
RESOURCE_POLICY = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, '
                   '"Action": "kms:*", "Resource": "*"}]}')
RESOURCE_POLICY_DOC = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                                                               "Action": "kms:*", "Resource": "*"}]}
TAGS = {"bulkhead:database": "app", "bulkhead:owner": "app-service"}
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:bulkhead-prod-alerts"
TOPIC_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish", "Resource": TOPIC_ARN}]})
CFN_TAGS = [{"Key": "bulkhead:database", "Value": "app"}, {"Key": "bulkhead:owner", "Value": "app-service"}]


def _schema(cfn_type: str) -> dict:
    return PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, cfn_type).schema


def _resolve(root: dict, node: dict) -> dict:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].split("/")[-1]]
    if node.get("type") == "array" and "items" in node:
        return _resolve(root, node["items"])
    return node


def _child(root: dict, node: dict, name: str) -> Optional[dict]:
    node = _resolve(root, node)
    props = node.get("properties") or {}
    return props.get(name)


def _check_struct(errors: list, root: dict, parent: dict, struct: Struct, where: str) -> None:
    known = sdk_inputs(struct.args)
    for key in [*struct.props, *struct.pulumi_only, *struct.no_cfn_property]:
        if key not in known:
            errors.append(f"{where}.{key}: not an input of pulumi_aws {struct.args.__name__}")
    for key, spec in struct.props.items():
        _check_prop(errors, root, parent, spec, f"{where}.{key}")


def _check_prop(errors: list, root: dict, parent: dict, spec, where: str) -> None:
    prop = spec if isinstance(spec, Prop) else Prop(spec)
    if prop.cfn == FLATTEN:  # a nested input spread over the parent's properties
        _check_struct(errors, root, parent, prop.convert, where)
        return
    node: Optional[dict] = parent
    for part in prop.cfn.split("."):
        node = _child(root, node, part) if node is not None else None
        if node is None:
            errors.append(f"{where} -> {prop.cfn}: no such CloudFormation property")
            return
    conv = prop.convert
    item = conv.item if isinstance(conv, ListOf) else conv
    if isinstance(item, Struct):
        _check_struct(errors, root, node, item, where)
    elif getattr(item, "struct", None) is not None:
        if getattr(item, "cfn_shape", "") == "object":
            _check_struct(errors, root, node, item.struct, where)
        else:  # the items become a JSON map: check the pulumi side only
            errors.extend(f"{where}.{k}: not an input of {item.struct.args.__name__}"
                          for k in [*item.struct.props, *item.struct.pulumi_only] if k not in sdk_inputs(item.struct.args))


@pytest.mark.parametrize("typ", sorted(TYPE_MAPS))
def test_mapping_names_exist_on_both_sides(typ):
    tm = TYPE_MAPS[typ]
    errors: list[str] = []
    known = sdk_inputs(tm.args)
    for key in [*tm.props, *tm.pulumi_only, *tm.no_cfn_property, *([tm.fold.via] if tm.fold else [])]:
        if key not in known:
            errors.append(f"{typ}.{key}: not an input of pulumi_aws {tm.args.__name__}")
    cfn_type = tm.cfn_type or TYPE_MAPS[tm.fold.target_types[0]].cfn_type
    root = _schema(cfn_type)
    for key, spec in tm.props.items():
        _check_prop(errors, root, root, spec, f"{typ}.{key}")
    for key, companion in tm.companions.items():
        if key not in known:
            errors.append(f"{typ}.{key}: not an input of pulumi_aws {tm.args.__name__}")
        croot = _schema(companion.cfn_type)
        _check_prop(errors, croot, croot, companion.prop, f"{typ}.{key}")
        if companion.target not in croot["properties"]:
            errors.append(f"{typ}.{key}: {companion.target} is not a property of {companion.cfn_type}")
    for how in tm.refs.values():
        if how != "Ref" and how.split(".")[0] not in root["properties"]:
            errors.append(f"{typ}: GetAtt {how} is not an attribute of {cfn_type}")
    assert not errors, "\n".join(errors)


def test_claimed_missing_properties_are_missing():
    assert "Tags" not in _schema("AWS::IAM::ManagedPolicy")["properties"]
    assert "Tags" not in _schema("AWS::EC2::SecurityGroupIngress")["properties"]
    assert "Tags" not in _schema("AWS::EC2::SecurityGroupEgress")["properties"]
    assert "SecretBinary" not in _schema("AWS::SecretsManager::Secret")["properties"]
    assert "ResourcePolicy" not in _schema("AWS::SecretsManager::Secret")["properties"]
    # No standalone CloudFormation resource for these: they fold into their target.
    types = set(PROVIDER_SCHEMA_MANAGER.get_resource_types(REGION))
    assert not {"AWS::IAM::RolePolicyAttachment", "AWS::SecretsManager::SecretVersion",
                "AWS::Backup::BackupVaultPolicy", "AWS::Lambda::Invocation"} & types


def test_the_types_the_other_branches_add_are_mapped_or_listed():
    wanted = {
        "aws:lambda/function:Function", "aws:secretsmanager/secret:Secret", "aws:secretsmanager/secretVersion:SecretVersion",
        "aws:secretsmanager/secretPolicy:SecretPolicy", "aws:ec2/vpcEndpoint:VpcEndpoint", "aws:cloudwatch/logGroup:LogGroup",
        "aws:backup/vaultPolicy:VaultPolicy", "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
        "aws:backup/restoreTestingPlan:RestoreTestingPlan", "aws:backup/restoreTestingSelection:RestoreTestingSelection",
        "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    }
    assert wanted <= set(TYPE_MAPS)
    assert set(PULUMI_ONLY_TYPES) == {"aws:lambda/invocation:Invocation",
                                      "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
                                      "aws:rds/snapshotCopy:SnapshotCopy"}
    # AWS::RDS::DBSnapshot snapshots an instance; it has no source snapshot to copy from.
    assert "SourceDBSnapshotIdentifier" not in _schema("AWS::RDS::DBSnapshot")["properties"]
    assert "AWS::EC2::DefaultSecurityGroup" not in set(PROVIDER_SCHEMA_MANAGER.get_resource_types(REGION))
    assert TYPE_MAPS["aws:kms/key:Key"].props["policy"].cfn == "KeyPolicy"


def test_coverage_adds_up():
    for typ, c in coverage().items():
        assert c["inputs"] == c["mapped"] + c["pulumi_only"] + c["no_cfn_property"] + c["unmapped"], typ
        assert c["mapped"] >= 2, typ


# --- per type: a plan resource and the CloudFormation example it must match -----------------------


def R(name: str, typ: str, inputs: dict, id_: str = "", outputs: Optional[dict] = None,
      deps: Optional[dict[str, list[str]]] = None) -> dict:
    return {"urn": f"urn:pulumi:prod::bulkhead::{typ}::{name}", "type": typ, "custom": True, "id": id_ or name,
            "inputs": inputs, "outputs": {**inputs, **(outputs or {})}, "_deps": deps or {}}


def _plan(*resources: dict) -> dict:
    by_name = {r["urn"].rsplit("::", 1)[1]: r["urn"] for r in resources}
    out = []
    for r in resources:
        r = copy.deepcopy(r)
        r["propertyDependencies"] = {k: [by_name[n] for n in v] for k, v in r.pop("_deps").items()}
        out.append(r)
    return {"version": 3, "deployment": {"resources": out}}


ROLE = R("backup-role", "aws:iam/role:Role", {
    "namePrefix": "bulkhead-prod-backup-", "description": "Lets AWS Backup snapshot and restore",
    "assumeRolePolicy": '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}]}',
    "tags": TAGS}, id_="bulkhead-prod-backup-1", outputs={"name": "bulkhead-prod-backup-1", "arn": ROLE_ARN})
ROLE_CFN = {"RoleName": "x", "Description": "x", "AssumeRolePolicyDocument": {
    "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
    "Tags": CFN_TAGS}
VAULT = R("backup-vault", "aws:backup/vault:Vault", {"name": "bulkhead-prod-primary", "kmsKeyArn": KEY_ARN, "forceDestroy": False,
                                                      "tags": TAGS}, id_="bulkhead-prod-primary")
VAULT_CFN = {"BackupVaultName": "bulkhead-prod-primary", "EncryptionKeyArn": KEY_ARN, "BackupVaultTags": dict(TAGS)}
SECRET = R("app-master", "aws:secretsmanager/secret:Secret", {
    "namePrefix": "bulkhead/prod/app/master-", "description": "Break-glass master of database app", "kmsKeyId": KEY_ARN,
    "recoveryWindowInDays": 30, "tags": TAGS}, id_=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:bulkhead/prod/app/master-Ab12Cd",
    outputs={"arn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:bulkhead/prod/app/master-Ab12Cd"})
SECRET_CFN = {"Name": "x", "Description": "x", "KmsKeyId": KEY_ARN, "Tags": CFN_TAGS}
ENVELOPE = SECRET_ENVELOPE

# (case id, plan resources, the resource compared, its CloudFormation type, the example's Properties)
CASES: list[tuple[str, list[dict], str, str, dict]] = [
    ("rds-primary", [R("app-primary", "aws:rds/instance:Instance", {
        "identifier": "prod-app", "engine": "postgres", "engineVersion": "16.9", "instanceClass": "db.t4g.medium",
        "allocatedStorage": 20, "maxAllocatedStorage": 100, "storageType": "gp3", "storageEncrypted": True, "kmsKeyId": KEY_ARN,
        "dbName": "app", "username": "bulkhead_admin", "manageMasterUserPassword": True, "masterUserSecretKmsKeyId": KEY_ARN,
        "dbSubnetGroupName": "bulkhead-prod-subnets", "vpcSecurityGroupIds": [SG], "publiclyAccessible": False, "multiAz": True,
        "port": 5432, "backupRetentionPeriod": 7, "backupWindow": "03:00-04:00", "maintenanceWindow": "sun:05:00-sun:06:00",
        "deletionProtection": True, "iamDatabaseAuthenticationEnabled": True, "caCertIdentifier": "rds-ca-rsa2048-g1",
        "monitoringInterval": 60, "monitoringRoleArn": ROLE_ARN, "performanceInsightsEnabled": True,
        "performanceInsightsKmsKeyId": KEY_ARN, "performanceInsightsRetentionPeriod": 7,
        "enabledCloudwatchLogsExports": ["postgresql", "upgrade"], "autoMinorVersionUpgrade": True,
        "allowMajorVersionUpgrade": False, "copyTagsToSnapshot": True, "deleteAutomatedBackups": False,
        "applyImmediately": False, "skipFinalSnapshot": False, "finalSnapshotIdentifier": "prod-app-final-1a2b3c4d",
        "tags": TAGS})], "app-primary", "AWS::RDS::DBInstance", {
        "DBInstanceIdentifier": "prod-app", "Engine": "postgres", "EngineVersion": "16.9", "DBInstanceClass": "db.t4g.medium",
        "AllocatedStorage": "20", "MaxAllocatedStorage": 100, "StorageType": "gp3", "StorageEncrypted": True, "KmsKeyId": KEY_ARN,
        "DBName": "app", "MasterUsername": "bulkhead_admin", "ManageMasterUserPassword": True,
        "MasterUserSecret": {"KmsKeyId": KEY_ARN}, "DBSubnetGroupName": "bulkhead-prod-subnets", "VPCSecurityGroups": [SG],
        "PubliclyAccessible": False, "MultiAZ": True, "Port": "5432", "BackupRetentionPeriod": 7,
        "PreferredBackupWindow": "03:00-04:00", "PreferredMaintenanceWindow": "sun:05:00-sun:06:00", "DeletionProtection": True,
        "EnableIAMDatabaseAuthentication": True, "CACertificateIdentifier": "rds-ca-rsa2048-g1", "MonitoringInterval": 60,
        "MonitoringRoleArn": ROLE_ARN, "EnablePerformanceInsights": True, "PerformanceInsightsKMSKeyId": KEY_ARN,
        "PerformanceInsightsRetentionPeriod": 7, "EnableCloudwatchLogsExports": ["postgresql", "upgrade"],
        "AutoMinorVersionUpgrade": True, "AllowMajorVersionUpgrade": False, "CopyTagsToSnapshot": True,
        "DeleteAutomatedBackups": False, "ApplyImmediately": False, "Tags": CFN_TAGS}),
    ("rds-replica", [R("app-replica-1", "aws:rds/instance:Instance", {
        "identifier": "prod-app-replica-1", "replicateSourceDb": "prod-app", "instanceClass": "db.t4g.medium",
        "vpcSecurityGroupIds": [SG], "parameterGroupName": "bulkhead-prod-app-pg16-1", "publiclyAccessible": False,
        "multiAz": False, "backupRetentionPeriod": 0, "skipFinalSnapshot": True, "deletionProtection": False, "tags": TAGS})],
     "app-replica-1", "AWS::RDS::DBInstance", {
        "DBInstanceIdentifier": "prod-app-replica-1", "SourceDBInstanceIdentifier": "prod-app", "DBInstanceClass": "db.t4g.medium",
        "VPCSecurityGroups": [SG], "DBParameterGroupName": "bulkhead-prod-app-pg16-1", "PubliclyAccessible": False,
        "MultiAZ": False, "BackupRetentionPeriod": 0, "DeletionProtection": False, "Tags": CFN_TAGS}),
    ("rds-parameter-group", [R("app-params", "aws:rds/parameterGroup:ParameterGroup", {
        "namePrefix": "bulkhead-prod-app-pg16-", "family": "postgres16", "description": "SSL forced",
        "parameters": [{"name": "rds.force_ssl", "value": "1", "applyMethod": "pending-reboot"}], "tags": TAGS})],
     "app-params", "AWS::RDS::DBParameterGroup", {
        "DBParameterGroupName": "x", "Family": "postgres16", "Description": "SSL forced", "Parameters": {"rds.force_ssl": "1"},
        "Tags": CFN_TAGS}),
    ("rds-subnet-group", [R("subnets", "aws:rds/subnetGroup:SubnetGroup", {
        "namePrefix": "bulkhead-prod-", "description": "private subnets", "subnetIds": SUBNETS, "tags": TAGS})],
     "subnets", "AWS::RDS::DBSubnetGroup", {
        "DBSubnetGroupName": "x", "DBSubnetGroupDescription": "private subnets", "SubnetIds": SUBNETS, "Tags": CFN_TAGS}),
    ("security-group", [R("app-db", "aws:ec2/securityGroup:SecurityGroup", {
        "namePrefix": "bulkhead-prod-app-db-", "description": "Database app", "vpcId": VPC, "revokeRulesOnDelete": True,
        "tags": TAGS})], "app-db", "AWS::EC2::SecurityGroup", {
        "GroupName": "x", "GroupDescription": "Database app", "VpcId": VPC, "Tags": CFN_TAGS}),
    ("ingress-rule", [R("app-db-from-owner", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", {
        "securityGroupId": SG, "referencedSecurityGroupId": SG2, "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432,
        "description": "PostgreSQL from app-service only", "tags": TAGS})], "app-db-from-owner", "AWS::EC2::SecurityGroupIngress", {
        "GroupId": SG, "SourceSecurityGroupId": SG2, "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "Description": "PostgreSQL from app-service only"}),
    ("egress-rule", [R("owner-to-db", "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", {
        "securityGroupId": SG2, "referencedSecurityGroupId": SG, "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432,
        "description": "app-service to database app"})], "owner-to-db", "AWS::EC2::SecurityGroupEgress", {
        "GroupId": SG2, "DestinationSecurityGroupId": SG, "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "Description": "app-service to database app"}),
    ("vpc", [R("vpc", "aws:ec2/vpc:Vpc", {"cidrBlock": "10.42.0.0/16", "enableDnsHostnames": True, "enableDnsSupport": True,
                                           "tags": TAGS})], "vpc", "AWS::EC2::VPC", {
        "CidrBlock": "10.42.0.0/16", "EnableDnsHostnames": True, "EnableDnsSupport": True, "Tags": CFN_TAGS}),
    ("subnet", [R("private-0", "aws:ec2/subnet:Subnet", {"vpcId": VPC, "cidrBlock": "10.42.0.0/20", "availabilityZoneId": "euw1-az1",
                                                         "mapPublicIpOnLaunch": False, "tags": TAGS})], "private-0", "AWS::EC2::Subnet", {
        "VpcId": VPC, "CidrBlock": "10.42.0.0/20", "AvailabilityZoneId": "euw1-az1", "MapPublicIpOnLaunch": False, "Tags": CFN_TAGS}),
    ("vpc-endpoint", [R("secrets-endpoint", "aws:ec2/vpcEndpoint:VpcEndpoint", {
        "vpcId": VPC, "serviceName": f"com.amazonaws.{REGION}.secretsmanager", "vpcEndpointType": "Interface",
        "subnetIds": SUBNETS, "securityGroupIds": [SG], "privateDnsEnabled": True, "policy": RESOURCE_POLICY, "tags": TAGS})],
     "secrets-endpoint", "AWS::EC2::VPCEndpoint", {
        "VpcId": VPC, "ServiceName": f"com.amazonaws.{REGION}.secretsmanager", "VpcEndpointType": "Interface",
        "SubnetIds": SUBNETS, "SecurityGroupIds": [SG], "PrivateDnsEnabled": True, "PolicyDocument": RESOURCE_POLICY_DOC, "Tags": CFN_TAGS}),
    ("kms-key", [R("app-key", "aws:kms/key:Key", {
        "description": "bulkhead prod/app", "enableKeyRotation": True, "deletionWindowInDays": 30, "policy": RESOURCE_POLICY, "tags": TAGS})],
     "app-key", "AWS::KMS::Key", {
        "Description": "bulkhead prod/app", "EnableKeyRotation": True, "PendingWindowInDays": 30, "KeyPolicy": RESOURCE_POLICY_DOC,
        "Tags": CFN_TAGS}),
    ("kms-alias", [R("app-key-alias", "aws:kms/alias:Alias", {"name": "alias/bulkhead/prod/app", "targetKeyId": KEY_ARN})],
     "app-key-alias", "AWS::KMS::Alias", {"AliasName": "alias/bulkhead/prod/app", "TargetKeyId": KEY_ARN}),
    ("iam-role", [ROLE], "backup-role", "AWS::IAM::Role", ROLE_CFN),
    ("iam-policy", [R("app-access", "aws:iam/policy:Policy", {
        "namePrefix": "bulkhead-prod-app-access-", "description": "What app-service needs", "policy": POLICY, "tags": TAGS})],
     "app-access", "AWS::IAM::ManagedPolicy", {"ManagedPolicyName": "x", "Description": "What app-service needs",
                                               "PolicyDocument": POLICY_DOC}),
    ("iam-role-policy", [R("app-inline", "aws:iam/rolePolicy:RolePolicy", {
        "name": "read-secret", "role": "bulkhead-prod-backup-1", "policy": POLICY})], "app-inline", "AWS::IAM::RolePolicy", {
        "PolicyName": "read-secret", "RoleName": "bulkhead-prod-backup-1", "PolicyDocument": POLICY_DOC}),
    ("iam-role-policy-attachment", [ROLE, R("backup-role-policy-0", "aws:iam/rolePolicyAttachment:RolePolicyAttachment", {
        "role": "bulkhead-prod-backup-1",
        "policyArn": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"}, deps={"role": ["backup-role"]})],
     "backup-role", "AWS::IAM::Role", {**ROLE_CFN, "ManagedPolicyArns": [
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup"]}),
    ("secret", [SECRET], "app-master", "AWS::SecretsManager::Secret", SECRET_CFN),
    ("secret-version", [SECRET, R("app-master-value", "aws:secretsmanager/secretVersion:SecretVersion", {
        "secretId": SECRET["id"], "secretString": ENVELOPE}, deps={"secretId": ["app-master"]})],
     "app-master", "AWS::SecretsManager::Secret", {**SECRET_CFN, "SecretString": "x"}),
    ("secret-policy", [R("app-master-policy", "aws:secretsmanager/secretPolicy:SecretPolicy", {
        "secretArn": SECRET["id"], "policy": RESOURCE_POLICY, "blockPublicPolicy": True})],
     "app-master-policy", "AWS::SecretsManager::ResourcePolicy", {
        "SecretId": SECRET["id"], "ResourcePolicy": RESOURCE_POLICY_DOC, "BlockPublicPolicy": True}),
    ("log-group", [R("app-log-postgresql", "aws:cloudwatch/logGroup:LogGroup", {
        "name": "/aws/rds/instance/prod-app/postgresql", "retentionInDays": 30, "kmsKeyId": KEY_ARN, "tags": TAGS})],
     "app-log-postgresql", "AWS::Logs::LogGroup", {
        "LogGroupName": "/aws/rds/instance/prod-app/postgresql", "RetentionInDays": 30, "KmsKeyId": KEY_ARN, "Tags": CFN_TAGS}),
    # The AWS::EC2::FlowLog reference's example "Flow log delivered to CloudWatch Logs".
    ("flow-log", [R("foundation-flow-log", "aws:ec2/flowLog:FlowLog", {
        "vpcId": "vpc-0a1b2c3d4e5f67890", "trafficType": "REJECT", "logDestinationType": "cloud-watch-logs",
        "logDestination": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/bulkhead/prod/vpc-flow-logs",
        "iamRoleArn": ROLE_ARN, "tags": TAGS})],
     "foundation-flow-log", "AWS::EC2::FlowLog", {
        "ResourceId": "vpc-0a1b2c3d4e5f67890", "ResourceType": "VPC", "TrafficType": "REJECT",
        "LogDestinationType": "cloud-watch-logs",
        "LogDestination": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/bulkhead/prod/vpc-flow-logs",
        "DeliverLogsPermissionArn": ROLE_ARN, "Tags": CFN_TAGS}),
    ("lambda-function", [R("app-bootstrap", "aws:lambda/function:Function", {
        "name": "bulkhead-prod-app-bootstrap", "role": ROLE_ARN, "runtime": "python3.12", "handler": "index.handler",
        "code": {"assets": {"index.py": {"text": "def handler(event, context): pass"}}}, "timeout": 60, "memorySize": 256,
        "description": "Creates the service's login role", "environment": {"variables": {"DB_NAME": "app"}},
        "vpcConfig": {"subnetIds": SUBNETS, "securityGroupIds": [SG]}, "loggingConfig": {"logFormat": "JSON", "logGroup": "/aws/lambda/x"},
        "tags": TAGS})], "app-bootstrap", "AWS::Lambda::Function", {
        "FunctionName": "bulkhead-prod-app-bootstrap", "Role": ROLE_ARN, "Runtime": "python3.12", "Handler": "index.handler",
        "Code": {"ZipFile": "x"}, "Timeout": 60, "MemorySize": 256, "Description": "Creates the service's login role",
        "Environment": {"Variables": {"DB_NAME": "app"}}, "VpcConfig": {"SubnetIds": SUBNETS, "SecurityGroupIds": [SG]},
        "LoggingConfig": {"LogFormat": "JSON", "LogGroup": "/aws/lambda/x"}, "Tags": CFN_TAGS}),
    ("backup-vault", [VAULT], "backup-vault", "AWS::Backup::BackupVault", VAULT_CFN),
    ("backup-vault-policy", [VAULT, R("backup-vault-policy", "aws:backup/vaultPolicy:VaultPolicy", {
        "backupVaultName": "bulkhead-prod-primary", "policy": RESOURCE_POLICY}, deps={"backupVaultName": ["backup-vault"]})],
     "backup-vault", "AWS::Backup::BackupVault", {**VAULT_CFN, "AccessPolicy": RESOURCE_POLICY_DOC}),
    ("backup-vault-lock", [VAULT, R("backup-vault-lock", "aws:backup/vaultLockConfiguration:VaultLockConfiguration", {
        "backupVaultName": "bulkhead-prod-primary", "minRetentionDays": 7, "maxRetentionDays": 365, "changeableForDays": 3},
        deps={"backupVaultName": ["backup-vault"]})],
     "backup-vault", "AWS::Backup::BackupVault", {**VAULT_CFN, "LockConfiguration": {
        "MinRetentionDays": 7, "MaxRetentionDays": 365, "ChangeableForDays": 3}}),
    ("backup-plan", [R("backup-critical", "aws:backup/plan:Plan", {"name": "bulkhead-prod-critical", "rules": [{
        "ruleName": "critical-scheduled", "targetVaultName": "bulkhead-prod-primary", "schedule": "cron(0 * * * ? *)",
        "startWindow": 60, "completionWindow": 240, "lifecycle": {"deleteAfter": 30},
        "copyActions": [{"destinationVaultArn": VAULT_ARN, "lifecycle": {"deleteAfter": 30}}],
        "recoveryPointTags": TAGS}], "tags": TAGS})], "backup-critical", "AWS::Backup::BackupPlan", {
        "BackupPlan": {"BackupPlanName": "bulkhead-prod-critical", "BackupPlanRule": [{
            "RuleName": "critical-scheduled", "TargetBackupVault": "bulkhead-prod-primary", "ScheduleExpression": "cron(0 * * * ? *)",
            "StartWindowMinutes": 60, "CompletionWindowMinutes": 240, "Lifecycle": {"DeleteAfterDays": 30},
            "CopyActions": [{"DestinationBackupVaultArn": VAULT_ARN, "Lifecycle": {"DeleteAfterDays": 30}}],
            "RecoveryPointTags": dict(TAGS)}]}, "BackupPlanTags": dict(TAGS)}),
    ("backup-selection", [R("backup-critical-selection", "aws:backup/selection:Selection", {
        "name": "bulkhead-prod-critical", "planId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "iamRoleArn": ROLE_ARN,
        "resources": ["arn:aws:rds:*:*:db:*"], "conditions": [{"stringEquals": [{"key": "aws:ResourceTag/bulkhead:tier", "value": "critical"}]}]})],
     "backup-critical-selection", "AWS::Backup::BackupSelection", {
        "BackupPlanId": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "BackupSelection": {
            "SelectionName": "bulkhead-prod-critical", "IamRoleArn": ROLE_ARN, "Resources": ["arn:aws:rds:*:*:db:*"],
            "Conditions": {"StringEquals": [{"ConditionKey": "aws:ResourceTag/bulkhead:tier", "ConditionValue": "critical"}]}}}),
    ("restore-testing-plan", [R("restore-test", "aws:backup/restoreTestingPlan:RestoreTestingPlan", {
        "name": "bulkhead_prod_restore_test", "scheduleExpression": "cron(0 5 ? * SUN *)", "startWindowHours": 24,
        "recoveryPointSelection": {"algorithm": "LATEST_WITHIN_WINDOW", "includeVaults": ["*"], "recoveryPointTypes": ["SNAPSHOT"],
                                   "selectionWindowDays": 7}, "tags": TAGS})], "restore-test", "AWS::Backup::RestoreTestingPlan", {
        "RestoreTestingPlanName": "bulkhead_prod_restore_test", "ScheduleExpression": "cron(0 5 ? * SUN *)", "StartWindowHours": 24,
        "RecoveryPointSelection": {"Algorithm": "LATEST_WITHIN_WINDOW", "IncludeVaults": ["*"], "RecoveryPointTypes": ["SNAPSHOT"],
                                   "SelectionWindowDays": 7}, "Tags": CFN_TAGS}),
    ("restore-testing-selection", [R("restore-test-rds", "aws:backup/restoreTestingSelection:RestoreTestingSelection", {
        "name": "bulkhead_prod_rds", "restoreTestingPlanName": "bulkhead_prod_restore_test", "iamRoleArn": ROLE_ARN,
        "protectedResourceType": "RDS", "protectedResourceConditions": {"stringEquals": [{"key": "aws:ResourceTag/bulkhead:role", "value": "primary"}]},
        "restoreMetadataOverrides": {"dbsubnetgroupname": "bulkhead-prod-subnets"}, "validationWindowHours": 2})],
     "restore-test-rds", "AWS::Backup::RestoreTestingSelection", {
        "RestoreTestingSelectionName": "bulkhead_prod_rds", "RestoreTestingPlanName": "bulkhead_prod_restore_test",
        "IamRoleArn": ROLE_ARN, "ProtectedResourceType": "RDS", "ProtectedResourceConditions": {
            "StringEquals": [{"Key": "aws:ResourceTag/bulkhead:role", "Value": "primary"}]},
        "RestoreMetadataOverrides": {"dbsubnetgroupname": "bulkhead-prod-subnets"}, "ValidationWindowHours": 2}),
    # Issue 24 (components/prod/alarms.py); examples after the CloudFormation reference's own.
    ("sns-topic", [R("alerts-topic", "aws:sns/topic:Topic", {
        "name": "bulkhead-prod-alerts", "kmsMasterKeyId": KEY_ARN, "tags": TAGS}, id_=TOPIC_ARN, outputs={"arn": TOPIC_ARN})],
     "alerts-topic", "AWS::SNS::Topic", {"TopicName": "bulkhead-prod-alerts", "KmsMasterKeyId": KEY_ARN, "Tags": CFN_TAGS}),
    ("sns-topic-policy", [R("alerts-topic-policy", "aws:sns/topicPolicy:TopicPolicy", {"arn": TOPIC_ARN, "policy": TOPIC_POLICY})],
     "alerts-topic-policy", "AWS::SNS::TopicPolicy", {"Topics": [TOPIC_ARN], "PolicyDocument": json.loads(TOPIC_POLICY)}),
    ("sns-subscription", [R("alerts-email-0", "aws:sns/topicSubscription:TopicSubscription", {
        "topic": TOPIC_ARN, "protocol": "email", "endpoint": "dba@example.com"})],
     "alerts-email-0", "AWS::SNS::Subscription", {"TopicArn": TOPIC_ARN, "Protocol": "email", "Endpoint": "dba@example.com"}),
    ("metric-alarm", [R("app-alarms-cpu", "aws:cloudwatch/metricAlarm:MetricAlarm", {
        "name": "bulkhead-prod-app-cpu", "alarmDescription": "CPU", "namespace": "AWS/RDS", "metricName": "CPUUtilization",
        "dimensions": {"DBInstanceIdentifier": "prod-app"}, "statistic": "Average", "period": 300, "evaluationPeriods": 3,
        "comparisonOperator": "GreaterThanThreshold", "threshold": 80, "treatMissingData": "missing",
        "alarmActions": [TOPIC_ARN], "okActions": [TOPIC_ARN], "tags": TAGS})],
     "app-alarms-cpu", "AWS::CloudWatch::Alarm", {
        "AlarmName": "bulkhead-prod-app-cpu", "AlarmDescription": "CPU", "Namespace": "AWS/RDS", "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "prod-app"}], "Statistic": "Average", "Period": 300,
        "EvaluationPeriods": 3, "ComparisonOperator": "GreaterThanThreshold", "Threshold": 80, "TreatMissingData": "missing",
        "AlarmActions": [TOPIC_ARN], "OKActions": [TOPIC_ARN], "Tags": CFN_TAGS}),
    ("rds-event-subscription", [R("events-subscription", "aws:rds/eventSubscription:EventSubscription", {
        "name": "bulkhead-prod-events", "snsTopic": TOPIC_ARN, "sourceType": "db-instance", "sourceIds": ["prod-app"],
        "eventCategories": ["failover", "low storage"], "enabled": True, "tags": TAGS})],
     "events-subscription", "AWS::RDS::EventSubscription", {
        "SubscriptionName": "bulkhead-prod-events", "SnsTopicArn": TOPIC_ARN, "SourceType": "db-instance", "SourceIds": ["prod-app"],
        "EventCategories": ["failover", "low storage"], "Enabled": True, "Tags": CFN_TAGS}),
]

# `proxy: true` (issue 24): the proxy, its default target group and the target folded into it.
PROXY = R("worker-proxy", "aws:rds/proxy:Proxy", {
    "name": "prod-worker-proxy", "engineFamily": "POSTGRESQL", "defaultAuthScheme": "IAM_AUTH", "requireTls": True,
    "roleArn": ROLE_ARN, "vpcSecurityGroupIds": [SG], "vpcSubnetIds": ["subnet-0a1b2c3d4e5f67890", "subnet-0a1b2c3d4e5f67891"],
    "debugLogging": False, "tags": TAGS}, id_="prod-worker-proxy", outputs={"name": "prod-worker-proxy"})
PROXY_TARGETS = R("worker-proxy-targets", "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup", {
    "dbProxyName": "prod-worker-proxy", "connectionPoolConfig": {"maxConnectionsPercent": 90, "maxIdleConnectionsPercent": 50}},
    id_="prod-worker-proxy", outputs={"name": "default"})
PROXY_TARGETS_CFN = {"DBProxyName": "prod-worker-proxy", "TargetGroupName": "default",
                     "ConnectionPoolConfigurationInfo": {"MaxConnectionsPercent": 90, "MaxIdleConnectionsPercent": 50}}
CASES += [
    ("rds-proxy", [PROXY], "worker-proxy", "AWS::RDS::DBProxy", {
        "DBProxyName": "prod-worker-proxy", "EngineFamily": "POSTGRESQL", "DefaultAuthScheme": "IAM_AUTH",
        "RequireTLS": True, "RoleArn": ROLE_ARN, "VpcSecurityGroupIds": [SG],
        "VpcSubnetIds": ["subnet-0a1b2c3d4e5f67890", "subnet-0a1b2c3d4e5f67891"], "DebugLogging": False, "Tags": CFN_TAGS}),
    ("rds-proxy-target-group", [PROXY, PROXY_TARGETS], "worker-proxy-targets", "AWS::RDS::DBProxyTargetGroup",
     PROXY_TARGETS_CFN),
    ("rds-proxy-target", [PROXY, PROXY_TARGETS, R("worker-proxy-target", "aws:rds/proxyTarget:ProxyTarget", {
        "dbProxyName": "prod-worker-proxy", "targetGroupName": "default", "dbInstanceIdentifier": "prod-worker"},
        deps={"targetGroupName": ["worker-proxy-targets"]})],
     "worker-proxy-targets", "AWS::RDS::DBProxyTargetGroup", {**PROXY_TARGETS_CFN, "DBInstanceIdentifiers": ["prod-worker"]}),
]


# Maps of free keys (tags, parameters, variables, overrides): their keys are data, not property names.
FREE_MAPS = {"BackupVaultTags", "BackupPlanTags", "RecoveryPointTags", "Parameters", "Variables",
             "RestoreMetadataOverrides", "AccessPolicy", "KeyPolicy", "PolicyDocument", "ResourcePolicy",
             "AssumeRolePolicyDocument"}


def _property_names(value: Any, prefix: str = "") -> set[str]:
    """Property paths (object keys) of a CloudFormation value; list items share their path."""
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(prefix + k)
            if k not in FREE_MAPS:
                out |= _property_names(v, f"{prefix}{k}.")
    elif isinstance(value, list):
        for v in value:
            out |= _property_names(v, prefix)
    return out


@pytest.fixture(scope="module")
def translated() -> dict[str, tuple[dict, str]]:
    """case id -> (CloudFormation resource of the compared plan resource, logical id); one template per case."""
    out = {}
    for case_id, resources, compared, _cfn_type, _ in CASES:
        [template] = translate(_plan(*resources), REGION, TYPE_MAPS, PULUMI_ONLY_TYPES)
        logical = next(l for l, urn in template.origins.items() if urn.endswith(f"::{compared}"))
        out[case_id] = (template, logical)
    return out


def _rounds(resources: list[tuple[str, dict, str]]) -> list[Template]:
    """As few templates as hold the resources without two of one name in a template (cfn-lint
    rightly refuses duplicate names, and several cases share the role, vault and secret)."""
    templates: list[Template] = []
    names: list[set] = []
    for logical, resource, origin in resources:
        ident = (resource["Type"], repr(sorted((k, repr(v)) for k, v in resource["Properties"].items() if k.endswith("Name"))))
        # Bugbear B007 misreads this: the loop variables are the result,: the first template that has room (for-else).
        for template, seen in zip(templates, names, strict=True):  # noqa: B007
            if ident not in seen:
                break
        else:
            template, seen = Template(REGION, {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {}}, {}), set()
            templates.append(template)
            names.append(seen)
        seen.add(ident)
        key = f"{logical}{len(template.body['Resources'])}"
        template.body["Resources"][key] = resource
        template.origins[key] = origin
    return templates


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_translation_matches_the_cloudformation_example(translated, case):
    case_id, _, _, cfn_type, example = case
    template, logical = translated[case_id]
    resource = template.body["Resources"][logical]
    assert resource["Type"] == cfn_type
    assert _property_names(resource["Properties"]) == _property_names(example)


def test_examples_and_translations_pass_cfn_lint(translated):
    examples = [(f"Example{c[0].title().replace('-', '')}", {"Type": c[3], "Properties": c[4]}, c[0]) for c in CASES]
    plans = [(logical, resource, t.origins[logical])
             for t, _ in translated.values() for logical, resource in t.body["Resources"].items()]
    bad = [f for t in _rounds(examples) + _rounds(plans) for f in unaccepted(lint_template(t))]
    assert not bad, "\n".join(map(str, bad))


def test_every_mapped_type_has_an_example():
    covered = {r["type"] for _, resources, _, _, _ in CASES for r in resources}
    assert covered == set(TYPE_MAPS)


def test_pulumi_only_type_is_skipped_and_unknown_nested_key_refused():
    plan = _plan(R("app-bootstrap-run", "aws:lambda/invocation:Invocation", {"functionName": "f", "input": "{}"}))
    assert translate(plan, REGION, TYPE_MAPS, PULUMI_ONLY_TYPES) == []
    plan = _plan(R("backup-critical", "aws:backup/plan:Plan", {"name": "p", "rules": [{"ruleName": "r", "targetVaultName": "v",
                                                                                       "brandNewBlock": {}}]}))
    with pytest.raises(TranslationError, match=r"rules\[0\]\.brandNewBlock: pulumi-aws input with no CloudFormation mapping"):
        translate(plan, REGION, TYPE_MAPS, PULUMI_ONLY_TYPES)
    plan = _plan(R("orphan", "aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"role": "someone-elses-role", "policyArn": "arn:aws:iam::aws:policy/x"}))
    with pytest.raises(TranslationError, match="does not reference a aws:iam/role:Role of this plan"):
        translate(plan, REGION, TYPE_MAPS, PULUMI_ONLY_TYPES)


def test_secret_inline_policy_becomes_a_resource_policy():
    secret = copy.deepcopy(SECRET)
    secret["inputs"]["policy"] = RESOURCE_POLICY
    [template] = translate(_plan(secret), REGION, TYPE_MAPS, PULUMI_ONLY_TYPES)
    by_type = {r["Type"]: (logical, r) for logical, r in template.body["Resources"].items()}
    secret_logical, secret_cfn = by_type["AWS::SecretsManager::Secret"]
    _, policy = by_type["AWS::SecretsManager::ResourcePolicy"]
    assert "ResourcePolicy" not in secret_cfn["Properties"]
    assert policy["Properties"] == {"SecretId": {"Ref": secret_logical}, "ResourcePolicy": RESOURCE_POLICY_DOC}
    assert not unaccepted(lint_template(template))


def test_references_become_ref_and_getatt():
    key = R("app-key", "aws:kms/key:Key", {"description": "k"}, id_="0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", outputs={"arn": KEY_ARN})
    alias = R("app-key-alias", "aws:kms/alias:Alias", {"name": "alias/x", "targetKeyId": key["id"]}, deps={"targetKeyId": ["app-key"]})
    log = R("log", "aws:cloudwatch/logGroup:LogGroup", {"name": "/x", "kmsKeyId": KEY_ARN}, deps={"kmsKeyId": ["app-key"]})
    [template] = translate(_plan(key, alias, log), REGION, TYPE_MAPS, PULUMI_ONLY_TYPES)
    res = template.body["Resources"]
    assert res["AppKeyAlias"]["Properties"]["TargetKeyId"] == {"Ref": "AppKey"}
    assert res["Log"]["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["AppKey", "Arn"]}


def test_mapping_module_cites_an_api_per_type():
    # One "# <API operation> <-> <CloudFormation type>" comment per mapped type.
    import inspect

    source = inspect.getsource(mappings)
    for tm in TYPE_MAPS.values():
        target = tm.cfn_type or "`"
        assert f"<-> {target}" in source or (tm.fold and "<-> `" in source), tm.pulumi_type
