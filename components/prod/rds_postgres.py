"""RdsPostgres: one service's database on its own RDS PostgreSQL instance.

Everything that could let another service in, or lose the data, is decided here
once: own KMS key, own security group that admits only the owner's client group
(and the database's own bootstrap function), SSL forced by the parameter group,
deletion protection, a final snapshot with a unique name, Pulumi protect.

Credentials: bulkhead generates the master password and keeps it in this
database's own Secrets Manager secret (break-glass only: no service is granted
it). The service logs in as its own role, created inside the database by the
bootstrap function (RdsBootstrap), with IAM tokens: its access policy grants
exactly `rds-db:connect` for that role on the primary and each replica.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.prod import key_policies
from components.prod.alarms import alarm_guard_statement
from components.catalogue import settings as pg_settings
from components.postgres import role_sql
from components.catalogue.model import Database, Tier
from components.prod.context import AwsContext
from components.prod.naming import aws_name, replica_identifier
from components.prod.proxy import RdsProxy, RdsProxyArgs, proxy_resource_id
from components.prod.windows import LEGACY_BACKUP_WINDOW, LEGACY_MAINTENANCE_WINDOW, Windows
from components.prod.rds_bootstrap import RdsBootstrap, RdsBootstrapArgs, create_bootstrap_role, function_log_group
from components.tags import TAG_ROLE, database_tags
from policies.bulkhead_types import ADMIN_USER  # defined once, where the pack's admin-username rule reads it

PORT = 5432
# The current RDS CA; certificates of rds-ca-2019 expired in 2024.
CA_CERT_IDENTIFIER = "rds-ca-rsa2048-g1"
MONITORING_INTERVAL = 60
PERFORMANCE_INSIGHTS_RETENTION = 7  # days; the free tier
LOG_EXPORTS = ["postgresql", "upgrade"]
# Off-peak and non-overlapping: backups first, maintenance a day later. Every database had these until
# issue 24; now `bulkhead:window_derivation: 0` keeps them (components/prod/windows.py derives the rest).
BACKUP_WINDOW = LEGACY_BACKUP_WINDOW
MAINTENANCE_WINDOW = LEGACY_MAINTENANCE_WINDOW
KMS_DELETION_WINDOW = 30  # days: the longest, so a mistaken key deletion can be cancelled
# CreateDBInstance MasterUserPassword (PostgreSQL): 8-128 printable ASCII, not / " @ or space.
# Letters and digits only: no character needs quoting in a URL, a shell or a .pgpass.
MASTER_PASSWORD_LENGTH = 40
SECRET_RECOVERY_DAYS = 30  # the longest: a deleted master secret can be restored for a month
# Where a service finds the RDS CA bundle (sslrootcert in every aws URL): services put
# https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem there (docs/prod-stack.md, "Credentials").
RDS_CA_BUNDLE_PATH = "/etc/ssl/certs/rds-global-bundle.pem"
# Logging that lets an operator see who connected and what was slow.
BASE_PARAMETERS = {
    "rds.force_ssl": "1",
    # The master password stored as SCRAM on every major (RDS's default from 14 on; md5 on 13):
    # the bootstrap function logs in by SCRAM with channel binding only (bootstrap_handler).
    "password_encryption": "scram-sha-256",
    "log_connections": "1",
    "log_disconnections": "1",
    "log_min_duration_statement": "1000",
    "log_lock_waits": "1",
}


def parameter_apply_method(major: int, name: str) -> str:
    """`immediate` where PostgreSQL changes the setting without a restart, `pending-reboot` for
    postmaster settings (pg_settings.context, components/pg_settings). RDS does not reboot for
    parameter changes by itself, not even in the maintenance window, so a dynamic setting left
    pending-reboot would never take effect; RDS refuses `immediate` for a static one
    (aws_db_parameter_group `apply_method`; RDS "Modifying parameters in a DB parameter group")."""
    try:
        return pg_settings.apply_method(major, name)
    except pg_settings.UnknownSetting:
        return "pending-reboot"  # accepted for any setting; the catalogue refuses unknown names


# RDS's engine default of a managed parameter where it depends on the family (RDS User Guide:
# "Requiring an SSL connection to a PostgreSQL DB instance": rds.force_ssl defaults to 1 from
# RDS for PostgreSQL 15 on; "Using SCRAM for PostgreSQL password encryption": password_encryption
# defaults to scram-sha-256 from 14 on). Every other managed parameter differs from its default
# (PostgreSQL's: log_connections/log_disconnections/log_lock_waits off, log_min_duration_statement -1).
RDS_FAMILY_DEFAULTS = {
    "rds.force_ssl": lambda major: "1" if major >= 15 else "0",
    "password_encryption": lambda major: "scram-sha-256" if major >= 14 else "md5",
}


def settled_apply_method(major: int, name: str, value: str) -> str:
    """The apply method the parameter group reads back, so that it settles.

    terraform-provider-aws internal/service/rds/parameter_group.go: `parameterHash` hashes name,
    apply_method and value, and the read keeps a parameter whose Source is not `user` (a value
    equal to the engine default) with the ApplyMethod DescribeDBParameters reports for it, which is
    `pending-reboot` (reported for rds.force_ssl=1 on postgres16, terraform-provider-aws #39252, and
    for default-valued parameters on postgres12, #18035). Sent `immediate`, such a parameter showed a
    diff on every `up` and was re-sent. A value equal to the default is already in effect, so
    `pending-reboot` changes nothing and needs no reboot; every other value keeps the method its
    context needs (parameter_apply_method)."""
    default = RDS_FAMILY_DEFAULTS.get(name)
    if default is not None and default(major) == value:
        return "pending-reboot"
    return parameter_apply_method(major, name)


def temp_file_limit_parameter(db: Database) -> dict[str, str]:
    """temp_file_limit for the parameter group: superuser-only per role, so on RDS the instance's
    parameter group carries it (the instance is this service's alone); in RDS's form (kB, no unit)."""
    from components.catalogue.parameters import check_parameters

    value = db.role_settings().get("temp_file_limit")
    if value is None:
        return {}
    checked = check_parameters({"temp_file_limit": value}, db.major, "aws", "temp_file_limit")
    return dict(checked.values)


def rds_role_settings(db: Database) -> dict[str, str]:
    """The login role's settings the RDS master may set: temp_file_limit is superuser-only
    (role_sql.SUPERUSER_ONLY_SETTINGS) and belongs in the parameter group on RDS."""
    return {k: v for k, v in db.role_settings().items() if k not in role_sql.SUPERUSER_ONLY_SETTINGS}


def instance_identifier(stack: str, name: str) -> str:
    """Stable: derived from stack and catalogue name only, so it never changes by itself."""
    return aws_name(stack, name, max_length=54)  # room for `-replica-N`


@dataclass
class RdsPostgresArgs:
    context: AwsContext
    database: Database
    tier: Tier
    client_security_group_id: pulumi.Input[str]
    # `bulkhead:owner_principals` of the owner: the only service principals that may read an
    # `auth: password` login secret (components/catalogue/owner_principals.py).
    owner_principals: Sequence[str] = ()
    # The database's backup and maintenance windows (components/prod/windows.py derive); None: the legacy constants.
    windows: Optional[Windows] = None


class RdsPostgres(pulumi.ComponentResource):
    """Outputs `connection`: the database's connection info (docs/contract.md section 5, aws)."""

    connection: dict

    def __init__(self, name: str, args: RdsPostgresArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("bulkhead:index:RdsPostgres", name, None, opts)
        self._name = name
        self._args = args
        self._db = args.database
        self._tags = database_tags(args.context.stack, {name: args.database})
        self._identifier = instance_identifier(args.context.stack, name)
        # Plain identifiers (known before anything exists): alarms and the event subscription name them.
        self.identifier = self._identifier
        self.replica_identifiers = [self._replica_identifier(i) for i in range(args.database.replicas)]

        # The service's login role inside the database: named after it, as in dev.
        self.role = self._db.db_name
        # Before the key: its policy names the role, and KMS refuses a policy naming a principal that
        # does not exist (MalformedPolicyDocumentException "invalid principals", AWS knowledge center).
        self.bootstrap_role = create_bootstrap_role(self._name, args.context.stack, self._tagged("bootstrap"), self._opts())
        self.key = self._create_key()
        self.security_group = self._create_security_group()
        self.parameter_group = self._create_parameter_group()
        self.log_groups = {ident: self._create_log_groups(ident) for ident in self._instance_identifiers()}
        self.master_password = self._create_master_password()
        self.primary = self._create_primary()
        self.replicas = [self._create_replica(i) for i in range(self._db.replicas)]
        self.master_secret, secret_value = self._create_master_secret()
        self.login_secret, login_value = self._create_login_secret() if self._db.auth == "password" else (None, None)
        self.bootstrap = self._create_bootstrap(secret_value, login_value)
        # `proxy: true` (components/prod/proxy.py): before the access policy, which names it.
        self.proxy = self._create_proxy() if self._db.proxy else None
        self.access_policy = self._create_access_policy()
        self.connection = self._connection()
        self.register_outputs({"connection": self.connection})

    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **kwargs)

    def _tagged(self, role: str) -> dict:
        return {**self._tags, TAG_ROLE: role}

    def _instance_identifiers(self) -> list[str]:
        return [self._identifier] + [self._replica_identifier(i) for i in range(self._db.replicas)]

    def _replica_identifier(self, index: int) -> str:
        return replica_identifier(self._identifier, index + 1)

    def _login_secret_name_prefix(self) -> str:
        return f"bulkhead/{aws_name(self._args.context.stack)}/{self._name}/login-"

    def _login_secret_decrypt_denies(self, partition: str, region: str, account: str, bootstrap_arn: str,
                                     deployers) -> list[dict]:
        """auth password: the key denies decrypting the login secret to the principals its secret
        policy denies reading it (key_policies.login_secret_policy), so a key grant or a direct
        Decrypt through Secrets Manager cannot route around the secret's policy."""
        if self._db.auth != "password" or not self._args.owner_principals:
            return []
        allowed = {*key_policies.deployer_principals(self._args.owner_principals), bootstrap_arn, *deployers,
                   *(list(self._args.context.break_glass_principals) or [key_policies.account_root(partition, account)])}
        return [key_policies.secret_decrypt_deny(
            "OnlyOwnerBootstrapDeployersAndBreakGlassDecryptTheLoginSecret",
            key_policies.login_secret_arn_pattern(partition, region, account, self._login_secret_name_prefix()),
            sorted(allowed))]

    def _key_policy(self) -> pulumi.Output:
        args = self._args

        def document(values) -> str:
            partition, region, account, bootstrap_arn, deployers = values
            return key_policies.dumps(key_policies.key_policy(
                partition=partition, region=region, account=account, admins=args.context.key_admins,
                services=key_policies.DATABASE_KEY_SERVICES,
                log_group_arns=key_policies.rds_log_group_arns(partition, region, account, self._instance_identifiers())
                + [f"arn:{partition}:logs:{region}:{account}:log-group:{function_log_group(self._identifier)}"],
                decrypt_roles=[bootstrap_arn],
                denies=self._login_secret_decrypt_denies(partition, region, account, bootstrap_arn, deployers),
            ))

        return pulumi.Output.all(args.context.partition, args.context.region, args.context.account, self.bootstrap_role.arn,
                                 args.context.deployer_principals).apply(document)

    def _create_key(self) -> aws.kms.Key:
        # Its own key: revoking or scheduling it touches this database's data only.
        key = aws.kms.Key(
            f"{self._name}-key",
            description=f"bulkhead {self._args.context.stack}/{self._name}: storage, master secret, logs and Performance Insights",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW,
            # An explicit policy instead of KMS's default (which lets any principal IAM allows kms:*
            # use every key of the account); aws_kms_key `policy`, KMS "Key policies" guide.
            policy=self._key_policy(),
            tags=self._tagged("key"),
            # Deleting the key makes every snapshot of the database unreadable.
            opts=self._opts(protect=self._args.context.protect),
        )
        aws.kms.Alias(
            f"{self._name}-key-alias",
            name=f"alias/bulkhead/{aws_name(self._args.context.stack)}/{self._name}",
            target_key_id=key.key_id,
            opts=self._opts(),
        )
        return key

    def _create_security_group(self) -> aws.ec2.SecurityGroup:
        group = aws.ec2.SecurityGroup(
            f"{self._name}-db",
            name_prefix=aws_name("bulkhead", self._args.context.stack, self._name, "db") + "-",
            # EC2 group descriptions allow only a-zA-Z0-9, space and ._-:/()#,@[]+=&;{}!$* (no apostrophe).
            description=f"Database {self._name}: admits only the client group of {self._db.owner}",
            vpc_id=self._args.context.network.vpc_id,
            revoke_rules_on_delete=True,
            tags={**self._tagged("database"), "Name": f"{self._name}-db"},
            opts=self._opts(),
        )
        # Separate rule resources (not inline blocks), so that a rule added by hand
        # elsewhere shows up as drift instead of being merged silently.
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-db-from-owner",
            security_group_id=group.id,
            referenced_security_group_id=self._args.client_security_group_id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description=f"PostgreSQL from {self._db.owner} only",
            tags=self._tagged("database"),
            opts=self._opts(),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-owner-to-db",
            security_group_id=self._args.client_security_group_id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description=f"{self._db.owner} to database {self._name}",
            tags=self._tagged("client"),
            opts=self._opts(),
        )
        return group

    def _create_log_groups(self, identifier: str) -> list[aws.cloudwatch.LogGroup]:
        """The groups RDS would create itself, with no retention and no key, for each exported log.

        RDS writes to /aws/rds/instance/<id>/<type> ("Publishing PostgreSQL logs to CloudWatch
        Logs", RDS user guide) and uses a group that exists; these must exist first (the
        instances depend on them). The `postgresql` log carries statement text, literals included.
        """
        groups = []
        for log_type in LOG_EXPORTS:
            groups.append(
                aws.cloudwatch.LogGroup(
                    f"{self._name}-log-{identifier.removeprefix(self._identifier).lstrip('-') or 'primary'}-{log_type}",
                    name=f"/aws/rds/instance/{identifier}/{log_type}",
                    retention_in_days=self._args.tier.log_retention_days,
                    # The database's own key; its policy lets CloudWatch Logs use it for these groups only.
                    kms_key_id=self.key.arn,
                    tags=self._tagged("logs"),
                    opts=self._opts(),
                )
            )
        return groups

    def _create_parameter_group(self) -> aws.rds.ParameterGroup:
        # temp_file_limit (a role setting elsewhere) goes here on RDS: it was accepted and dropped.
        parameters = {**BASE_PARAMETERS, **temp_file_limit_parameter(self._db), **self._db.parameters}
        return aws.rds.ParameterGroup(
            f"{self._name}-params",
            # A prefix, not a fixed name: a major upgrade creates the new family's
            # group before the old one is deleted.
            name_prefix=aws_name("bulkhead", self._args.context.stack, self._name, f"pg{self._db.major}", max_length=200) + "-",
            family=f"postgres{self._db.major}",
            description=f"bulkhead {self._args.context.stack}/{self._name}: SSL forced, connection logging",
            parameters=[{"name": k, "value": v, "apply_method": settled_apply_method(self._db.major, k, v)}
                        for k, v in sorted(parameters.items())],
            tags=self._tagged("parameters"),
            opts=self._opts(),
        )

    def _common_instance_args(self) -> dict:
        """Settings a replica must share with its primary."""
        return dict(
            storage_type="gp3",
            vpc_security_group_ids=[self.security_group.id],
            parameter_group_name=self.parameter_group.name,
            publicly_accessible=False,
            iam_database_authentication_enabled=True,
            ca_cert_identifier=CA_CERT_IDENTIFIER,
            monitoring_interval=MONITORING_INTERVAL,
            monitoring_role_arn=self._args.context.monitoring_role_arn,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=self.key.arn,
            performance_insights_retention_period=PERFORMANCE_INSIGHTS_RETENTION,
            enabled_cloudwatch_logs_exports=LOG_EXPORTS,
            # On unless the catalogue pins a minor ("16.4"): RDS would upgrade it and every
            # later `pulumi up` would try to go back down to the pinned minor.
            auto_minor_version_upgrade="." not in self._db.engine_version,
            # True only when the catalogue names the target major (allow_major_upgrade_to, equal to
            # engine_version's major: components/catalogue/major_upgrade.py). ModifyDBInstance refuses
            # a new major without it ("must be set to true when specifying a value for the EngineVersion
            # parameter that is a different major version", RDS API reference), and terraform-provider-aws
            # sends this argument with every engine_version change (rds/instance.go resourceInstanceUpdate),
            # so always-true let a typo in engine_version major-upgrade prod. The new family's parameter
            # group is a new resource (family is ForceNew, name_prefix), created before the instance is
            # modified and the old group deleted after (Pulumi's create-before-replace).
            allow_major_version_upgrade=self._major_upgrade_requested(),
            # Changes wait for the maintenance window instead of restarting mid-day; except during an
            # explicit major upgrade: with the window, ModifyDBInstance leaves the upgrade and the new
            # parameter group pending, the provider returns once the instance is "available" (rds/instance.go
            # dbInstanceModify), and deleting the old group in the same `up` fails while the instance still
            # uses it (InvalidDBParameterGroupState). Immediately, the upgrade runs while the `up` waits.
            # The provider sends ApplyImmediately with every modify (rds/instance.go: ApplyImmediately:
            # aws.Bool(d.Get("apply_immediately"))); terraform docs aws_db_instance `apply_immediately`.
            apply_immediately=self._major_upgrade_requested(),
            copy_tags_to_snapshot=True,
            port=PORT,
            max_allocated_storage=self._db.max_storage_gb,
        )

    def _major_upgrade_requested(self) -> bool:
        """The catalogue asked for an in-place major upgrade to the declared major (the catalogue
        refuses the key when it names another major or with replicas)."""
        target = getattr(self._db, "allow_major_upgrade_to", None)
        return target is not None and target == self._db.major

    def _create_master_password(self) -> random.RandomPassword:
        # A new `master_password_version` replaces the RandomPassword (keepers), so the next
        # `up` sets a new master password and re-runs the bootstrap with it.
        return random.RandomPassword(
            f"{self._name}-master-password",
            length=MASTER_PASSWORD_LENGTH,
            special=False,
            min_lower=4,
            min_upper=4,
            min_numeric=4,
            keepers={"master_password_version": str(self._db.master_password_version)},
            opts=self._opts(),
        )

    def _restore_args(self) -> dict:
        """`restore_from` (issue 24): the instance starts from a snapshot or a point in time.

        RDS's restore calls take no KmsKeyId (RestoreDBInstanceFromDBSnapshot and
        RestoreDBInstanceToPointInTime in the RDS API reference / botocore's rds service model; only
        CopyDBSnapshot has one: "specify a value for this parameter to encrypt the copy with a new KMS
        key"). So a snapshot is first copied under this database's own key and the instance restored
        from the copy: the instance then has this database's key, as every bulkhead database. A point
        in time restores under the source's key (the catalogue warns; docs/prod-stack.md "Restoring").
        terraform-provider-aws applies what the restore call lacks (password, parameter group, backup
        settings, ...) with ModifyDBInstance right after (internal/service/rds/instance.go, create)."""
        restore = self._db.restore_from
        if restore is None:
            return {}
        if restore.snapshot is not None:
            # The copy's name is new for every creation of the database (review of issue 24, o-fix): the copy is
            # retained when the database or its restore_from goes, so a fixed `<identifier>-restore-source` made
            # the next creation fail (CopyDBSnapshot: DBSnapshotAlreadyExists). The RandomId is created and
            # deleted with this database's resources, so a database created again gets another name. No keeper:
            # a later change of `restore_from` must change nothing (a new id would only show as a change).
            suffix = random.RandomId(f"{self._name}-restore-source-suffix", byte_length=4, opts=self._opts())
            # aws_db_snapshot_copy (CopyDBSnapshot): source_db_snapshot_identifier takes the ARN (shared or
            # other-account snapshots need it), kms_key_id re-encrypts. ForceNew in
            # terraform-provider-aws internal/service/rds/snapshot_copy.go: copy_tags, destination_region,
            # kms_key_id, option_group_name, presigned_url, source_db_snapshot_identifier,
            # target_custom_availability_zone, target_db_snapshot_identifier (only shared_accounts and tags
            # update in place). Read back from the snapshot (SourceDBSnapshotIdentifier, KmsKeyId,
            # DBSnapshotIdentifier), so a later `restore_from` change or a refresh could replace the copy:
            # a second copy of the data. Ignored: the copy is made once, at the database's creation.
            copy = aws.rds.SnapshotCopy(
                f"{self._name}-restore-source",
                source_db_snapshot_identifier=restore.snapshot,
                # DBSnapshotIdentifier: 1-255 letters, digits, hyphens, a letter first (CopyDBSnapshot).
                target_db_snapshot_identifier=suffix.hex.apply(lambda h: f"{self._identifier}-restore-{h}"),
                kms_key_id=self.key.arn,
                copy_tags=False,
                tags=self._tagged("restore-source"),
                # Kept when restore_from is removed later: it is the record of where the data came from,
                # and deleting a snapshot is for a person to decide.
                opts=self._opts(retain_on_delete=True, ignore_changes=list(SNAPSHOT_COPY_FORCE_NEW)),
            )
            return {"snapshot_identifier": copy.db_snapshot_arn}
        pit = restore.point_in_time
        return {"restore_to_point_in_time": {
            "source_db_instance_identifier": pit.source.rsplit(":", 1)[-1] if pit.source.startswith("arn:") else pit.source,
            **({"use_latest_restorable_time": True} if pit.time == "latest" else {"restore_time": pit.time}),
        }}

    def _create_primary(self) -> aws.rds.Instance:
        db = self._db
        # A new suffix per create: repeated destroy/create cycles never collide on the snapshot name.
        suffix = random.RandomId(f"{self._name}-final-snapshot-suffix", byte_length=4, opts=self._opts())
        restore = self._restore_args()
        # snapshot_identifier and restore_to_point_in_time are ForceNew (terraform-provider-aws
        # internal/service/rds/instance.go): read only at creation. Ignored afterwards on every primary, so
        # adding, changing or removing `restore_from` never replaces a database. A restored instance keeps
        # the source's master user name and databases (RestoreDBInstance*: no MasterUsername, DBName "doesn't
        # apply to ... PostgreSQL"), both ForceNew and read back by the provider, and a point-in-time restore
        # keeps the source's key (kms_key_id, ForceNew): ignored too, where they come from the source.
        # kmsKeyId on every primary, whatever restore_from says now: a point-in-time restore reads back the
        # source's key for good, so once `restore_from` was removed the state differed from this database's
        # key, a replacement (rev-ops review). RDS never changes an instance's key in place (only a new
        # instance from an encrypted copy), so ignoring it hides no update, only a replacement.
        ignore = ["snapshotIdentifier", "restoreToPointInTime", "kmsKeyId"]
        if db.restore_from is not None:
            ignore += ["username", "dbName"]
        return aws.rds.Instance(
            f"{self._name}-primary",
            identifier=self._identifier,
            engine="postgres",
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            engine_version=db.engine_version,
            instance_class=db.instance_class,
            allocated_storage=db.storage_gb,
            db_name=db.db_name,
            username=ADMIN_USER,
            # Not manage_master_user_password: RDS refuses read replicas of an instance whose
            # master password it manages in Secrets Manager (RDS User Guide, "Limitations for
            # Secrets Manager integration with Amazon RDS"). `password`, not `password_wo`: the
            # Pulumi bridge still writes a write-only value into the state inputs (as a secret,
            # pulumi-terraform-bridge#3201) and never diffs it, while `password` is a schema
            # secret that Pulumi diffs, so a new RandomPassword alone rotates it (Pulumi docs,
            # "Write-only fields": prefer secrets on regular fields). RDS applies a new password
            # asynchronously whatever apply_immediately says (ModifyDBInstance, MasterUserPassword).
            password=pulumi.Output.secret(self.master_password.result),
            db_subnet_group_name=self._args.context.network.subnet_group_name,
            multi_az=db.multi_az,
            backup_retention_period=self._args.tier.pitr_days,
            # PreferredBackupWindow / PreferredMaintenanceWindow (CreateDBInstance; ModifyDBInstance applies a
            # change of either without an outage, "asynchronously applied as soon as possible"). Staggered per
            # database (components/prod/windows.py); the catalogue validated overrides as RDS does.
            backup_window=self._args.windows.backup if self._args.windows else BACKUP_WINDOW,
            maintenance_window=self._args.windows.maintenance if self._args.windows else MAINTENANCE_WINDOW,
            deletion_protection=db.deletion_protection,
            delete_automated_backups=False,
            skip_final_snapshot=False,
            final_snapshot_identifier=suffix.hex.apply(lambda h: f"{self._identifier}-final-{h}"),
            tags=self._tagged("primary"),
            **self._common_instance_args(),
            **restore,
            opts=self._opts(protect=self._args.context.protect, depends_on=self.log_groups[self._identifier],
                            ignore_changes=ignore),
        )

    def _create_replica(self, index: int) -> aws.rds.Instance:
        # Replicas hold no data of their own: no final snapshot (RDS refuses one),
        # no Pulumi protect, so lowering `replicas` removes one cleanly.
        return aws.rds.Instance(
            f"{self._name}-replica-{index + 1}",
            identifier=self._replica_identifier(index),
            replicate_source_db=self.primary.identifier,
            instance_class=self._db.replica_instance_class,
            multi_az=False,
            backup_retention_period=0,
            skip_final_snapshot=True,
            deletion_protection=False,
            tags={**self._tagged("replica"), "bulkhead:replica-of": self._identifier},
            **self._common_instance_args(),
            # No storage_encrypted / kms_key_id: a same-region replica is always encrypted with
            # its source's key, and CreateDBInstanceReadReplica takes no StorageEncrypted and wants
            # no KmsKeyId in the same region (RDS API reference); terraform-provider-aws
            # (internal/service/rds/instance.go, replicate_source_db branch) never sends
            # storage_encrypted and sends kms_key_id as for a cross-region copy. The provider
            # reads both back from AWS, so they are not diffed against the program.
            opts=self._opts(depends_on=[self.primary, *self.log_groups[self._replica_identifier(index)]],
                            ignore_changes=["storageEncrypted", "kmsKeyId"]),
        )

    def _create_master_secret(self) -> tuple[aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion]:
        secret = aws.secretsmanager.Secret(
            f"{self._name}-master-secret",
            # A prefix: a deleted secret keeps its name through the recovery window, so a
            # destroy + up must not need the same name. Names allow a-zA-Z0-9/_+=.@- (API ref).
            name_prefix=f"bulkhead/{aws_name(self._args.context.stack)}/{self._name}/master-",
            description=f"bulkhead {self._args.context.stack}/{self._name}: master credentials, break-glass only",
            kms_key_id=self.key.arn,
            recovery_window_in_days=SECRET_RECOVERY_DAYS,
            tags=self._tagged("master-secret"),
            opts=self._opts(),
        )
        # The JSON of RDS's own secrets and AWS's rotation functions (Secrets Manager User
        # Guide, "JSON structure of Secrets Manager secrets", Amazon RDS credentials).
        value = pulumi.Output.all(self.primary.address, self.primary.port, self.primary.identifier,
                                  self.master_password.result).apply(
            lambda v: json.dumps({
                "engine": "postgres", "host": v[0], "port": v[1], "username": ADMIN_USER, "password": v[3],
                "dbname": self._db.db_name, "dbInstanceIdentifier": v[2],
            })
        )
        policy = self._create_secret_policy(secret)
        version = aws.secretsmanager.SecretVersion(
            f"{self._name}-master-secret-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(value),
            # The password is written only once the secret's policy guards it.
            opts=self._opts(depends_on=[policy]),
        )
        return secret, version

    def _create_secret_policy(self, secret: aws.secretsmanager.Secret) -> aws.secretsmanager.SecretPolicy:
        args = self._args

        def document(values) -> str:
            partition, account, bootstrap_arn, deployers = values
            return key_policies.dumps(key_policies.secret_policy(
                partition=partition, account=account, readers=[bootstrap_arn],
                break_glass=args.context.break_glass_principals, deployers=deployers,
            ))

        # aws_secretsmanager_secret_policy (PutResourcePolicy). block_public_policy: Secrets
        # Manager refuses a policy that would grant access outside the account.
        return aws.secretsmanager.SecretPolicy(
            f"{self._name}-master-secret-policy",
            secret_arn=secret.arn,
            policy=pulumi.Output.all(args.context.partition, args.context.account, self.bootstrap_role.arn,
                                     args.context.deployer_principals).apply(document),
            block_public_policy=True,
            opts=self._opts(),
        )

    def _create_login_secret(self) -> tuple[aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion]:
        """auth password: the login role's own generated password (never the master's) in a secret
        of its own under the database's key. A new `password_version` replaces the RandomPassword
        (keepers) and so the secret's value, and re-runs the bootstrap, which sets it."""
        a = self._args
        password = random.RandomPassword(
            f"{self._name}-login-password",
            length=MASTER_PASSWORD_LENGTH,
            special=False,
            min_lower=4,
            min_upper=4,
            min_numeric=4,
            keepers={"password_version": str(self._db.password_version)},
            opts=self._opts(),
        )
        secret = aws.secretsmanager.Secret(
            f"{self._name}-login-secret",
            name_prefix=self._login_secret_name_prefix(),
            description=f"bulkhead {a.context.stack}/{self._name}: login of {self._db.owner} (auth password)",
            kms_key_id=self.key.arn,
            recovery_window_in_days=SECRET_RECOVERY_DAYS,
            tags=self._tagged("login-secret"),
            opts=self._opts(),
        )

        def document(values) -> str:
            partition, account, bootstrap_arn, deployers = values
            return key_policies.dumps(key_policies.login_secret_policy(
                partition=partition, account=account, readers=[bootstrap_arn],
                break_glass=a.context.break_glass_principals, deployers=deployers,
                # issue 20: only the owner's roles (bulkhead:owner_principals) read it, not every
                # principal of the account whose IAM policy allows GetSecretValue on *.
                owners=a.owner_principals,
            ))

        policy = aws.secretsmanager.SecretPolicy(
            f"{self._name}-login-secret-policy",
            secret_arn=secret.arn,
            policy=pulumi.Output.all(a.context.partition, a.context.account, self.bootstrap_role.arn,
                                     a.context.deployer_principals).apply(document),
            block_public_policy=True,
            opts=self._opts(),
        )
        value = pulumi.Output.all(self.primary.address, self.primary.port, password.result).apply(
            lambda v: json.dumps({"engine": "postgres", "host": v[0], "port": v[1], "username": self.role,
                                  "password": v[2], "dbname": self._db.db_name}))
        version = aws.secretsmanager.SecretVersion(
            f"{self._name}-login-secret-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(value),
            opts=self._opts(depends_on=[policy]),
        )
        return secret, version

    def _create_bootstrap(self, secret_value: aws.secretsmanager.SecretVersion,
                          login_value: Optional[aws.secretsmanager.SecretVersion] = None) -> RdsBootstrap:
        a = self._args
        return RdsBootstrap(
            f"{self._name}",
            RdsBootstrapArgs(
                stack=a.context.stack,
                database=self._db,
                instance_identifier=self._identifier,
                role=self.role,
                connection_limit=self._db.connection_limit,
                role_settings=rds_role_settings(self._db),
                vpc_id=a.context.network.vpc_id,
                subnet_ids=a.context.network.subnet_ids,
                database_security_group_id=self.security_group.id,
                master_secret_arn=self.master_secret.arn,
                key_arn=self.key.arn,
                archive_path=a.context.bootstrap.path,
                archive_hash=a.context.bootstrap.hash,
                https_egress_security_group_id=a.context.network.endpoint_security_group_id,
                interim_https_cidr=a.context.network.vpc_cidr,
                port=PORT,
                depends_on=[self.primary, secret_value, *a.context.network.secrets_endpoint,
                            *([login_value] if login_value is not None else [])],
                iam_role=self.bootstrap_role,
                log_retention_days=a.tier.log_retention_days,
                auth=self._db.auth,
                login_secret_arn=self.login_secret.arn if self.login_secret is not None else None,
                secrets_endpoint_url=a.context.network.secrets_endpoint_url,
            ),
            opts=self._opts(),
        )

    def _create_proxy(self) -> RdsProxy:
        return RdsProxy(self._name, RdsProxyArgs(
            context=self._args.context, owner=self._db.owner, role=self.role, primary=self.primary,
            database_security_group_id=self.security_group.id,
            client_security_group_id=self._args.client_security_group_id, tags=self._tags), opts=self._opts())

    def _create_access_policy(self) -> aws.iam.Policy:
        instances = [self.primary, *self.replicas]

        if self._db.auth == "password":
            return self._create_password_access_policy()

        def document(args) -> str:
            instance_arn, *resource_ids = args
            # arn:aws:rds:<region>:<account>:db:<id> -> rds-db:connect on dbuser:<DbiResourceId>/<user>;
            # every instance, each replica too, has its own DbiResourceId (RDS User Guide,
            # "Creating and using an IAM policy for IAM database access").
            partition, region, account = instance_arn.split(":")[1], instance_arn.split(":")[3], instance_arn.split(":")[4]
            return json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Sid": "ConnectAsServiceRole", "Effect": "Allow", "Action": "rds-db:connect",
                         "Resource": [f"arn:{partition}:rds-db:{region}:{account}:dbuser:{rid}/{self.role}"
                                      for rid in resource_ids]},
                        alarm_guard_statement(partition, region, account, self._args.context.stack),
                    ],
                },
                indent=None,
            )

        return aws.iam.Policy(
            f"{self._name}-access",
            name_prefix=aws_name("bulkhead", self._args.context.stack, self._name, "access", max_length=90) + "-",
            # No owner in the description: `description` is ForceNew (terraform-provider-aws iam/policy.go),
            # so an owner change replaced the policy, whose delete then failed while the old owner's task
            # role still had it attached (DeleteConflict), leaving that role its access. ignore_changes:
            # stacks created with the old text keep it instead of replacing the policy to reword it.
            description=f"Exactly what the owner of database {self._name} needs to use it (rds-db:connect)",
            policy=pulumi.Output.all(self.primary.arn, *[i.resource_id for i in instances],
                                     # the proxy's prx- id: the service signs tokens for the proxy too
                                     *([self.proxy.arn.apply(proxy_resource_id)] if self.proxy else [])).apply(document),
            tags=self._tagged("access"),
            opts=self._opts(ignore_changes=["description"]),
        )

    def _create_password_access_policy(self) -> aws.iam.Policy:
        """auth password: read the login secret (and decrypt it through Secrets Manager only),
        nothing else; no rds-db:connect (the role is no member of rds_iam)."""
        return aws.iam.Policy(
            f"{self._name}-access",
            name_prefix=aws_name("bulkhead", self._args.context.stack, self._name, "access", max_length=90) + "-",
            # The same description as the IAM variant, for the same reason (ForceNew): an owner change,
            # or a switch between iam and password auth (same URN), updates the policy in place.
            description=f"Exactly what the owner of database {self._name} needs to use it (its login secret)",
            policy=pulumi.Output.all(self.login_secret.arn, self.key.arn, self._args.context.region,
                                     self._args.context.partition, self._args.context.account).apply(
                lambda v: json.dumps(password_access_policy(v[0], v[1], v[2], alarm_guard_statement(
                    v[3], v[2], v[4], self._args.context.stack)))),
            tags=self._tagged("access"),
            opts=self._opts(ignore_changes=["description"]),
        )

    def _connection(self) -> dict:
        db = self._db
        return {
            "owner": db.owner,
            "platform": "aws",
            "host": self.primary.address,
            "port": self.primary.port,
            "db_name": db.db_name,
            "username": self.role,
            "auth": db.auth,
            # RDS certificates verify against the RDS CA bundle.
            "sslmode": "verify-full",
            "env_var": db.env_var,
            "tier": db.tier,
            "reader_hosts": [r.address for r in self.replicas],
            # The break-glass master secret, for operators (`dsn --admin`); no service is granted it.
            "secret_arn": self.master_secret.arn,
            # No password in the URL: the service signs an IAM token as the password at run time
            # (auth iam), or reads it from login_secret_arn (auth password).
            "url": pulumi.Output.all(self.primary.address, self.primary.port).apply(
                lambda a: f"postgresql://{self.role}@{a[0]}:{a[1]}/{db.db_name}"
                f"?sslmode=verify-full&sslrootcert={RDS_CA_BUNDLE_PATH}"
            ),
            "security_group_id": self._args.client_security_group_id,
            "access_policy_arn": self.access_policy.arn,
            "kms_key_arn": self.key.arn,
            "database_security_group_id": self.security_group.id,
            # The bootstrap function's group, which the database group admits besides the owner's.
            "bootstrap_security_group_id": self.bootstrap.security_group_id,
            "instance_identifier": self.primary.identifier,
            "resource_id": self.primary.resource_id,
            **({"login_secret_arn": self.login_secret.arn} if self.login_secret is not None else {}),
            # `proxy: true`: where the service connects instead of `host` (same user, same IAM token flow).
            **({"proxy_host": self.proxy.endpoint} if self.proxy is not None else {}),
        }


# The ForceNew inputs of aws_db_snapshot_copy (terraform-provider-aws internal/service/rds/snapshot_copy.go).
SNAPSHOT_COPY_FORCE_NEW = ("copyTags", "destinationRegion", "kmsKeyId", "optionGroupName", "presignedUrl",
                           "sourceDbSnapshotIdentifier", "targetCustomAvailabilityZone", "targetDbSnapshotIdentifier")


def password_access_policy(login_secret_arn: str, key_arn: str, region: str, guard: Optional[dict] = None) -> dict:
    """auth password: the service reads its own login secret, decrypting through Secrets Manager (and
    `guard`, alarms.alarm_guard_statement: never the stack's alarms)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadOwnLoginSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": login_secret_arn},
            {"Sid": "DecryptItThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
             "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
            *([guard] if guard else []),
        ],
    }
