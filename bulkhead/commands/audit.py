"""`audit`: the live AWS account checked against the catalogue, the stack outputs and the rules.

For every database of the stack (catalogue `Pulumi.<stack>.yaml` + outputs) it
reads RDS, EC2, Secrets Manager, IAM and AWS Backup with boto3 (read-only calls) and
reports one line per check. Thresholds are the policy pack's
(`policies/bulkhead_policies/thresholds.py`, loaded with `bulkhead.commands.check.load_pack`),
so `check` (before deploy) and `audit` (after) apply the same numbers.

Exit 0: no drift. 1: drift. 2: bad input, or AWS could not be read (no
credentials, access denied, throttled after retries) - the message says what
to do, never a traceback. Progress goes to stderr; stdout is the table or JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from bulkhead import PROJECT_DIR
from bulkhead.aws_errors import aws_user_error, client, is_not_found, session
from bulkhead.errors import UserError
from bulkhead.outputs_source import add_arguments, load_outputs
from policies.bulkhead_backup import selection_covers as covers

OK, DRIFT, SKIPPED = "ok", "DRIFT", "skipped"
ACCEPTED_STATUSES = ("available", "backing-up", "storage-optimization", "configuring-enhanced-monitoring",
                     "configuring-log-exports")
CHECKS: tuple[tuple[str, str], ...] = (
    ("instance", "instance exists and is available"),
    ("encryption", "storage encrypted with the database's own KMS key"),
    ("database-key", "the database's own KMS key exists and is enabled (its snapshots and secret need it)"),
    ("not-public", "not publicly accessible"),
    ("ssl-forced", "parameter group sets rds.force_ssl=1"),
    ("parameters-applied", "parameter group in sync (no change waiting for a reboot)"),
    ("deletion-protection", "deletion protection as configured (on by default)"),
    ("retention", "automated backup retention >= the tier's pitr_days"),
    ("multi-az", "multi-AZ as configured"),
    ("replicas", "configured replicas present, available and replicating"),
    ("ingress", "database group admits only the owner's client group (and its own bootstrap function), on the database port"),
    ("master-secret", "bulkhead's master secret present, encrypted with the database's key; RDS does not manage the master"),
    ("access-policy", "the service's access policy grants only rds-db:connect for its role on its instances"),
    ("iam-auth", "IAM database authentication on"),
    ("ca", "server certificate CA in the allowed list"),
    ("recovery-point", "latest restorable time within the tier's recovery point objective"),
    ("backup-plan", "an AWS Backup plan for the tier whose selection covers the instance"),
    ("bootstrap", "the bootstrap function's code, layers, configuration and environment are the deployment's"),
    ("master-age", "the master (and an auth-password login) password is younger than the tier's master_max_age_days"),
    ("proxy", "`proxy: true`: the RDS Proxy at proxy_host requires TLS, uses IAM end to end, and its group admits only the owner's client group on 5432"),
)
CHECK_NAMES = tuple(c for c, _ in CHECKS)


# --- thresholds shared with the policy pack --------------------------------------

def load_thresholds():
    """The policy pack's `thresholds` module. Imported on first use, not with this module:
    the pack pulls in pulumi_policy, and the CLI imports every verb module at start-up."""
    from bulkhead.commands.check import load_pack

    try:
        return load_pack().thresholds
    except ImportError as exc:
        raise UserError(f"cannot load the policy pack's thresholds ({exc}); install its requirements: "
                        f"`pip install -r policies/requirements.txt`") from None


# --- results -----------------------------------------------------------------------

@dataclass
class Finding:
    check: str
    status: str  # ok / DRIFT / skipped
    message: str


@dataclass
class DatabaseReport:
    database: str
    owner: str
    identifier: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, check: str, problems: list[str], ok_message: str = "") -> None:
        if problems:
            self.findings.append(Finding(check, DRIFT, "; ".join(problems)))
        else:
            self.findings.append(Finding(check, OK, ok_message))

    def skip(self, checks, why: str) -> None:
        for check in checks:
            self.findings.append(Finding(check, SKIPPED, why))

    @property
    def drifts(self) -> list[Finding]:
        return [f for f in self.findings if f.status == DRIFT]


# --- helpers -----------------------------------------------------------------------

def key_id(arn_or_id: Optional[str]) -> str:
    """`arn:aws:kms:r:a:key/<id>` and `<id>` compare equal."""
    return str(arn_or_id or "").rsplit("key/", 1)[-1]


def schedule_interval(schedule: str) -> dt.timedelta:
    """The longest gap between two runs of an AWS Backup schedule (cron or rate)."""
    m = re.fullmatch(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)", schedule.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2).rstrip("s")
        return {"minute": dt.timedelta(minutes=n), "hour": dt.timedelta(hours=n), "day": dt.timedelta(days=n)}[unit]
    m = re.fullmatch(r"cron\((.+)\)", schedule.strip())
    if m:
        fields = m.group(1).split()
        if len(fields) == 6:
            _minute, hour, dom, _month, dow, _year = fields
            if dom not in ("*", "?") or dow not in ("*", "?"):
                return dt.timedelta(days=31 if dom not in ("*", "?") else 7)
            if hour == "*":
                return dt.timedelta(hours=1)
            step = re.fullmatch(r"(?:\*|\d+)/(\d+)", hour)
            if step:
                return dt.timedelta(hours=int(step.group(1)))
            if "," in hour:
                hours = sorted(int(h) for h in hour.split(","))
                gaps = [b - a for a, b in itertools.pairwise(hours)] + [24 - hours[-1] + hours[0]]
                return dt.timedelta(hours=max(gaps))
            return dt.timedelta(days=1)
    return dt.timedelta(days=1)


def _fmt_delta(delta: dt.timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} d"


def _tags(tag_list) -> dict[str, str]:
    return {t.get("Key"): t.get("Value") for t in tag_list or [] if isinstance(t, dict)}


# The Backup API's GetBackupSelection names -> the plan's (aws.backup.Selection inputs), which
# policies/bulkhead_backup.py's selection_covers reads: one rule for the pack, audit and mermaid.
_API_CONDITIONS = {"StringEquals": "stringEquals", "StringNotEquals": "stringNotEquals",
                   "StringLike": "stringLike", "StringNotLike": "stringNotLike"}


def plan_shaped_selection(selection: dict) -> dict:
    """A BackupSelection from the Backup API (GetBackupSelection) in the plan's shape."""
    conditions = selection.get("Conditions") or {}
    return {
        "resources": list(selection.get("Resources") or []),
        "notResources": list(selection.get("NotResources") or []),
        "selectionTags": [{"type": c.get("ConditionType"), "key": c.get("ConditionKey"), "value": c.get("ConditionValue")}
                          for c in selection.get("ListOfTags") or [] if isinstance(c, dict)],
        "conditions": [{ours: [{"key": c.get("ConditionKey"), "value": c.get("ConditionValue")}
                               for c in conditions.get(api) or [] if isinstance(c, dict)]
                        for api, ours in _API_CONDITIONS.items() if conditions.get(api)}] if conditions else [],
    }


def selection_covers(selection: dict, arn: str, tags: dict[str, str]) -> bool:
    """The pack's rule (policies/bulkhead_backup.py) on a selection read from the Backup API."""
    return covers(plan_shaped_selection(selection), arn, tags)


# --- the audit -----------------------------------------------------------------------

class Auditor:
    def __init__(self, sess, region: str, stack: str, catalogue, outputs: dict,
                 now: Optional[dt.datetime] = None, progress: Optional[Callable[[str], None]] = None,
                 thresholds=None):
        self.thresholds = thresholds if thresholds is not None else load_thresholds()
        self.region = region
        self.stack = stack
        self.catalogue = catalogue
        self.outputs = outputs
        self.now = now or dt.datetime.now(dt.timezone.utc)
        self.progress = progress or (lambda _msg: None)
        self.rds = client(sess, "rds", region)
        self.ec2 = client(sess, "ec2", region)
        self.sm = client(sess, "secretsmanager", region)
        self.backup = client(sess, "backup", region)
        self.sts = client(sess, "sts", region)
        self.iam = client(sess, "iam", region)
        self.lambda_ = client(sess, "lambda", region)
        self._bootstrap_hash: Optional[str] = None
        self.kms = client(sess, "kms", region)
        self._param_cache: dict[str, dict[str, str]] = {}
        self._plans: Optional[dict[str, str]] = None
        self._plan_cache: dict[str, Any] = {}

    def account(self) -> str:
        return self.sts.get_caller_identity().get("Account", "?")

    def run(self) -> list[DatabaseReport]:
        dbs_out = self.outputs["databases"]
        names = sorted(set(self.catalogue.databases) | set(dbs_out))
        reports = []
        for index, name in enumerate(names, 1):
            self.progress(f"audit: [{index}/{len(names)}] {name} ...")
            report = self.audit_database(name)
            reports.append(report)
            n = len(report.drifts)
            self.progress(f"audit: [{index}/{len(names)}] {name}: " + (f"{n} drift(s)" if n else "ok"))
        return reports

    # one database
    def audit_database(self, name: str) -> DatabaseReport:
        db = self.catalogue.databases.get(name)
        out = self.outputs["databases"].get(name)
        ident = (out or {}).get("instance_identifier") or (out or {}).get("host", "").split(".")[0] or "?"
        report = DatabaseReport(database=name, owner=(db.owner if db else (out or {}).get("owner", "?")), identifier=ident)
        if db is None:
            report.add("instance", [f"{name} is in the stack outputs but not in Pulumi.{self.stack}.yaml: "
                                    f"deployed but no longer catalogued; run `pulumi up` or restore the entry"])
            report.skip(CHECK_NAMES[1:], "not in the catalogue")
            return report
        if out is None:
            report.add("instance", [f"{name} is catalogued but not in the stack outputs: not deployed; run `pulumi up`"])
            report.skip(CHECK_NAMES[1:], "not deployed")
            return report
        if db.owner != out.get("owner"):
            report.add("instance", [f"owner is {out.get('owner')} in the outputs but {db.owner} in the catalogue; run `pulumi up`"])
            report.skip(CHECK_NAMES[1:], "owner mismatch")
            return report
        inst = self._describe_instance(ident)
        if inst is None:
            report.add("instance", [f"RDS instance {ident} does not exist in {self.region}; restore it from its "
                                    f"final snapshot or latest backup, then `pulumi refresh`"])
            report.skip(CHECK_NAMES[1:], "no instance")
            return report
        tier = self.catalogue.backup_tiers[db.tier]
        status = inst.get("DBInstanceStatus")
        report.add("instance", [] if status in ACCEPTED_STATUSES else [f"instance {ident} is {status}, not available"],
                   f"{ident} {status}")
        self._check_encryption(report, inst, out)
        self._check_key(report, out)
        report.add("not-public", ["instance is publicly accessible; `aws rds modify-db-instance --no-publicly-accessible`"]
                   if inst.get("PubliclyAccessible") else [])
        self._check_parameters(report, inst)
        want_dp = db.deletion_protection
        report.add("deletion-protection",
                   [f"deletion protection is {'off' if want_dp else 'on'} but configured {'on' if want_dp else 'off'}"]
                   if bool(inst.get("DeletionProtection")) != want_dp else [],
                   "on" if want_dp else "off (as configured)")
        min_days = max(tier.pitr_days, int(self.thresholds.MIN_RETENTION_DAYS_BY_TIER.get(
            db.tier, self.thresholds.DEFAULT_MIN_RETENTION_DAYS)))
        days = int(inst.get("BackupRetentionPeriod") or 0)
        report.add("retention", [f"automated backup retention is {days} days, tier {db.tier} needs >= {min_days}"]
                   if days < min_days else [], f"{days} d")
        report.add("multi-az", [f"MultiAZ is {bool(inst.get('MultiAZ'))}, configured {db.multi_az}"]
                   if bool(inst.get("MultiAZ")) != db.multi_az else [])
        self._check_replicas(report, inst, db.replicas)
        self._check_ingress(report, inst, out)
        self._check_proxy(report, db, out)
        self._check_secret(report, inst, out, name)
        self._check_access_policy(report, inst, out)
        report.add("iam-auth", [] if inst.get("IAMDatabaseAuthenticationEnabled") else ["IAM database authentication is off"])
        ca = inst.get("CACertificateIdentifier")
        allowed_cas = tuple(self.thresholds.ALLOWED_CA_IDENTIFIERS)
        report.add("ca", [] if ca in allowed_cas else
                   [f"CA {ca} is not one of {', '.join(allowed_cas)}; rotate the certificate"], str(ca))
        self._check_recovery_point(report, inst, db.tier, tier)
        self._check_backup_plan(report, inst, db.tier, tier)
        self._check_bootstrap(report, name, db, out)
        self._check_master_age(report, db, out)
        return report

    def expected_bootstrap_hash(self) -> str:
        """CodeSha256 of the package this checkout of bulkhead deploys (audit with the deployed commit)."""
        if self._bootstrap_hash is None:
            from components.prod.rds_bootstrap import bootstrap_archive

            self._bootstrap_hash = bootstrap_archive().sha256_b64
        return self._bootstrap_hash

    def _check_bootstrap(self, report, name: str, db, out) -> None:
        """Whoever changes the bootstrap function (UpdateFunctionCode, UpdateFunctionConfiguration:
        a layer, AWS_LAMBDA_EXEC_WRAPPER, another secret) runs code as its role, which reads the
        master secret: any difference from the deployment is drift."""
        from botocore.exceptions import ClientError

        from components.postgres import bootstrap_handler
        from components.prod import rds_bootstrap
        from components.prod.rds_postgres import rds_role_settings

        fname = rds_bootstrap.function_name(out.get("instance_identifier") or "?")
        try:
            config = self.lambda_.get_function_configuration(FunctionName=fname)
        except ClientError as exc:
            if is_not_found(exc):
                report.add("bootstrap", [f"bootstrap function {fname} does not exist; `pulumi up`"])
                return
            raise
        why = "who changed the bootstrap can become the master"
        fix = f"redeploy it (`pulumi up` after `pulumi refresh`) and find who changed it in CloudTrail ({why})"
        problems = []
        if config.get("CodeSha256") != self.expected_bootstrap_hash():
            problems.append(f"code is not bulkhead's package (CodeSha256 {config.get('CodeSha256')}, "
                            f"expected {self.expected_bootstrap_hash()})")
        layers = [layer.get("Arn") for layer in config.get("Layers") or []]
        if layers:
            problems.append(f"has layers {', '.join(layers)} (bulkhead adds none)")
        expected_config = {"Runtime": rds_bootstrap.LAMBDA_RUNTIME, "Handler": rds_bootstrap.HANDLER,
                           "Timeout": rds_bootstrap.TIMEOUT_SECONDS, "MemorySize": rds_bootstrap.MEMORY_MB}
        changed = sorted(k for k, v in expected_config.items() if config.get(k) != v)
        if changed:
            problems.append("configuration differs: " + ", ".join(f"{k} {config.get(k)!r} (expected {expected_config[k]!r})"
                                                                  for k in changed))
        expected_env = bootstrap_handler.function_environment(
            database=name, db_name=db.db_name, role=db.db_name, connection_limit=db.connection_limit,
            settings=rds_role_settings(db), master_secret_arn=out.get("secret_arn"), auth=db.auth,
            login_secret_arn=out.get("login_secret_arn"))
        env = (config.get("Environment") or {}).get("Variables") or {}
        # The Secrets Manager endpoint URL the stack sets in a given VPC (private DNS off): not in the
        # outputs, so accepted only as an endpoint-specific name of this region's Secrets Manager
        # (anything else could send the function's signed GetSecretValue elsewhere).
        endpoint = env.get(bootstrap_handler.ENV_SECRETS_ENDPOINT_URL)
        if endpoint is not None and bootstrap_handler.is_secrets_endpoint_url(endpoint, self.region):
            expected_env[bootstrap_handler.ENV_SECRETS_ENDPOINT_URL] = endpoint
        differ = sorted(k for k in set(env) | set(expected_env) if env.get(k) != expected_env.get(k))
        if differ:
            problems.append(f"environment differs in {', '.join(differ)}")
        report.add("bootstrap", [f"bootstrap function {fname}: {p}; {fix}" for p in problems], fname)

    def _check_master_age(self, report, db, out) -> None:
        """Secrets Manager does not rotate the master (docs/prod-stack.md "Master rotation"): the
        current version's age against the tier's master_max_age_days (Security Hub SecretsManager.4)."""
        from botocore.exceptions import ClientError

        tier = self.catalogue.backup_tiers[db.tier]
        limit = dt.timedelta(days=tier.master_max_age_days)
        problems, ages = [], []
        for what, arn, key in (("master", out.get("secret_arn"), "master_password_version"),
                               ("login", out.get("login_secret_arn"), "password_version")):
            if not isinstance(arn, str) or not arn.startswith("arn:"):
                continue
            try:
                # DescribeSecret first: a deleted secret is the master-secret check's finding (and moto
                # 5 answers ListSecretVersionIds on a force-deleted secret with an internal error).
                self.sm.describe_secret(SecretId=arn)
                versions = self.sm.list_secret_version_ids(SecretId=arn).get("Versions") or []
            except ClientError as exc:
                if is_not_found(exc):
                    continue  # the master-secret check reports it
                raise
            current = [v for v in versions if "AWSCURRENT" in (v.get("VersionStages") or [])]
            created = current[0].get("CreatedDate") if current else None
            if created is None:
                continue
            age = self.now - created
            ages.append(f"{what} {age.days} d")
            if age > limit:
                problems.append(f"the {what} password is {age.days} days old, tier {db.tier} allows "
                                f"{tier.master_max_age_days}; raise {key} and `pulumi up`")
        report.add("master-age", problems, ", ".join(ages))

    def _describe_instance(self, ident: str) -> Optional[dict]:
        from botocore.exceptions import ClientError

        try:
            found = self.rds.describe_db_instances(DBInstanceIdentifier=ident).get("DBInstances") or []
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        return found[0] if found else None

    def _check_encryption(self, report, inst, out) -> None:
        problems = []
        if not inst.get("StorageEncrypted"):
            problems.append("storage is not encrypted")
        elif key_id(inst.get("KmsKeyId")) != key_id(out.get("kms_key_arn")):
            problems.append(f"storage is encrypted with {inst.get('KmsKeyId')}, not the database's own key {out.get('kms_key_arn')}")
        report.add("encryption", problems)

    def _check_key(self, report, out) -> None:
        """The database's key: deleted, scheduled for deletion or disabled makes its storage, snapshots,
        logs and master secret unreadable (KMS "Key states": DescribeKey KeyState)."""
        from botocore.exceptions import ClientError

        arn = out.get("kms_key_arn")
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            report.add("database-key", ["the stack outputs name no KMS key (kms_key_arn); `pulumi up`"])
            return
        try:
            meta = self.kms.describe_key(KeyId=arn)["KeyMetadata"]
        except ClientError as exc:
            if is_not_found(exc):
                report.add("database-key", [f"KMS key {arn} does not exist: the database's storage, snapshots and "
                                            f"master secret cannot be decrypted; restore the database from a backup "
                                            f"in the vault (its copies are under the vault key), then `pulumi refresh`"])
                return
            raise
        state = meta.get("KeyState")
        fixes = {"PendingDeletion": f"`aws kms cancel-key-deletion --key-id {arn}` then `aws kms enable-key --key-id {arn}`",
                 "Disabled": f"`aws kms enable-key --key-id {arn}`"}
        report.add("database-key", [] if state == "Enabled" else
                   [f"KMS key {arn} is {state}; {fixes.get(state, 'make it Enabled again')}"], str(state))

    def _parameters(self, group: str) -> dict[str, str]:
        if group not in self._param_cache:
            values: dict[str, str] = {}
            for page in self.rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group):
                for p in page.get("Parameters") or []:
                    if "ParameterValue" in p:
                        values[p["ParameterName"]] = str(p["ParameterValue"])
            self._param_cache[group] = values
        return self._param_cache[group]

    def _check_parameters(self, report, inst) -> None:
        problems, pending = [], []
        groups = inst.get("DBParameterGroups") or []
        ident = inst.get("DBInstanceIdentifier")
        for g in groups:
            name = g.get("DBParameterGroupName")
            status = g.get("ParameterApplyStatus")
            if status not in ("in-sync", None):
                # pending-reboot changes apply "after a reboot without failover" (ModifyDBParameterGroup API
                # reference); RDS does not reboot for them by itself, so someone has to.
                pending.append(f"parameter group {name} is {status}: a changed static setting waits for a reboot "
                               f"RDS never does by itself; `aws rds reboot-db-instance --db-instance-identifier {ident}` "
                               f"(a short outage)")
            force_ssl = self._parameters(name).get("rds.force_ssl")
            if force_ssl != "1":
                problems.append(f"parameter group {name} has rds.force_ssl={force_ssl or 'unset'}, needs 1")
        if not groups:
            problems.append("no parameter group")
        report.add("ssl-forced", problems)
        report.add("parameters-applied", pending)

    def _check_replicas(self, report, inst, expected: int) -> None:
        ident = inst["DBInstanceIdentifier"]
        problems, healthy = [], []
        listed = list(inst.get("ReadReplicaDBInstanceIdentifiers") or [])
        from components.prod.naming import replica_identifier  # the program's own rule, not a copy

        wanted = [replica_identifier(ident, i) for i in range(1, expected + 1)]
        for rid in sorted(set(listed) | set(wanted)):
            rep = self._describe_instance(rid)
            if rep is None:
                problems.append(f"replica {rid} is missing")
                continue
            source = rep.get("ReadReplicaSourceDBInstanceIdentifier") or ""
            if source not in (ident, inst.get("DBInstanceArn")):
                problems.append(f"{rid} does not replicate from {ident}")
                continue
            if rep.get("DBInstanceStatus") not in ACCEPTED_STATUSES:
                problems.append(f"replica {rid} is {rep.get('DBInstanceStatus')}")
                continue
            bad = [s for s in rep.get("StatusInfos") or [] if s.get("StatusType") == "read replication" and not s.get("Normal", True)]
            if bad:
                problems.append(f"replica {rid} replication is {bad[0].get('Status')}")
                continue
            if rep.get("PubliclyAccessible"):
                problems.append(f"replica {rid} is publicly accessible")
                continue
            if rid not in wanted:
                problems.append(f"replica {rid} is not in the catalogue (replicas: {expected}); remove it or raise `replicas`")
                continue
            healthy.append(rid)
        report.add("replicas", problems, f"{len(healthy)}/{expected}")

    def _check_ingress(self, report, inst, out) -> None:
        client_group = out.get("security_group_id")
        bootstrap_group = out.get("bootstrap_security_group_id")
        port = (inst.get("Endpoint") or {}).get("Port") or out.get("port") or 5432
        groups = [g.get("VpcSecurityGroupId") for g in inst.get("VpcSecurityGroups") or []]
        problems = []
        expected_group = out.get("database_security_group_id")
        if expected_group and expected_group not in groups:
            problems.append(f"instance is not in its database group {expected_group} (groups: {', '.join(groups)})")
        owner_admitted = False
        for group in groups:
            rules = []
            for page in self.ec2.get_paginator("describe_security_group_rules").paginate(
                    Filters=[{"Name": "group-id", "Values": [group]}]):
                rules += [r for r in page.get("SecurityGroupRules") or [] if not r.get("IsEgress")]
            for rule in rules:
                proto = rule.get("IpProtocol")
                lo, hi = rule.get("FromPort"), rule.get("ToPort")
                ports = "all traffic" if proto == "-1" else f"{proto} {lo}" + (f"-{hi}" if hi != lo else "")
                ref = (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
                if ref:
                    if ref == bootstrap_group and ref != client_group:
                        if proto != "tcp" or lo != port or hi != port:
                            problems.append(f"{group} admits the bootstrap function group on {ports}, not only tcp {port}")
                        continue
                    if ref != client_group:
                        problems.append(f"{group} admits {ref}, not {report.owner}'s client group {client_group} ({ports})")
                    elif proto == "-1" or proto != "tcp" or lo != port or hi != port:
                        problems.append(f"{group} admits the owner's client group on {ports}, not only tcp {port}")
                    else:
                        owner_admitted = True
                    continue
                source = rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId") or "?"
                public = " (the internet)" if source in self.thresholds.PUBLIC_CIDRS else ""
                problems.append(f"{group} admits {source}{public} on {ports}; only {client_group} may be admitted")
        if not owner_admitted and client_group:
            problems.append(f"{report.owner}'s client group {client_group} is not admitted on tcp {port}")
        report.add("ingress", problems, f"only {client_group}")

    def _check_proxy(self, report, db, out) -> None:
        """`proxy: true` (components/prod/proxy.py): one more way into the database, held to the same rule."""
        host = out.get("proxy_host")
        if not host:
            report.add("proxy", ["configured `proxy: true` but the outputs name no proxy_host; `pulumi up`"]
                       if getattr(db, "proxy", False) else [], "no proxy")
            return
        proxies = [p for page in self.rds.get_paginator("describe_db_proxies").paginate()
                   for p in page.get("DBProxies") or []]
        proxy = next((p for p in proxies if p.get("Endpoint") == host), None)
        if proxy is None:
            report.add("proxy", [f"no RDS Proxy has the endpoint {host} (deleted?); `pulumi refresh` then `pulumi up`"])
            return
        problems = []
        if not proxy.get("RequireTLS"):
            problems.append(f"proxy {proxy.get('DBProxyName')} accepts connections without TLS")
        scheme = proxy.get("DefaultAuthScheme")  # absent from older API models
        if scheme is not None and scheme != "IAM_AUTH":
            problems.append(f"proxy {proxy.get('DBProxyName')} DefaultAuthScheme is {scheme}, not IAM_AUTH")
        client = out.get("security_group_id")
        for group in proxy.get("VpcSecurityGroupIds") or []:
            for page in self.ec2.get_paginator("describe_security_group_rules").paginate(
                    Filters=[{"Name": "group-id", "Values": [group]}]):
                for rule in page.get("SecurityGroupRules") or []:
                    if rule.get("IsEgress"):
                        continue
                    proto, lo, hi = rule.get("IpProtocol"), rule.get("FromPort"), rule.get("ToPort")
                    ref = (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
                    source = ref or rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId") or "?"
                    if ref != client or proto != "tcp" or lo != 5432 or hi != 5432:
                        problems.append(f"proxy group {group} admits {source} ({proto} {lo}-{hi}); only "
                                        f"{report.owner}'s client group {client} on tcp 5432")
        problems += self._proxy_endpoint_problems(proxy)
        report.add("proxy", problems, f"{proxy.get('DBProxyName')}: TLS, only {client}, its default endpoint only")

    def _proxy_endpoint_problems(self, proxy: dict) -> list[str]:
        """Endpoints bulkhead never declares (components/prod/proxy.py creates none: clients use the proxy's
        default endpoint, proxy_host). A read-only or other-VPC endpoint added by hand (CreateDBProxyEndpoint:
        its own VpcSubnetIds and VpcSecurityGroupIds, possibly another VPC) is one more way into the
        database that the proxy's group does not guard. DescribeDBProxyEndpoints lists the default endpoint
        too, with IsDefault true (RDS API reference, DBProxyEndpoint)."""
        name = proxy.get("DBProxyName")
        problems = []
        for page in self.rds.get_paginator("describe_db_proxy_endpoints").paginate(DBProxyName=name):
            for endpoint in page.get("DBProxyEndpoints") or []:
                if endpoint.get("IsDefault"):
                    continue
                vpc = endpoint.get("VpcId")
                where = (f"in another VPC ({vpc})" if vpc and proxy.get("VpcId") and vpc != proxy.get("VpcId")
                         else f"in VPC {vpc or '?'}")
                problems.append(
                    f"proxy {name} has an endpoint bulkhead did not declare, {endpoint.get('DBProxyEndpointName')} "
                    f"({endpoint.get('TargetRole') or '?'}, {where}, groups "
                    f"{', '.join(endpoint.get('VpcSecurityGroupIds') or []) or 'none'}): another way into the database; "
                    f"delete it (aws rds delete-db-proxy-endpoint --db-proxy-endpoint-name "
                    f"{endpoint.get('DBProxyEndpointName')})")
        return problems

    def _check_secret(self, report, inst, out, name: str) -> None:
        from botocore.exceptions import ClientError

        from components.prod.naming import aws_name

        problems = []
        managed = (inst.get("MasterUserSecret") or {}).get("SecretArn")
        if managed:
            replicas = inst.get("ReadReplicaDBInstanceIdentifiers") or []
            why = (f"RDS cannot create read replicas of such an instance ({len(replicas)} configured)" if replicas
                   else "the master password in bulkhead's secret no longer works")
            problems.append(f"RDS manages the master password (ManageMasterUserPassword is on, secret {managed}): {why}; "
                            f"turn it off and set bulkhead's password: raise master_password_version and `pulumi up`")
        arn = out.get("secret_arn")
        prefix = f"bulkhead/{aws_name(self.stack)}/{name}/"
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            report.add("master-secret", problems + ["the stack outputs name no master secret (secret_arn); `pulumi up`"])
            return
        try:
            desc = self.sm.describe_secret(SecretId=arn)
        except ClientError as exc:
            if is_not_found(exc):
                report.add("master-secret", problems + [f"secret {arn} does not exist (deleted); raise "
                                                        f"master_password_version and `pulumi up` to write a new one"])
                return
            raise
        if not str(desc.get("Name", "")).startswith(prefix):
            problems.append(f"secret {arn} is not bulkhead's master secret of {name} (its name does not start with {prefix})")
        if desc.get("DeletedDate"):
            problems.append(f"secret {arn} is scheduled for deletion; `aws secretsmanager restore-secret`")
        if key_id(desc.get("KmsKeyId")) != key_id(out.get("kms_key_arn")):
            problems.append(f"secret is encrypted with {desc.get('KmsKeyId') or 'the AWS managed key'}, not the database's key")
        report.add("master-secret", problems)

    def _check_access_policy(self, report, inst, out) -> None:
        """The default version of the service's policy: exactly rds-db:connect as its role on each instance."""
        from botocore.exceptions import ClientError

        arn, user = out.get("access_policy_arn"), out.get("username")
        if not isinstance(arn, str) or not isinstance(user, str):
            report.add("access-policy", ["the stack outputs name no access policy or username; `pulumi up`"])
            return
        try:
            policy = self.iam.get_policy(PolicyArn=arn)["Policy"]
            version = self.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
        except ClientError as exc:
            if is_not_found(exc):
                report.add("access-policy", [f"access policy {arn} does not exist (deleted): the service can no "
                                             f"longer connect; `pulumi refresh` then `pulumi up` recreates it, and "
                                             f"attach the new ARN to the service's task role"])
                return
            raise
        document = version.get("Document")
        if isinstance(document, str):
            from urllib.parse import unquote

            document = json.loads(unquote(document))
        if out.get("auth") == "password":
            self._check_password_access_policy(report, out, document)
            return
        ids = [inst.get("DbiResourceId")]
        for rid in inst.get("ReadReplicaDBInstanceIdentifiers") or []:
            replica = self._describe_instance(rid)
            if replica is not None:
                ids.append(replica.get("DbiResourceId"))
        partition, account = inst["DBInstanceArn"].split(":")[1], inst["DBInstanceArn"].split(":")[4]
        wanted = {f"arn:{partition}:rds-db:{self.region}:{account}:dbuser:{rid}/{user}" for rid in ids if rid}
        granted: set[str] = set()
        problems = []
        statements = document.get("Statement", []) if isinstance(document, dict) else []
        for one in [statements] if isinstance(statements, dict) else statements:
            if not isinstance(one, dict) or one.get("Effect") != "Allow":
                continue
            actions = one.get("Action")
            actions = [actions] if isinstance(actions, str) else list(actions or [])
            resources = one.get("Resource")
            resources = [resources] if isinstance(resources, str) else list(resources or [])
            if [a.lower() for a in actions] != ["rds-db:connect"]:
                problems.append(f"grants {', '.join(actions)} on {', '.join(resources)}; a service needs "
                                f"rds-db:connect only (never the master secret)")
                continue
            granted |= set(resources)
        # A grant as the role on an id of no current instance (a deleted replica's) reaches nothing:
        # the replicas check reports the replica. Any other user, or a wildcard, is drift.
        others = {str(d.get("resource_id")) for d in self.outputs["databases"].values() if d is not out and d.get("resource_id")}
        extra = sorted(g for g in granted - wanted if "*" in g or not g.endswith(f"/{user}")
                       or g.rsplit(":dbuser:", 1)[-1].split("/")[0] in others)
        missing = sorted(wanted - granted)
        if extra:
            problems.append(f"grants rds-db:connect on {', '.join(extra)}, beyond {user} on this database's instances")
        if missing:
            problems.append(f"does not grant rds-db:connect on {', '.join(missing)}; `pulumi up`")
        problems += self._alarm_guard_problems(document, partition, account)
        report.add("access-policy", problems, f"{user} on {len(wanted)} instance(s)")

    def _alarm_guard_problems(self, document, partition: str, account: str) -> list[str]:
        """The Deny of the stack's alarms every access policy carries (components/prod/alarms.py
        alarm_guard_statement): without it the owner's role may spoof or silence the stack's alarms."""
        from components.prod.alarms import alarm_guard_statement

        guard = alarm_guard_statement(partition, self.region, account, self.stack)
        statements = document.get("Statement", []) if isinstance(document, dict) else []
        statements = [statements] if isinstance(statements, dict) else statements
        for one in statements:
            if not isinstance(one, dict) or one.get("Effect") != "Deny":
                continue
            actions = one.get("Action")
            actions = {actions} if isinstance(actions, str) else set(actions or [])
            resources = one.get("Resource")
            resources = {resources} if isinstance(resources, str) else set(resources or [])
            if set(guard["Action"]) <= actions and set(guard["Resource"]) <= resources and not one.get("Condition"):
                return []
        return [f"does not deny {', '.join(guard['Action'])} on {', '.join(guard['Resource'])}: the service's role may "
                f"create, change, mute or silence the stack's alarms or its RDS event subscription; `pulumi up`"]

    def _check_password_access_policy(self, report, out, document) -> None:
        """auth password: exactly the login secret's read and its decryption through Secrets Manager."""
        from components.prod.rds_postgres import password_access_policy

        login = out.get("login_secret_arn")
        wanted = password_access_policy(str(login), str(out.get("kms_key_arn")), self.region)
        statements = document.get("Statement", []) if isinstance(document, dict) else []
        statements = [statements] if isinstance(statements, dict) else statements
        # The grants exactly; the alarm guard (a Deny) apart.
        allows = [x for x in statements if not (isinstance(x, dict) and x.get("Effect") == "Deny")]
        same = json.dumps(sorted(json.dumps(x, sort_keys=True) for x in allows)) == json.dumps(
            sorted(json.dumps(x, sort_keys=True) for x in wanted["Statement"]))
        arn = str(login).split(":")
        problems = [] if same else [
            f"grants other than secretsmanager:GetSecretValue on its login secret {login} and kms:Decrypt through "
            f"Secrets Manager (never the master secret); `pulumi up`"]
        if len(arn) > 4:
            problems += self._alarm_guard_problems(document, arn[1], arn[4])
        report.add("access-policy", problems, "its login secret")

    def _check_recovery_point(self, report, inst, tier_name, tier) -> None:
        objective = min(schedule_interval(tier.schedule), dt.timedelta(days=tier.pitr_days))
        latest = inst.get("LatestRestorableTime")
        if latest is None:
            report.add("recovery-point", ["no latest restorable time: automated backups are off or not yet taken"])
            return
        if isinstance(latest, str):
            latest = dt.datetime.fromisoformat(latest.replace("Z", "+00:00"))
        if latest.tzinfo is None:
            latest = latest.replace(tzinfo=dt.timezone.utc)
        age = self.now - latest
        report.add("recovery-point",
                   [f"latest restorable time is {_fmt_delta(age)} old, tier {tier_name} allows {_fmt_delta(objective)}"]
                   if age > objective else [], f"{_fmt_delta(max(age, dt.timedelta(0)))} old")

    def _plan_ids(self) -> dict[str, str]:
        if self._plans is None:
            self._plans = {}
            token = None
            while True:
                kwargs = {"NextToken": token} if token else {}
                page = self.backup.list_backup_plans(**kwargs)
                for p in page.get("BackupPlansList") or []:
                    self._plans[p["BackupPlanName"]] = p["BackupPlanId"]
                token = page.get("NextToken")
                if not token:
                    break
        return self._plans

    def _plan(self, plan_id: str):
        if plan_id not in self._plan_cache:
            plan = self.backup.get_backup_plan(BackupPlanId=plan_id).get("BackupPlan") or {}
            selections = []
            token = None
            while True:
                kwargs = {"NextToken": token} if token else {}
                page = self.backup.list_backup_selections(BackupPlanId=plan_id, **kwargs)
                for s in page.get("BackupSelectionsList") or []:
                    selections.append(self.backup.get_backup_selection(
                        BackupPlanId=plan_id, SelectionId=s["SelectionId"]).get("BackupSelection") or {})
                token = page.get("NextToken")
                if not token:
                    break
            self._plan_cache[plan_id] = (plan, selections)
        return self._plan_cache[plan_id]

    def _check_backup_plan(self, report, inst, tier_name, tier) -> None:
        from components.prod.naming import backup_name  # the program's own rule, not a copy

        name = backup_name("bulkhead", self.stack, tier_name)
        plan_id = self._plan_ids().get(name)
        if plan_id is None:
            report.add("backup-plan", [f"no AWS Backup plan {name} for tier {tier_name}; `pulumi up` recreates it"])
            return
        plan, selections = self._plan(plan_id)
        problems = []
        min_keep = max(tier.retention_days, int(self.thresholds.MIN_BACKUP_PLAN_RETENTION_DAYS_BY_TIER.get(
            tier_name, self.thresholds.DEFAULT_MIN_BACKUP_PLAN_RETENTION_DAYS)))
        rules = plan.get("Rules") or []
        good = [r for r in rules
                if schedule_interval(r.get("ScheduleExpression", "")) <= schedule_interval(tier.schedule)
                and int((r.get("Lifecycle") or {}).get("DeleteAfterDays") or 10 ** 6) >= min_keep]
        if not good:
            problems.append(f"plan {name} has no rule running at least as often as {tier.schedule} and keeping >= {min_keep} days")
        elif tier.copy_to_dr and self.catalogue.dr_region:
            if not any(f":{self.catalogue.dr_region}:" in str(c.get("DestinationBackupVaultArn"))
                       for r in good for c in r.get("CopyActions") or []):
                problems.append(f"plan {name} does not copy to the DR region {self.catalogue.dr_region}")
        arn = inst.get("DBInstanceArn", "")
        if not any(selection_covers(s, arn, _tags(inst.get("TagList"))) for s in selections):
            problems.append(f"no selection of plan {name} covers {inst['DBInstanceIdentifier']} (check its "
                            f"bulkhead:tier/bulkhead:stack/bulkhead:role tags)")
        report.add("backup-plan", problems, name)


# --- rendering ------------------------------------------------------------------------

def render_table(reports: list[DatabaseReport], header: str) -> str:
    names = [r.database for r in reports]
    check_w = max(len(c) for c in CHECK_NAMES)
    cols = [max(len(n), 7) for n in names]
    mark = {OK: "ok", DRIFT: "DRIFT", SKIPPED: "-"}
    lines = [header, "", ("check".ljust(check_w) + "  " + "  ".join(n.ljust(w) for n, w in zip(names, cols, strict=True))).rstrip()]
    for check in CHECK_NAMES:
        cells = []
        for r, w in zip(reports, cols, strict=True):
            f = next((f for f in r.findings if f.check == check), None)
            cells.append(mark[f.status if f else SKIPPED].ljust(w))
        lines.append(check.ljust(check_w) + "  " + "  ".join(cells).rstrip())
    drifts = [(r, f) for r in reports for f in r.drifts]
    if drifts:
        lines += ["", "drift:"]
        name_w = max(len(r.database) for r, _ in drifts)
        lines += [f"  {r.database.ljust(name_w)}  {f.check}: {f.message}" for r, f in drifts]
    n_db = len({r.database for r, _ in drifts})
    lines += ["", f"{len(drifts)} drift(s) in {n_db} of {len(reports)} database(s)" if drifts
              else f"no drift: {len(reports)} database(s), {len(CHECK_NAMES)} checks each"]
    return "\n".join(lines)


def to_json(reports: list[DatabaseReport], stack: str, region: str, account: str) -> dict:
    return {
        "stack": stack,
        "region": region,
        "account": account,
        "drift": sum(len(r.drifts) for r in reports),
        "checks": [{"check": c, "rule": d} for c, d in CHECKS],
        "databases": {r.database: {"owner": r.owner, "identifier": r.identifier,
                                   "findings": [asdict(f) for f in r.findings]} for r in reports},
    }


# --- CLI -------------------------------------------------------------------------------

def add_parser(sub) -> None:
    p = sub.add_parser("audit", help="check the live AWS account against the catalogue, outputs and rules (boto3)",
                       description="Read-only: describes RDS, EC2, Secrets Manager and AWS Backup. Exit 0 clean, "
                                   "1 drift, 2 bad input or AWS not readable.")
    add_arguments(p, stack_required=True)
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--region", help="AWS region (default: aws:region of the stack, else from the outputs' ARNs)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--project-dir", default=PROJECT_DIR, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _region(args, config: dict, outputs: dict) -> str:
    from bulkhead.offline.stack_config import config_region

    if args.region:
        return args.region
    region = config_region(config)
    if region is not None:
        return region
    for db in outputs["databases"].values():
        parts = str(db.get("kms_key_arn") or "").split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    env = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if env:
        return env
    raise UserError("no AWS region: pass --region")


def run(args) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from bulkhead.offline.stack_config import load_catalogue_for, load_stack_config

    config = load_stack_config(args.project_dir, args.stack)
    catalogue = load_catalogue_for(args.project_dir, args.stack, config)
    if catalogue.platform != "aws":
        raise UserError(f"stack {args.stack} is on platform {catalogue.platform}; audit checks AWS stacks "
                        f"(`python -m bulkhead plan --stack {args.stack}` shows a docker stack)")
    outputs = load_outputs(args.outputs, args.stack, cwd=args.project_dir)
    not_aws = sorted(n for n, d in outputs["databases"].items() if d.get("platform") != "aws")
    if not_aws:
        raise UserError(f"the outputs are not an aws stack's (databases {', '.join(not_aws)} are "
                        f"{outputs['databases'][not_aws[0]].get('platform')}); pass the right --outputs/--stack")
    region = _region(args, config, outputs)
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    doing = f"auditing stack {args.stack} in {region}"
    try:
        auditor = Auditor(session(region), region, args.stack, catalogue, outputs, progress=progress)
        account = auditor.account()
        reports = auditor.run()
    except (ClientError, BotoCoreError) as exc:
        raise aws_user_error(exc, doing) from None
    drift = sum(len(r.drifts) for r in reports)
    if args.json:
        print(json.dumps(to_json(reports, args.stack, region, account), indent=1))
    else:
        print(render_table(reports, f"audit of stack {args.stack}: account {account}, region {region}"))
    return 1 if drift else 0
