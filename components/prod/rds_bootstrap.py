"""RdsBootstrap: the function that creates one database's service login role inside RDS.

One per database, never one per stack: a function that could reach every
instance with every master secret would be the one place where separation
breaks. Its security group reaches only this database (and HTTPS to Secrets
Manager), its IAM role reads only this database's master secret with only this
database's key, and it is invoked by the deployment (`aws.lambda_.Invocation`)
on create and whenever the role spec, the master password version or its code
changes. The SQL comes from `components/postgres/role_sql.py` via
`components/postgres/bootstrap_handler.py`, the same generator as the dev init.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

from components.postgres import bootstrap_handler
from components.catalogue.model import Database
from components.prod.lambda_archive import BuiltArchive, build_archive
from components.prod.naming import aws_name
from components.tags import TAG_ROLE, database_tags
from components.prod.vpc_endpoints import admit_https

# Lambda runtimes: python3.11 was deprecated on 2026-06-30; python3.13 is supported until
# 2029-06-30 (Lambda "Supported runtimes" table). The package is pure Python (pg8000).
LAMBDA_RUNTIME = "python3.13"
HANDLER = "components.postgres.bootstrap_handler.handler"
# The package of this repository the handler runs from, shipped whole: components/postgres
# imports nothing of Pulumi's and nothing outside itself. Everything else comes from DISTRIBUTIONS.
PACKAGED_PACKAGE = "components/postgres"
DISTRIBUTIONS = ("pg8000",)
# Lambda CreateFunction: FunctionName "is limited to 64 characters" when given as a name.
FUNCTION_NAME_MAX = 64
FUNCTION_SUFFIX = "-bootstrap"
# IAM CreateRole: RoleName <= 64; the provider's name_prefix appends a 26-character unique
# suffix, so a prefix holds at most 38 (as the monitoring role's).
ROLE_PREFIX_MAX = 38
# ENIs in the VPC and the function's own CloudWatch log stream (AWS managed policy).
VPC_ACCESS_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
HTTPS = 443
TIMEOUT_SECONDS = 300  # covers RDS applying a new master password asynchronously (ModifyDBInstance)
MEMORY_MB = 256


def function_name(instance_identifier: str) -> str:
    """`<instance identifier>-bootstrap`: identifiers are at most 54 characters, so <= 64."""
    name = f"{instance_identifier}{FUNCTION_SUFFIX}"
    if len(name) > FUNCTION_NAME_MAX:
        raise ValueError(f"bootstrap function name {name!r} exceeds Lambda's {FUNCTION_NAME_MAX} characters")
    return name


def repository_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bootstrap_archive(root: Optional[str] = None) -> BuiltArchive:
    """The function's package: the handler, the role SQL, pg8000 and its dependencies."""
    root = root or repository_root()
    files = {"components/__init__.py": b""}  # the parent package, without the Pulumi components
    package = os.path.join(root, PACKAGED_PACKAGE)
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name), "rb") as handle:
                files[f"{PACKAGED_PACKAGE}/{name}"] = handle.read()
    return build_archive(files, DISTRIBUTIONS)


@dataclass
class RdsBootstrapArgs:
    stack: str
    database: Database
    instance_identifier: str
    role: str
    connection_limit: int
    role_settings: dict
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    database_security_group_id: pulumi.Input[str]
    master_secret_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    archive_path: str
    archive_hash: str  # base64 SHA-256 of the package (Lambda's CodeSha256)
    # The group of the VPC's Secrets Manager endpoint; None until the network change gives one.
    https_egress_security_group_id: Optional[pulumi.Input[str]] = None
    # Without that group: where HTTPS may go instead (the VPC's own CIDR).
    interim_https_cidr: Optional[pulumi.Input[str]] = None
    port: int = 5432
    # What must exist before the first invocation (the instance, the secret's value).
    depends_on: Sequence[pulumi.Resource] = ()
    # The function's IAM role, created beforehand (create_bootstrap_role) when policies must name it.
    iam_role: Optional[aws.iam.Role] = None
    # The function's log group is created here first (Lambda would create it on first run, keep
    # it forever, unencrypted, and leave it behind on destroy): the tier's retention, the database's key.
    log_retention_days: Optional[int] = None
    # auth password: the login role's own secret, which the function reads to set the role's password.
    auth: str = "iam"
    login_secret_arn: Optional[pulumi.Input[str]] = None
    # The Secrets Manager endpoint's own URL when it has no private DNS (a given VPC); None: the
    # service's public name resolves to the endpoint (components/prod/vpc_endpoints.py).
    secrets_endpoint_url: Optional[pulumi.Input[str]] = None


def create_bootstrap_role(name: str, stack: str, tags: dict, opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The function's IAM role (Lambda may assume it); its permissions come with RdsBootstrap."""
    return aws.iam.Role(
        f"{name}-bootstrap",
        name_prefix=aws_name("bulkhead", stack, name, "boot", max_length=ROLE_PREFIX_MAX - 1) + "-",
        description=f"Bootstrap function of database {name}: reads only its master secret",
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        ),
        tags=tags,
        opts=opts,
    )


class RdsBootstrap(pulumi.ComponentResource):
    security_group_id: pulumi.Output
    function_arn: pulumi.Output
    result: pulumi.Output

    def __init__(self, name: str, args: RdsBootstrapArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:RdsBootstrap", name, None, opts)
        self._name = name
        self._args = args
        self._tags = {**database_tags(args.stack, {name: args.database}), TAG_ROLE: "bootstrap"}

        group = self._create_security_group()
        role = self._create_role()
        self.log_group = self._create_log_group()
        function = self._create_function(group, role)
        invocation = self._create_invocation(function)
        self.security_group_id = group.id
        self.function_arn = function.arn
        self.result = invocation.result
        self.register_outputs({"security_group_id": self.security_group_id, "function_arn": self.function_arn})

    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        a = self._args
        group = aws.ec2.SecurityGroup(
            f"{self._name}-bootstrap",
            name_prefix=aws_name("bulkhead", a.stack, self._name, "bootstrap") + "-",
            # EC2 GroupDescription allows a-zA-Z0-9, spaces and ._-:/()#,@[]+=&;{}!$* only (no apostrophe).
            description=f"Bootstrap function of database {self._name}: reaches only that database and HTTPS",
            vpc_id=a.vpc_id,
            revoke_rules_on_delete=True,
            tags={**self._tags, "Name": f"{self._name}-bootstrap"},
            opts=self._opts(),
        )
        # The database group admits its own bootstrap group, and this group sends only there.
        # The first invocation waits for these rules (`self._network_rules`).
        self._network_rules = []
        self._network_rules.append(aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-db-from-bootstrap",
            security_group_id=a.database_security_group_id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=a.port,
            to_port=a.port,
            description=f"PostgreSQL from the bootstrap function of {self._name}",
            tags=self._tags,
            opts=self._opts(),
        ))
        self._network_rules.append(aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-bootstrap-to-db",
            security_group_id=group.id,
            referenced_security_group_id=a.database_security_group_id,
            ip_protocol="tcp",
            from_port=a.port,
            to_port=a.port,
            description=f"Bootstrap of {self._name} to its database",
            tags=self._tags,
            opts=self._opts(),
        ))
        if a.https_egress_security_group_id is not None:
            # The stack's VPC endpoint group (components/prod/vpc_endpoints.py); its side of the rule
            # is made here too, so the first invocation waits for both.
            target = {"referenced_security_group_id": a.https_egress_security_group_id}
            description = "HTTPS to the Secrets Manager endpoint only"
            self._network_rules.append(admit_https(
                f"{self._name}-bootstrap-https", group.id, a.https_egress_security_group_id,
                f"the bootstrap function of {self._name}", self._tags, self, egress=False))
        else:
            # With bulkhead:network (no endpoint group of ours): HTTPS to the VPC's own address
            # range, where its Secrets Manager endpoint's ENIs live (secretsmanager_endpoint_exists).
            target = {"cidr_ipv4": a.interim_https_cidr}
            description = "HTTPS inside the VPC (Secrets Manager endpoint)"
        self._network_rules.append(aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-bootstrap-https",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description=description,
            tags=self._tags,
            opts=self._opts(),
            **target,
        ))
        return group

    def _create_role(self) -> aws.iam.Role:
        a = self._args
        # Given when the database's key policy and secret policy must name the role: then it
        # exists before the key (KMS refuses a policy naming a principal that does not exist).
        role = a.iam_role if a.iam_role is not None else create_bootstrap_role(self._name, a.stack, self._tags, self._opts())
        self._vpc_access = aws.iam.RolePolicyAttachment(
            f"{self._name}-bootstrap-vpc-access",
            role=role.name,
            policy_arn=VPC_ACCESS_POLICY_ARN,
            opts=self._opts(),
        )
        self._secret_access = aws.iam.RolePolicy(
            f"{self._name}-bootstrap-secret",
            # Inline policy names are unique per role only (PutRolePolicy PolicyName: [\w+=,.@-]{1,128}).
            name="read-master-secret",
            role=role.id,
            policy=pulumi.Output.all(a.master_secret_arn, a.key_arn, a.login_secret_arn).apply(
                lambda v: json.dumps(bootstrap_role_policy(v[0], v[1], function_name(a.instance_identifier), v[2]))
            ),
            opts=self._opts(),
        )
        return role

    def _create_log_group(self) -> Optional[aws.cloudwatch.LogGroup]:
        a = self._args
        if a.log_retention_days is None:
            return None
        # A group of the stack's own, named by the function's logging_config: Lambda writes to
        # /aws/lambda/<function name> only when no log group is configured (Lambda developer guide,
        # "Configuring CloudWatch log groups"), and on stacks deployed before this group existed Lambda
        # has already created that one, so a stack-created /aws/lambda/... group would fail with
        # ResourceAlreadyExistsException. The old group is left as it was (docs/upgrading.md). The
        # execution role may write to any group (AWSLambdaVPCAccessExecutionRole: logs:CreateLogStream,
        # logs:PutLogEvents on *). The database key's policy admits CloudWatch Logs for this group.
        return aws.cloudwatch.LogGroup(
            f"{self._name}-bootstrap-logs",
            name=function_log_group(a.instance_identifier),
            retention_in_days=a.log_retention_days,
            kms_key_id=a.key_arn,
            tags=self._tags,
            opts=self._opts(),
        )

    def _environment(self) -> dict:
        """Everything the handler does (it ignores the invocation's event)."""
        a = self._args
        return bootstrap_handler.function_environment(
            database=self._name, db_name=a.database.db_name, role=a.role, connection_limit=a.connection_limit,
            settings=a.role_settings, master_secret_arn=a.master_secret_arn, auth=a.auth,
            login_secret_arn=a.login_secret_arn, secrets_endpoint_url=a.secrets_endpoint_url)

    def _create_function(self, group: aws.ec2.SecurityGroup, role: aws.iam.Role) -> aws.lambda_.Function:
        a = self._args
        depends = [self._vpc_access, self._secret_access] + ([self.log_group] if self.log_group is not None else [])
        return aws.lambda_.Function(
            f"{self._name}-bootstrap",
            name=function_name(a.instance_identifier),
            description=f"bulkhead {a.stack}/{self._name}: creates the login role of {a.database.owner}",
            runtime=LAMBDA_RUNTIME,
            handler=HANDLER,
            code=pulumi.FileArchive(a.archive_path),
            # base64 SHA-256 of the package, as Lambda reports CodeSha256: a new hash, a new upload.
            source_code_hash=a.archive_hash,
            role=role.arn,
            timeout=TIMEOUT_SECONDS,
            memory_size=MEMORY_MB,
            vpc_config={"subnet_ids": a.subnet_ids, "security_group_ids": [group.id]},
            # The handler's whole input: the event is ignored (bootstrap_handler.handler).
            environment={"variables": self._environment()},
            # LoggingConfig: LogFormat is required with it (Lambda API FunctionCreate/UpdateFunctionConfiguration;
            # terraform-provider-aws lambda/function.go logging_config, an in-place update).
            logging_config=({"log_format": "Text", "log_group": self.log_group.name}
                            if self.log_group is not None else None),
            tags=self._tags,
            # ENIs need the VPC policy at create time; the secret policy at the first invocation;
            # the log group must exist before Lambda creates its own.
            opts=self._opts(depends_on=depends),
        )

    def _create_invocation(self, function: aws.lambda_.Function) -> aws.lambda_.Invocation:
        a = self._args
        spec = bootstrap_handler.RoleRequest(
            database=self._name,
            db_name=a.database.db_name,
            role=a.role,
            connection_limit=a.connection_limit,
            master_password_version=a.database.master_password_version,
            settings=dict(a.role_settings),
            auth=a.auth,
        )
        return aws.lambda_.Invocation(
            f"{self._name}-bootstrap-run",
            function_name=function.name,
            # CREATE_ONLY (the default): a change of `input` or `triggers` replaces the invocation,
            # i.e. runs the function again (terraform-provider-aws lambda/invocation.go ForceNew).
            # The handler ignores the input: it only makes a new spec or password version re-run it.
            input=json.dumps(invocation_input(spec, a.database), sort_keys=True),
            triggers={"code": a.archive_hash},
            opts=self._opts(depends_on=[function, *self._network_rules, *a.depends_on]),
        )


def function_log_group(instance_identifier: str) -> str:
    return f"/bulkhead/lambda/{function_name(instance_identifier)}"


def invocation_input(spec: "bootstrap_handler.RoleRequest", database: Database) -> dict:
    """What re-runs the function when it changes; the handler reads none of it."""
    digest = hashlib.sha256(json.dumps(spec.to_event(), sort_keys=True).encode()).hexdigest()
    return {"ignored_by_the_handler": True, "spec_sha256": digest,
            "master_password_version": database.master_password_version,
            "login_password_version": getattr(database, "password_version", 1)}


def bootstrap_role_policy(secret_arn: str, key_arn: str, fname: str, login_secret_arn: Optional[str] = None) -> dict:
    """The bootstrap role reads its master secret (and, with auth password, the login secret)
    only from inside its own function: `lambda:SourceFunctionArn` is what Lambda puts in the
    credentials' context for calls from the execution environment ("Using source function ARN
    to control function access behavior", Lambda developer guide); another function given this
    role (CreateFunction with iam:PassRole) or the role's credentials used elsewhere do not
    carry it. AWS: "You cannot use the lambda:SourceFunctionArn condition key in resource-based
    policies", so it lives here and not in the secret's policy."""
    partition, region, account = secret_arn.split(":")[1], secret_arn.split(":")[3], secret_arn.split(":")[4]
    function_arn = f"arn:{partition}:lambda:{region}:{account}:function:{fname}"
    secrets = [secret_arn] + ([login_secret_arn] if login_secret_arn else [])
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadThisMasterSecretFromThisFunctionOnly", "Effect": "Allow",
             "Action": "secretsmanager:GetSecretValue", "Resource": secrets if len(secrets) > 1 else secrets[0],
             "Condition": {"ArnEquals": {"lambda:SourceFunctionArn": function_arn}}},
            {"Sid": "DecryptWithThisDatabaseKey", "Effect": "Allow",
             "Action": "kms:Decrypt", "Resource": key_arn},
        ],
    }
