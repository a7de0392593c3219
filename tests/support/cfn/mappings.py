"""pulumi-aws input -> CloudFormation property, per resource type.

Both sides name the same AWS API field: pulumi-aws (the Terraform provider's schema)
documents each argument with the API parameter it sets, and the CloudFormation
resource reference names the API operation and parameter of each property. The
API operation is cited once per type below. Input names are the camelCase keys of
the plan (pulumi_aws's `...Args` classes in .venv; `test_cfn_mappings.py` checks every
key against them); property names are those of cfn-lint's bundled resource schemas
(checked against them too).

An input the provider applies with a second API call may become a resource of its own
(`companions`: a secret's inline `policy` is an AWS::SecretsManager::ResourcePolicy), and a
resource CloudFormation has no type for folds into the one it configures (`fold`: a role
policy attachment is the role's `ManagedPolicyArns`).

Three kinds of unmapped input, each with its reason:
- `pulumi_only`: provider behaviour with no AWS create/update field (e.g. `skipFinalSnapshot`
  is a DeleteDBInstance argument; `region` picks the provider's endpoint, i.e. the template's region);
- `no_cfn_property`: an AWS API field the CloudFormation type does not expose (not checked here);
- anything else: the translator refuses the plan.
"""

from __future__ import annotations

import pulumi_aws as aws

from .translate import FLATTEN, REF, Companion, Fold, ListOf, Prop, Struct, TypeMap, as_string, json_document, tags_list

REGION = "selects the provider's region: the template is checked in that region"
TAGS_NOT_IN_CFN = "the API takes tags (TagSpecifications/Tags) but this CloudFormation type has no Tags property"

# pulumi-aws types with no CloudFormation counterpart at all: skipped, with the reason.
# Any other aws: type without a mapping fails the translation.
PULUMI_ONLY_TYPES = {
    # The provider calls lambda:Invoke once per create/update of its triggers; CloudFormation
    # would need a custom resource backed by a function. The function itself is checked.
    "aws:lambda/invocation:Invocation": "one lambda:Invoke call made by the provider, not an AWS resource",
    # The provider adopts the VPC's default group and revokes its rules (RevokeSecurityGroupIngress/
    # Egress); CloudFormation has no resource for a VPC's default group (AWS::EC2::VPC only
    # returns its id). tests/program/test_prod_baseline.py checks it has no rules.
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "adopts an existing group and revokes its rules; no "
                                                         "CloudFormation type",
    # CopyDBSnapshot (restore_from: snapshot, issue 24): CloudFormation has no resource that copies a DB
    # snapshot; the instance restored from the copy is checked (DBSnapshotIdentifier).
    "aws:rds/snapshotCopy:SnapshotCopy": "one CopyDBSnapshot call; no CloudFormation type copies a DB snapshot "
                                         "(AWS::RDS::DBSnapshot snapshots an instance)",
}


def _deletion_policy(inputs) -> dict:
    # CloudFormation takes a final snapshot through DeletionPolicy, not a property.
    policy = "Delete" if inputs.get("skipFinalSnapshot", False) else "Snapshot"
    return {"DeletionPolicy": policy, "UpdateReplacePolicy": policy}


# --- RDS ---------------------------------------------------------------------------------

# CreateDBInstance / CreateDBInstanceReadReplica (RDS API) <-> AWS::RDS::DBInstance.
RDS_INSTANCE = TypeMap(
    "aws:rds/instance:Instance",
    "AWS::RDS::DBInstance",
    aws.rds.InstanceArgs,
    props={
        "allocatedStorage": Prop("AllocatedStorage", as_string),
        "allowMajorVersionUpgrade": "AllowMajorVersionUpgrade",
        "applyImmediately": "ApplyImmediately",
        "autoMinorVersionUpgrade": "AutoMinorVersionUpgrade",
        "availabilityZone": "AvailabilityZone",
        "backupRetentionPeriod": "BackupRetentionPeriod",
        "backupTarget": "BackupTarget",
        "backupWindow": "PreferredBackupWindow",
        "caCertIdentifier": "CACertificateIdentifier",
        "characterSetName": "CharacterSetName",
        "copyTagsToSnapshot": "CopyTagsToSnapshot",
        "customIamInstanceProfile": "CustomIAMInstanceProfile",
        "databaseInsightsMode": "DatabaseInsightsMode",
        "dbName": "DBName",
        "dbSubnetGroupName": "DBSubnetGroupName",
        "dedicatedLogVolume": "DedicatedLogVolume",
        "deleteAutomatedBackups": "DeleteAutomatedBackups",
        "deletionProtection": "DeletionProtection",
        "domain": "Domain",
        "domainAuthSecretArn": "DomainAuthSecretArn",
        "domainDnsIps": "DomainDnsIps",
        "domainFqdn": "DomainFqdn",
        "domainIamRoleName": "DomainIAMRoleName",
        "domainOu": "DomainOu",
        "enabledCloudwatchLogsExports": "EnableCloudwatchLogsExports",
        "engine": "Engine",
        "engineLifecycleSupport": "EngineLifecycleSupport",
        "engineVersion": "EngineVersion",
        "iamDatabaseAuthenticationEnabled": "EnableIAMDatabaseAuthentication",
        "identifier": "DBInstanceIdentifier",
        "identifierPrefix": Prop("DBInstanceIdentifier", prefix=True),
        "instanceClass": "DBInstanceClass",
        "iops": "Iops",
        "kmsKeyId": "KmsKeyId",
        "licenseModel": "LicenseModel",
        "maintenanceWindow": "PreferredMaintenanceWindow",
        "manageMasterUserPassword": "ManageMasterUserPassword",
        "masterUserSecretKmsKeyId": "MasterUserSecret.KmsKeyId",
        "maxAllocatedStorage": "MaxAllocatedStorage",
        "monitoringInterval": "MonitoringInterval",
        "monitoringRoleArn": "MonitoringRoleArn",
        "multiAz": "MultiAZ",
        "ncharCharacterSetName": "NcharCharacterSetName",
        "networkType": "NetworkType",
        "optionGroupName": "OptionGroupName",
        "parameterGroupName": "DBParameterGroupName",
        "password": "MasterUserPassword",
        "passwordWo": "MasterUserPassword",
        "performanceInsightsEnabled": "EnablePerformanceInsights",
        "performanceInsightsKmsKeyId": "PerformanceInsightsKMSKeyId",
        "performanceInsightsRetentionPeriod": "PerformanceInsightsRetentionPeriod",
        "port": Prop("Port", as_string),
        "publiclyAccessible": "PubliclyAccessible",
        "replicaMode": "ReplicaMode",
        "replicateSourceDb": "SourceDBInstanceIdentifier",
        "snapshotIdentifier": "DBSnapshotIdentifier",
        # RestoreDBInstanceToPointInTime: CloudFormation spreads it over top-level properties.
        "restoreToPointInTime": Prop(FLATTEN, Struct(aws.rds.InstanceRestoreToPointInTimeArgs, props={
            "sourceDbInstanceIdentifier": "SourceDBInstanceIdentifier", "restoreTime": "RestoreTime",
            "useLatestRestorableTime": "UseLatestRestorableTime", "sourceDbiResourceId": "SourceDbiResourceId",
            "sourceDbInstanceAutomatedBackupsArn": "SourceDBInstanceAutomatedBackupsArn"})),
        "storageEncrypted": "StorageEncrypted",
        "storageThroughput": "StorageThroughput",
        "storageType": "StorageType",
        "tags": Prop("Tags", tags_list),
        "timezone": "Timezone",
        "username": "MasterUsername",
        "vpcSecurityGroupIds": "VPCSecurityGroups",
    },
    pulumi_only={
        "region": REGION,
        "skipFinalSnapshot": "DeleteDBInstance's SkipFinalSnapshot; CloudFormation uses DeletionPolicy (set from it)",
        "finalSnapshotIdentifier": "DeleteDBInstance's FinalDBSnapshotIdentifier; CloudFormation names the DeletionPolicy snapshot itself",
        "passwordWoVersion": "a provider counter that triggers a password update; not sent to AWS",
        "blueGreenUpdate": "the provider's blue/green update procedure, not an instance field",
    },
    refs={"id": REF, "identifier": REF, "arn": "DBInstanceArn", "address": "Endpoint.Address",
          "port": "Endpoint.Port", "resourceId": "DbiResourceId"},
    attributes=_deletion_policy,
)

# CreateDBParameterGroup + ModifyDBParameterGroup <-> AWS::RDS::DBParameterGroup.
PARAMETER = Struct(
    aws.rds.ParameterGroupParameterArgs,
    props={"name": "Name", "value": "Value"},
    pulumi_only={"applyMethod": "CloudFormation applies each parameter with the method its context allows"},
)


def _parameters(value, path):
    items = ListOf(PARAMETER)(value, path)
    return {p["Name"]: p["Value"] for p in items} if isinstance(items, list) else items


# Its items become one JSON map (name -> value), so only the pulumi side is checked.
_parameters.struct = PARAMETER
_parameters.cfn_shape = "map"

RDS_PARAMETER_GROUP = TypeMap(
    "aws:rds/parameterGroup:ParameterGroup",
    "AWS::RDS::DBParameterGroup",
    aws.rds.ParameterGroupArgs,
    props={
        "name": "DBParameterGroupName",
        "namePrefix": Prop("DBParameterGroupName", prefix=True),
        "family": "Family",
        "description": "Description",
        "parameters": Prop("Parameters", _parameters),
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION, "skipDestroy": "the provider leaves the group on destroy; no AWS field"},
    refs={"id": REF, "name": REF, "arn": "DBParameterGroupArn"},
)

# CreateDBSubnetGroup <-> AWS::RDS::DBSubnetGroup.
RDS_SUBNET_GROUP = TypeMap(
    "aws:rds/subnetGroup:SubnetGroup",
    "AWS::RDS::DBSubnetGroup",
    aws.rds.SubnetGroupArgs,
    props={
        "name": "DBSubnetGroupName",
        "namePrefix": Prop("DBSubnetGroupName", prefix=True),
        "description": "DBSubnetGroupDescription",
        "subnetIds": "SubnetIds",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    refs={"id": REF, "name": REF},
)

# CreateDBProxy <-> AWS::RDS::DBProxy (`proxy: true`, components/prod/proxy.py).
RDS_PROXY = TypeMap(
    "aws:rds/proxy:Proxy",
    "AWS::RDS::DBProxy",
    aws.rds.ProxyArgs,
    props={
        "name": "DBProxyName",
        "engineFamily": "EngineFamily",
        "roleArn": "RoleArn",
        "vpcSubnetIds": "VpcSubnetIds",
        "vpcSecurityGroupIds": "VpcSecurityGroupIds",
        "requireTls": "RequireTLS",
        "debugLogging": "DebugLogging",
        "idleClientTimeout": "IdleClientTimeout",
        "defaultAuthScheme": "DefaultAuthScheme",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    refs={"id": REF, "name": REF, "arn": "DBProxyArn", "endpoint": "Endpoint"},
)

# ModifyDBProxyTargetGroup (the proxy's `default` group) <-> AWS::RDS::DBProxyTargetGroup, whose
# TargetGroupName may only be `default` (CloudFormation resource reference).
RDS_PROXY_TARGET_GROUP = TypeMap(
    "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup",
    "AWS::RDS::DBProxyTargetGroup",
    aws.rds.ProxyDefaultTargetGroupArgs,
    props={
        "dbProxyName": "DBProxyName",
        "connectionPoolConfig": Prop("ConnectionPoolConfigurationInfo", Struct(
            aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs, props={
                "maxConnectionsPercent": "MaxConnectionsPercent",
                "maxIdleConnectionsPercent": "MaxIdleConnectionsPercent",
                "connectionBorrowTimeout": "ConnectionBorrowTimeout",
                "initQuery": "InitQuery",
                "sessionPinningFilters": "SessionPinningFilters",
            })),
    },
    pulumi_only={"region": REGION},
    refs={"id": REF, "name": REF},
    fixed_properties={"TargetGroupName": "default"},
)

# RegisterDBProxyTargets <-> `DBInstanceIdentifiers` of the AWS::RDS::DBProxyTargetGroup it names.
RDS_PROXY_TARGET = TypeMap(
    "aws:rds/proxyTarget:ProxyTarget",
    None,
    aws.rds.ProxyTargetArgs,
    props={"dbInstanceIdentifier": Prop("DBInstanceIdentifiers", lambda value, path: [value])},
    pulumi_only={
        "region": REGION,
        # RegisterDBProxyTargets takes DBProxyName and TargetGroupName; in CloudFormation both are the
        # target group's own properties (DBProxyName, TargetGroupName), which the target folds into.
        "dbProxyName": "the proxy the target group it folds into already names (its DBProxyName)",
    },
    fold=Fold(via="targetGroupName", target_types=("aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup",)),
)

# --- EC2 / VPC ---------------------------------------------------------------------------

# CreateSecurityGroup <-> AWS::EC2::SecurityGroup.
SECURITY_GROUP = TypeMap(
    "aws:ec2/securityGroup:SecurityGroup",
    "AWS::EC2::SecurityGroup",
    aws.ec2.SecurityGroupArgs,
    props={
        "description": "GroupDescription",
        "name": "GroupName",
        "namePrefix": Prop("GroupName", prefix=True),
        "vpcId": "VpcId",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION,
                 "revokeRulesOnDelete": "the provider revokes the group's rules before DeleteSecurityGroup"},
    refs={"id": "GroupId"},
)

# AuthorizeSecurityGroupIngress (one rule) <-> AWS::EC2::SecurityGroupIngress.
SG_INGRESS = TypeMap(
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "AWS::EC2::SecurityGroupIngress",
    aws.vpc.SecurityGroupIngressRuleArgs,
    props={
        "securityGroupId": "GroupId",
        "referencedSecurityGroupId": "SourceSecurityGroupId",
        "cidrIpv4": "CidrIp",
        "cidrIpv6": "CidrIpv6",
        "prefixListId": "SourcePrefixListId",
        "ipProtocol": "IpProtocol",
        "fromPort": "FromPort",
        "toPort": "ToPort",
        "description": "Description",
    },
    pulumi_only={"region": REGION},
    no_cfn_property={"tags": TAGS_NOT_IN_CFN},
    refs={"id": REF},
)

# AuthorizeSecurityGroupEgress (one rule) <-> AWS::EC2::SecurityGroupEgress.
SG_EGRESS = TypeMap(
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "AWS::EC2::SecurityGroupEgress",
    aws.vpc.SecurityGroupEgressRuleArgs,
    props={
        "securityGroupId": "GroupId",
        "referencedSecurityGroupId": "DestinationSecurityGroupId",
        "cidrIpv4": "CidrIp",
        "cidrIpv6": "CidrIpv6",
        "prefixListId": "DestinationPrefixListId",
        "ipProtocol": "IpProtocol",
        "fromPort": "FromPort",
        "toPort": "ToPort",
        "description": "Description",
    },
    pulumi_only={"region": REGION},
    no_cfn_property={"tags": TAGS_NOT_IN_CFN},
    refs={"id": REF},
)

# CreateVpc + ModifyVpcAttribute <-> AWS::EC2::VPC.
VPC = TypeMap(
    "aws:ec2/vpc:Vpc",
    "AWS::EC2::VPC",
    aws.ec2.VpcArgs,
    props={
        "cidrBlock": "CidrBlock",
        "enableDnsHostnames": "EnableDnsHostnames",
        "enableDnsSupport": "EnableDnsSupport",
        "instanceTenancy": "InstanceTenancy",
        "ipv4IpamPoolId": "Ipv4IpamPoolId",
        "ipv4NetmaskLength": "Ipv4NetmaskLength",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    refs={"id": REF},
)

# CreateSubnet + ModifySubnetAttribute <-> AWS::EC2::Subnet.
SUBNET = TypeMap(
    "aws:ec2/subnet:Subnet",
    "AWS::EC2::Subnet",
    aws.ec2.SubnetArgs,
    props={
        "assignIpv6AddressOnCreation": "AssignIpv6AddressOnCreation",
        "availabilityZone": "AvailabilityZone",
        "availabilityZoneId": "AvailabilityZoneId",
        "cidrBlock": "CidrBlock",
        "enableDns64": "EnableDns64",
        "enableLniAtDeviceIndex": "EnableLniAtDeviceIndex",
        "enableResourceNameDnsARecordOnLaunch": "PrivateDnsNameOptionsOnLaunch.EnableResourceNameDnsARecord",
        "enableResourceNameDnsAaaaRecordOnLaunch": "PrivateDnsNameOptionsOnLaunch.EnableResourceNameDnsAAAARecord",
        "privateDnsHostnameTypeOnLaunch": "PrivateDnsNameOptionsOnLaunch.HostnameType",
        "ipv4IpamPoolId": "Ipv4IpamPoolId",
        "ipv4NetmaskLength": "Ipv4NetmaskLength",
        "ipv6CidrBlock": "Ipv6CidrBlock",
        "ipv6IpamPoolId": "Ipv6IpamPoolId",
        "ipv6Native": "Ipv6Native",
        "ipv6NetmaskLength": "Ipv6NetmaskLength",
        "mapPublicIpOnLaunch": "MapPublicIpOnLaunch",
        "outpostArn": "OutpostArn",
        "vpcId": "VpcId",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    refs={"id": REF},
)

# CreateVpcEndpoint <-> AWS::EC2::VPCEndpoint.
VPC_ENDPOINT = TypeMap(
    "aws:ec2/vpcEndpoint:VpcEndpoint",
    "AWS::EC2::VPCEndpoint",
    aws.ec2.VpcEndpointArgs,
    props={
        "serviceName": "ServiceName",
        "vpcId": "VpcId",
        "vpcEndpointType": "VpcEndpointType",
        "subnetIds": "SubnetIds",
        "securityGroupIds": "SecurityGroupIds",
        "routeTableIds": "RouteTableIds",
        "privateDnsEnabled": "PrivateDnsEnabled",
        "policy": Prop("PolicyDocument", json_document),
        "ipAddressType": "IpAddressType",
        "dnsOptions": Prop("DnsOptions", Struct(
            aws.ec2.VpcEndpointDnsOptionsArgs,
            props={"dnsRecordIpType": "DnsRecordIpType",
                   "privateDnsOnlyForInboundResolverEndpoint": "PrivateDnsOnlyForInboundResolverEndpoint",
                   "privateDnsPreference": "PrivateDnsPreference",
                   "privateDnsSpecifiedDomains": "PrivateDnsSpecifiedDomains"},
        )),
        "serviceRegion": "ServiceRegion",
        "resourceConfigurationArn": "ResourceConfigurationArn",
        "serviceNetworkArn": "ServiceNetworkArn",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION,
                 "autoAccept": "the provider accepts the connection on the service side (AcceptVpcEndpointConnections)"},
    refs={"id": REF},
)

# --- KMS ---------------------------------------------------------------------------------

# CreateKey (+ EnableKeyRotation, ScheduleKeyDeletion's PendingWindowInDays) <-> AWS::KMS::Key.
KMS_KEY = TypeMap(
    "aws:kms/key:Key",
    "AWS::KMS::Key",
    aws.kms.KeyArgs,
    props={
        "description": "Description",
        "enableKeyRotation": "EnableKeyRotation",
        "rotationPeriodInDays": "RotationPeriodInDays",
        "deletionWindowInDays": "PendingWindowInDays",
        "policy": Prop("KeyPolicy", json_document),
        "bypassPolicyLockoutSafetyCheck": "BypassPolicyLockoutSafetyCheck",
        "isEnabled": "Enabled",
        "keyUsage": "KeyUsage",
        "customerMasterKeySpec": "KeySpec",
        "multiRegion": "MultiRegion",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    refs={"id": REF, "keyId": REF, "arn": "Arn"},
)

# CreateAlias <-> AWS::KMS::Alias.
KMS_ALIAS = TypeMap(
    "aws:kms/alias:Alias",
    "AWS::KMS::Alias",
    aws.kms.AliasArgs,
    props={"name": "AliasName", "namePrefix": Prop("AliasName", prefix=True), "targetKeyId": "TargetKeyId"},
    pulumi_only={"region": REGION},
    refs={"id": REF, "name": REF},
)

# --- IAM ---------------------------------------------------------------------------------

INLINE_POLICY = Struct(aws.iam.RoleInlinePolicyArgs,
                       props={"name": "PolicyName", "policy": Prop("PolicyDocument", json_document)})

# CreateRole <-> AWS::IAM::Role.
IAM_ROLE = TypeMap(
    "aws:iam/role:Role",
    "AWS::IAM::Role",
    aws.iam.RoleArgs,
    props={
        "name": "RoleName",
        "namePrefix": Prop("RoleName", prefix=True),
        "assumeRolePolicy": Prop("AssumeRolePolicyDocument", json_document),
        "description": "Description",
        "maxSessionDuration": "MaxSessionDuration",
        "path": "Path",
        "permissionsBoundary": "PermissionsBoundary",
        "managedPolicyArns": "ManagedPolicyArns",
        "inlinePolicies": Prop("Policies", ListOf(INLINE_POLICY)),
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"forceDetachPolicies": "the provider detaches policies before DeleteRole"},
    refs={"id": REF, "name": REF, "arn": "Arn", "uniqueId": "RoleId"},
)

# CreatePolicy <-> AWS::IAM::ManagedPolicy.
IAM_POLICY = TypeMap(
    "aws:iam/policy:Policy",
    "AWS::IAM::ManagedPolicy",
    aws.iam.PolicyArgs,
    props={
        "name": "ManagedPolicyName",
        "namePrefix": Prop("ManagedPolicyName", prefix=True),
        "description": "Description",
        "path": "Path",
        "policy": Prop("PolicyDocument", json_document),
    },
    pulumi_only={"delayAfterPolicyCreationInMs": "the provider waits for IAM propagation; no AWS field"},
    no_cfn_property={"tags": "CreatePolicy takes Tags; AWS::IAM::ManagedPolicy has no Tags property"},
    refs={"id": REF, "arn": REF},
)

# PutRolePolicy <-> AWS::IAM::RolePolicy.
IAM_ROLE_POLICY = TypeMap(
    "aws:iam/rolePolicy:RolePolicy",
    "AWS::IAM::RolePolicy",
    aws.iam.RolePolicyArgs,
    props={
        "name": "PolicyName",
        "namePrefix": Prop("PolicyName", prefix=True),
        "policy": Prop("PolicyDocument", json_document),
        "role": "RoleName",
    },
)

# AttachRolePolicy <-> `ManagedPolicyArns` of the AWS::IAM::Role (CloudFormation has no attachment resource).
IAM_ROLE_POLICY_ATTACHMENT = TypeMap(
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    None,
    aws.iam.RolePolicyAttachmentArgs,
    props={"policyArn": Prop("ManagedPolicyArns", lambda v, p: [v])},
    fold=Fold(via="role", target_types=("aws:iam/role:Role",)),
)

# --- Secrets Manager ---------------------------------------------------------------------

# CreateSecret <-> AWS::SecretsManager::Secret.
SECRET = TypeMap(
    "aws:secretsmanager/secret:Secret",
    "AWS::SecretsManager::Secret",
    aws.secretsmanager.SecretArgs,
    props={
        "name": "Name",
        "namePrefix": Prop("Name", prefix=True),
        "description": "Description",
        "kmsKeyId": "KmsKeyId",
        "replicas": Prop("ReplicaRegions", ListOf(Struct(
            aws.secretsmanager.SecretReplicaArgs,
            props={"region": "Region", "kmsKeyId": "KmsKeyId"},
        ))),
        "type": "Type",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={
        "region": REGION,
        "recoveryWindowInDays": "DeleteSecret's RecoveryWindowInDays; CloudFormation deletes with its default window",
        "forceOverwriteReplicaSecret": "ReplicateSecretToRegions' ForceOverwriteReplicaSecret, only on replication",
    },
    # The provider applies an inline policy with PutResourcePolicy: a resource of its own in CloudFormation.
    companions={"policy": Companion("AWS::SecretsManager::ResourcePolicy", Prop("ResourcePolicy", json_document), "SecretId")},
    refs={"id": REF, "arn": REF},
)

# PutSecretValue <-> `SecretString` of the AWS::SecretsManager::Secret (no version resource in CloudFormation).
SECRET_VERSION = TypeMap(
    "aws:secretsmanager/secretVersion:SecretVersion",
    None,
    aws.secretsmanager.SecretVersionArgs,
    props={"secretString": "SecretString", "secretStringWo": "SecretString"},
    pulumi_only={
        "region": REGION,
        "secretStringWoVersion": "a provider counter that triggers a new version; not sent to AWS",
        "versionStages": "UpdateSecretVersionStage; CloudFormation always makes the value AWSCURRENT",
    },
    no_cfn_property={"secretBinary": "PutSecretValue's SecretBinary; AWS::SecretsManager::Secret takes only SecretString"},
    fold=Fold(via="secretId", target_types=("aws:secretsmanager/secret:Secret",)),
)

# PutResourcePolicy <-> AWS::SecretsManager::ResourcePolicy.
SECRET_POLICY = TypeMap(
    "aws:secretsmanager/secretPolicy:SecretPolicy",
    "AWS::SecretsManager::ResourcePolicy",
    aws.secretsmanager.SecretPolicyArgs,
    props={"secretArn": "SecretId", "policy": Prop("ResourcePolicy", json_document),
           "blockPublicPolicy": "BlockPublicPolicy"},
    pulumi_only={"region": REGION},
)

# --- CloudWatch Logs, Lambda -----------------------------------------------------------------

# CreateLogGroup + PutRetentionPolicy <-> AWS::Logs::LogGroup.
LOG_GROUP = TypeMap(
    "aws:cloudwatch/logGroup:LogGroup",
    "AWS::Logs::LogGroup",
    aws.cloudwatch.LogGroupArgs,
    props={
        "name": "LogGroupName",
        "namePrefix": Prop("LogGroupName", prefix=True),
        "retentionInDays": "RetentionInDays",
        "kmsKeyId": "KmsKeyId",
        "logGroupClass": "LogGroupClass",
        "deletionProtectionEnabled": "DeletionProtectionEnabled",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION, "skipDestroy": "the provider leaves the group on destroy; no AWS field"},
    refs={"id": REF, "name": REF, "arn": "Arn"},
)


def _code(value, path):
    # The plan shows the provider's archive, which it uploads as CreateFunction's Code.ZipFile.
    return {"ZipFile": "archive built by the program"} if value is not None else value


# CreateFunction <-> AWS::Lambda::Function.
LAMBDA_FUNCTION = TypeMap(
    "aws:lambda/function:Function",
    "AWS::Lambda::Function",
    aws.lambda_.FunctionArgs,
    props={
        "name": "FunctionName",
        "role": "Role",
        "runtime": "Runtime",
        "handler": "Handler",
        "code": Prop("Code", _code),
        "imageUri": "Code.ImageUri",
        "s3Bucket": "Code.S3Bucket",
        "s3Key": "Code.S3Key",
        "s3ObjectVersion": "Code.S3ObjectVersion",
        "sourceKmsKeyArn": "Code.SourceKMSKeyArn",
        "packageType": "PackageType",
        "description": "Description",
        "memorySize": "MemorySize",
        "timeout": "Timeout",
        "architectures": "Architectures",
        "layers": "Layers",
        "kmsKeyArn": "KmsKeyArn",
        "codeSigningConfigArn": "CodeSigningConfigArn",
        "reservedConcurrentExecutions": "ReservedConcurrentExecutions",
        "environment": Prop("Environment", Struct(aws.lambda_.FunctionEnvironmentArgs, props={"variables": "Variables"})),
        "vpcConfig": Prop("VpcConfig", Struct(
            aws.lambda_.FunctionVpcConfigArgs,
            props={"subnetIds": "SubnetIds", "securityGroupIds": "SecurityGroupIds",
                   "ipv6AllowedForDualStack": "Ipv6AllowedForDualStack"},
            pulumi_only={"vpcId": "computed by the provider from the subnets; not sent to AWS"},
        )),
        "tracingConfig": Prop("TracingConfig", Struct(aws.lambda_.FunctionTracingConfigArgs, props={"mode": "Mode"})),
        "loggingConfig": Prop("LoggingConfig", Struct(
            aws.lambda_.FunctionLoggingConfigArgs,
            props={"applicationLogLevel": "ApplicationLogLevel", "logFormat": "LogFormat",
                   "logGroup": "LogGroup", "systemLogLevel": "SystemLogLevel"},
        )),
        "ephemeralStorage": Prop("EphemeralStorage", Struct(aws.lambda_.FunctionEphemeralStorageArgs, props={"size": "Size"})),
        "deadLetterConfig": Prop("DeadLetterConfig", Struct(aws.lambda_.FunctionDeadLetterConfigArgs,
                                                            props={"targetArn": "TargetArn"})),
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={
        "region": REGION,
        "publish": "the provider calls PublishVersion after create/update",
        "sourceCodeHash": "the provider's change trigger for the archive; not sent to AWS",
        "codeSha256": "the provider's change trigger for the archive; not sent to AWS",
        "skipDestroy": "the provider leaves the function on destroy; no AWS field",
        "replaceSecurityGroupsOnDestroy": "the provider's clean-up of ENIs on destroy",
        "replacementSecurityGroupIds": "the provider's clean-up of ENIs on destroy",
        "useResourceTimeoutForPropagation": "the provider's retry window for IAM propagation",
    },
    refs={"id": REF, "name": REF, "arn": "Arn"},
)

# --- AWS Backup --------------------------------------------------------------------------

# CreateBackupVault <-> AWS::Backup::BackupVault.
BACKUP_VAULT = TypeMap(
    "aws:backup/vault:Vault",
    "AWS::Backup::BackupVault",
    aws.backup.VaultArgs,
    props={"name": "BackupVaultName", "kmsKeyArn": "EncryptionKeyArn", "tags": "BackupVaultTags"},
    pulumi_only={"region": REGION,
                 "forceDestroy": "the provider deletes the recovery points before DeleteBackupVault"},
    refs={"id": REF, "name": REF, "arn": "BackupVaultArn"},
)

# PutBackupVaultAccessPolicy <-> `AccessPolicy` of the AWS::Backup::BackupVault.
BACKUP_VAULT_POLICY = TypeMap(
    "aws:backup/vaultPolicy:VaultPolicy",
    None,
    aws.backup.VaultPolicyArgs,
    props={"policy": Prop("AccessPolicy", json_document)},
    pulumi_only={"region": REGION},
    fold=Fold(via="backupVaultName", target_types=("aws:backup/vault:Vault",)),
)

# PutBackupVaultLockConfiguration <-> `LockConfiguration` of the AWS::Backup::BackupVault.
BACKUP_VAULT_LOCK = TypeMap(
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
    None,
    aws.backup.VaultLockConfigurationArgs,
    props={
        "minRetentionDays": "LockConfiguration.MinRetentionDays",
        "maxRetentionDays": "LockConfiguration.MaxRetentionDays",
        "changeableForDays": "LockConfiguration.ChangeableForDays",
    },
    pulumi_only={"region": REGION},
    fold=Fold(via="backupVaultName", target_types=("aws:backup/vault:Vault",)),
)

LIFECYCLE = Struct(
    aws.backup.PlanRuleLifecycleArgs,
    props={"deleteAfter": "DeleteAfterDays", "coldStorageAfter": "MoveToColdStorageAfterDays",
           "optInToArchiveForSupportedResources": "OptInToArchiveForSupportedResources"},
)
PLAN_RULE = Struct(
    aws.backup.PlanRuleArgs,
    props={
        "ruleName": "RuleName",
        "targetVaultName": "TargetBackupVault",
        "schedule": "ScheduleExpression",
        "scheduleExpressionTimezone": "ScheduleExpressionTimezone",
        "startWindow": "StartWindowMinutes",
        "completionWindow": "CompletionWindowMinutes",
        "enableContinuousBackup": "EnableContinuousBackup",
        "lifecycle": Prop("Lifecycle", LIFECYCLE),
        "copyActions": Prop("CopyActions", ListOf(Struct(
            aws.backup.PlanRuleCopyActionArgs,
            props={"destinationVaultArn": "DestinationBackupVaultArn", "lifecycle": Prop("Lifecycle", LIFECYCLE)},
        ))),
        "recoveryPointTags": "RecoveryPointTags",
        "targetLogicallyAirGappedBackupVaultArn": "TargetLogicallyAirGappedBackupVaultArn",
    },
)

# CreateBackupPlan <-> AWS::Backup::BackupPlan.
BACKUP_PLAN = TypeMap(
    "aws:backup/plan:Plan",
    "AWS::Backup::BackupPlan",
    aws.backup.PlanArgs,
    props={
        "name": "BackupPlan.BackupPlanName",
        "rules": Prop("BackupPlan.BackupPlanRule", ListOf(PLAN_RULE)),
        "advancedBackupSettings": Prop("BackupPlan.AdvancedBackupSettings", ListOf(Struct(
            aws.backup.PlanAdvancedBackupSettingArgs,
            props={"backupOptions": "BackupOptions", "resourceType": "ResourceType"},
        ))),
        "tags": "BackupPlanTags",
    },
    pulumi_only={"region": REGION},
    refs={"id": "BackupPlanId", "arn": "BackupPlanArn"},
)

_CONDITION = Struct(aws.backup.SelectionConditionStringEqualArgs, props={"key": "ConditionKey", "value": "ConditionValue"})
_CONDITIONS = Struct(
    aws.backup.SelectionConditionArgs,
    props={"stringEquals": Prop("StringEquals", ListOf(_CONDITION)),
           "stringLikes": Prop("StringLike", ListOf(_CONDITION)),
           "stringNotEquals": Prop("StringNotEquals", ListOf(_CONDITION)),
           "stringNotLikes": Prop("StringNotLike", ListOf(_CONDITION))},
)


def _conditions(value, path):
    # Pulumi takes a list of condition blocks (ANDed); CloudFormation one object of lists.
    merged: dict = {}
    for block in ListOf(_CONDITIONS)(value, path) if isinstance(value, list) else [value]:
        for key, items in block.items():
            merged.setdefault(key, []).extend(items)
    return merged


_conditions.struct = _CONDITIONS
_conditions.cfn_shape = "object"

# CreateBackupSelection <-> AWS::Backup::BackupSelection.
BACKUP_SELECTION = TypeMap(
    "aws:backup/selection:Selection",
    "AWS::Backup::BackupSelection",
    aws.backup.SelectionArgs,
    props={
        "planId": "BackupPlanId",
        "name": "BackupSelection.SelectionName",
        "iamRoleArn": "BackupSelection.IamRoleArn",
        "resources": "BackupSelection.Resources",
        "notResources": "BackupSelection.NotResources",
        "conditions": Prop("BackupSelection.Conditions", _conditions),
        "selectionTags": Prop("BackupSelection.ListOfTags", ListOf(Struct(
            aws.backup.SelectionSelectionTagArgs,
            props={"type": "ConditionType", "key": "ConditionKey", "value": "ConditionValue"},
        ))),
    },
    pulumi_only={"region": REGION},
)

# CreateRestoreTestingPlan <-> AWS::Backup::RestoreTestingPlan.
RESTORE_TESTING_PLAN = TypeMap(
    "aws:backup/restoreTestingPlan:RestoreTestingPlan",
    "AWS::Backup::RestoreTestingPlan",
    aws.backup.RestoreTestingPlanArgs,
    props={
        "name": "RestoreTestingPlanName",
        "scheduleExpression": "ScheduleExpression",
        "scheduleExpressionTimezone": "ScheduleExpressionTimezone",
        "startWindowHours": "StartWindowHours",
        "recoveryPointSelection": Prop("RecoveryPointSelection", Struct(
            aws.backup.RestoreTestingPlanRecoveryPointSelectionArgs,
            props={"algorithm": "Algorithm", "includeVaults": "IncludeVaults", "excludeVaults": "ExcludeVaults",
                   "recoveryPointTypes": "RecoveryPointTypes", "selectionWindowDays": "SelectionWindowDays"},
        )),
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    refs={"id": REF, "name": REF, "arn": "RestoreTestingPlanArn"},
)

_KEY_VALUE = Struct(aws.backup.RestoreTestingSelectionProtectedResourceConditionsStringEqualArgs,
                    props={"key": "Key", "value": "Value"})

# CreateRestoreTestingSelection <-> AWS::Backup::RestoreTestingSelection.
RESTORE_TESTING_SELECTION = TypeMap(
    "aws:backup/restoreTestingSelection:RestoreTestingSelection",
    "AWS::Backup::RestoreTestingSelection",
    aws.backup.RestoreTestingSelectionArgs,
    props={
        "name": "RestoreTestingSelectionName",
        "restoreTestingPlanName": "RestoreTestingPlanName",
        "iamRoleArn": "IamRoleArn",
        "protectedResourceType": "ProtectedResourceType",
        "protectedResourceArns": "ProtectedResourceArns",
        "protectedResourceConditions": Prop("ProtectedResourceConditions", Struct(
            aws.backup.RestoreTestingSelectionProtectedResourceConditionsArgs,
            props={"stringEquals": Prop("StringEquals", ListOf(_KEY_VALUE)),
                   "stringNotEquals": Prop("StringNotEquals", ListOf(_KEY_VALUE))},
        )),
        "restoreMetadataOverrides": "RestoreMetadataOverrides",
        "validationWindowHours": "ValidationWindowHours",
    },
    pulumi_only={"region": REGION},
)

# CreateFlowLogs (EC2 API: ResourceIds, ResourceType, TrafficType, LogDestinationType,
# LogDestination, DeliverLogsPermissionArn) <-> AWS::EC2::FlowLog.
FLOW_LOG = TypeMap(
    "aws:ec2/flowLog:FlowLog",
    "AWS::EC2::FlowLog",
    aws.ec2.FlowLogArgs,
    props={
        "vpcId": "ResourceId",
        "trafficType": "TrafficType",
        "logDestinationType": "LogDestinationType",
        "logDestination": "LogDestination",
        "iamRoleArn": "DeliverLogsPermissionArn",
        "maxAggregationInterval": "MaxAggregationInterval",
        "logFormat": "LogFormat",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    fixed_properties={"ResourceType": "VPC"},
    refs={"id": REF},
)


# --- Alarms and events (issue 24: components/prod/alarms.py) -------------------------------------

# CreateTopic (Attributes: KmsMasterKeyId, DisplayName, ...) <-> AWS::SNS::Topic.
SNS_TOPIC = TypeMap(
    "aws:sns/topic:Topic",
    "AWS::SNS::Topic",
    aws.sns.TopicArgs,
    props={
        "name": "TopicName",
        "namePrefix": Prop("TopicName", prefix=True),
        "displayName": "DisplayName",
        "kmsMasterKeyId": "KmsMasterKeyId",
        "fifoTopic": "FifoTopic",
        "contentBasedDeduplication": "ContentBasedDeduplication",
        "signatureVersion": "SignatureVersion",
        "tracingConfig": "TracingConfig",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    # SetTopicAttributes Policy: AWS::SNS::TopicPolicy is a resource of its own; the program sets the
    # policy with aws.sns.TopicPolicy (SNS_TOPIC_POLICY), never inline.
    no_cfn_property={"policy": "the topic's policy is an AWS::SNS::TopicPolicy resource (aws.sns.TopicPolicy here)"},
    refs={"id": REF, "arn": REF, "name": "TopicName"},
)

# SetTopicAttributes (AttributeName=Policy) <-> AWS::SNS::TopicPolicy.
SNS_TOPIC_POLICY = TypeMap(
    "aws:sns/topicPolicy:TopicPolicy",
    "AWS::SNS::TopicPolicy",
    aws.sns.TopicPolicyArgs,
    props={"arn": Prop("Topics", lambda v, p: [v]), "policy": Prop("PolicyDocument", json_document)},
    pulumi_only={"region": REGION},
)

# Subscribe (TopicArn, Protocol, Endpoint, Attributes) <-> AWS::SNS::Subscription.
SNS_TOPIC_SUBSCRIPTION = TypeMap(
    "aws:sns/topicSubscription:TopicSubscription",
    "AWS::SNS::Subscription",
    aws.sns.TopicSubscriptionArgs,
    props={
        "topic": "TopicArn",
        "protocol": "Protocol",
        "endpoint": "Endpoint",
        "deliveryPolicy": Prop("DeliveryPolicy", json_document),
        "filterPolicy": Prop("FilterPolicy", json_document),
        "filterPolicyScope": "FilterPolicyScope",
        "rawMessageDelivery": "RawMessageDelivery",
        "redrivePolicy": Prop("RedrivePolicy", json_document),
        "subscriptionRoleArn": "SubscriptionRoleArn",
    },
    pulumi_only={
        "region": REGION,
        "confirmationTimeoutInMinutes": "how long the provider waits for an http(s) confirmation; not sent to AWS",
        "endpointAutoConfirms": "tells the provider the endpoint confirms by itself; not sent to AWS",
    },
    refs={"id": REF, "arn": REF},
)


def _dimensions(value, path):
    # Pulumi's dimension map as CloudFormation's list of {Name, Value}.
    if not isinstance(value, dict):
        return value
    return [{"Name": k, "Value": v} for k, v in sorted(value.items())]


# PutMetricAlarm <-> AWS::CloudWatch::Alarm.
METRIC_ALARM = TypeMap(
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "AWS::CloudWatch::Alarm",
    aws.cloudwatch.MetricAlarmArgs,
    props={
        "name": "AlarmName",
        "alarmDescription": "AlarmDescription",
        "namespace": "Namespace",
        "metricName": "MetricName",
        "dimensions": Prop("Dimensions", _dimensions),
        "statistic": "Statistic",
        "extendedStatistic": "ExtendedStatistic",
        "period": "Period",
        "evaluationPeriods": "EvaluationPeriods",
        "datapointsToAlarm": "DatapointsToAlarm",
        "comparisonOperator": "ComparisonOperator",
        "threshold": "Threshold",
        "thresholdMetricId": "ThresholdMetricId",
        "treatMissingData": "TreatMissingData",
        "evaluateLowSampleCountPercentiles": "EvaluateLowSampleCountPercentile",
        "unit": "Unit",
        "actionsEnabled": "ActionsEnabled",
        "alarmActions": "AlarmActions",
        "okActions": "OKActions",
        "insufficientDataActions": "InsufficientDataActions",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    refs={"id": REF, "name": REF, "arn": "Arn"},
)

# CreateEventSubscription <-> AWS::RDS::EventSubscription.
RDS_EVENT_SUBSCRIPTION = TypeMap(
    "aws:rds/eventSubscription:EventSubscription",
    "AWS::RDS::EventSubscription",
    aws.rds.EventSubscriptionArgs,
    props={
        "name": "SubscriptionName",
        "namePrefix": Prop("SubscriptionName", prefix=True),
        "snsTopic": "SnsTopicArn",
        "sourceType": "SourceType",
        "sourceIds": "SourceIds",
        "eventCategories": "EventCategories",
        "enabled": "Enabled",
        "tags": Prop("Tags", tags_list),
    },
    pulumi_only={"region": REGION},
    refs={"id": REF},
)


TYPE_MAPS: dict[str, TypeMap] = {
    tm.pulumi_type: tm
    for tm in (
        RDS_INSTANCE, RDS_PARAMETER_GROUP, RDS_SUBNET_GROUP, RDS_PROXY, RDS_PROXY_TARGET_GROUP, RDS_PROXY_TARGET,
        SECURITY_GROUP, SG_INGRESS, SG_EGRESS, VPC, SUBNET, VPC_ENDPOINT,
        KMS_KEY, KMS_ALIAS,
        IAM_ROLE, IAM_POLICY, IAM_ROLE_POLICY, IAM_ROLE_POLICY_ATTACHMENT,
        SECRET, SECRET_VERSION, SECRET_POLICY,
        LOG_GROUP, LAMBDA_FUNCTION, FLOW_LOG,
        BACKUP_VAULT, BACKUP_VAULT_POLICY, BACKUP_VAULT_LOCK, BACKUP_PLAN, BACKUP_SELECTION,
        RESTORE_TESTING_PLAN, RESTORE_TESTING_SELECTION,
        SNS_TOPIC, SNS_TOPIC_POLICY, SNS_TOPIC_SUBSCRIPTION, METRIC_ALARM, RDS_EVENT_SUBSCRIPTION,
    )
}


def sdk_inputs(args: type) -> set[str]:
    """The camelCase input names of a pulumi_aws `...Args` class (what the plan's `inputs` hold)."""
    return {v.fget._pulumi_name for v in vars(args).values() if isinstance(v, property)}


def coverage() -> dict[str, dict[str, int]]:
    """Per type: the SDK's inputs, how many map to a CloudFormation property, are Pulumi-only,
    have no CloudFormation property, or are not mapped (the translator refuses those)."""
    out = {}
    for typ, tm in sorted(TYPE_MAPS.items()):
        inputs = sdk_inputs(tm.args)
        mapped = inputs & (set(tm.props) | set(tm.companions))
        pulumi_only = inputs & set(tm.pulumi_only)
        no_cfn = inputs & set(tm.no_cfn_property)
        if tm.fold is not None:
            mapped |= inputs & {tm.fold.via}  # the reference that picks the resource it folds into
        out[typ] = {"inputs": len(inputs), "mapped": len(mapped), "pulumi_only": len(pulumi_only),
                    "no_cfn_property": len(no_cfn), "unmapped": len(inputs - mapped - pulumi_only - no_cfn)}
    return out
