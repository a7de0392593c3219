"""Resource type tokens and `bulkhead:` tag keys: the one definition, for the pack, the program, the CLI
and the tests.

It lives in the policy pack because the pack is published on its own (`pulumi policy publish
policies`) and may import only itself and pulumi_policy; everything else can reach into the pack, not
the other way round. It is a top-level module of the pack directory, not part of the
`bulkhead_policies` package, so that importing it loads nothing else (no pulumi_policy, no rules:
`env`, `dsn` and `audit` must stay light). Inside the pack: `from bulkhead_types import ...` (the pack
directory is on sys.path, policies/__main__.py and `check`'s load_pack put it there); outside, from
the repository root: `from policies.bulkhead_types import ...`. Never call it `types.py`: the pack
directory is first on sys.path and would shadow the standard library's `types`.

Imports nothing. Type tokens are Pulumi's (`<package>:<module>/<resource>:<Resource>`), part of
every URN: renaming one replaces resources (docs/contract.md).
"""

# --- Pulumi ------------------------------------------------------------------------------------
STACK = "pulumi:pulumi:Stack"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
PROVIDER_PREFIX = "pulumi:providers:"  # + package name: the type of a provider resource

# --- AWS (pulumi-aws) --------------------------------------------------------------------------
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
RDS_SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LEGACY_SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
KMS_KEY = "aws:kms/key:Key"
KMS_ALIAS = "aws:kms/alias:Alias"
IAM_ROLE = "aws:iam/role:Role"
IAM_POLICY = "aws:iam/policy:Policy"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY_TYPES = (
    IAM_POLICY,
    IAM_ROLE_POLICY,
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_SELECTION = "aws:backup/selection:Selection"
BACKUP_VAULT = "aws:backup/vault:Vault"
BACKUP_VAULT_POLICY = "aws:backup/vaultPolicy:VaultPolicy"
BACKUP_VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
RESTORE_TESTING_PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
RESTORE_TESTING_SELECTION = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
# Alarms and events (issue 24, components/prod/alarms.py).
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SNS_TOPIC = "aws:sns/topic:Topic"
SNS_TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SNS_TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
RDS_EVENT_SUBSCRIPTION = "aws:rds/eventSubscription:EventSubscription"
RDS_SNAPSHOT_COPY = "aws:rds/snapshotCopy:SnapshotCopy"  # restore_from: snapshot
LAMBDA_FUNCTION = "aws:lambda/function:Function"
LAMBDA_INVOCATION = "aws:lambda/invocation:Invocation"

# --- Docker (pulumi-docker) and random (pulumi-random) -----------------------------------------
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
RANDOM_ID = "random:index/randomId:RandomId"
RANDOM_STRING = "random:index/randomString:RandomString"

# --- tags (AWS) and labels (Docker) that tie a resource to its database (docs/contract.md) ------
TAG_DATABASE = "bulkhead:database"
TAG_OWNER = "bulkhead:owner"
TAG_STACK = "bulkhead:stack"
TAG_TIER = "bulkhead:tier"
# Extension: what a resource is for a database (primary, replica, key, database, client, ...).
TAG_ROLE = "bulkhead:role"

# --- the server admin ---------------------------------------------------------------------------
# The admin (RDS master, dev container superuser) of every server bulkhead creates: not `postgres` or
# `admin`, so a password guess must also guess the user. The pack's admin-username rule names it.
ADMIN_USER = "bulkhead_admin"

# Every Secrets Manager action that writes or configures an existing secret (botocore's secretsmanager
# service model; tests/program/test_prod_baseline.py (test_every_secrets_manager_action_is_denied_or_justified) fails on an action that is neither here
# nor justified in components/prod/key_policies.py). The program denies them on each master and login
# secret to all but deployers and break-glass; the pack's secret-writes-denied rule checks that it does.
SECRET_WRITE_ACTIONS = (
    "secretsmanager:AssociateCrossAccountReplica",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:DeleteSecret",
    "secretsmanager:DisassociateCrossAccountReplica",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:PutSecretValue",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RestoreSecret",
    "secretsmanager:RotateSecret",
    "secretsmanager:StopReplicationToReplica",
    "secretsmanager:TagResource",
    "secretsmanager:UntagResource",
    "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
)
