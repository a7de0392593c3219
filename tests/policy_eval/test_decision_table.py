"""Who may do what to each database key, master secret and backup vault: a decision table
(principal x action -> allow/deny) over the plan's actual policy documents (issue 19, Tests)."""

from __future__ import annotations

import json

import pytest

from bulkhead.offline.mock_runtime import FAKE_ACCOUNT
from tests.support.iam_eval import Caller, decide
from tests.support.program import shared_run, stack_config

A = FAKE_ACCOUNT
REGION = "eu-west-1"
DEPLOYER = f"arn:aws:iam::{A}:role/ci/bulkhead-ci"
ROOT_USER = f"arn:aws:iam::{A}:root"  # break-glass by default


@pytest.fixture(scope="module")
def run():
    return shared_run("prod")


def _callers(run, database: str) -> dict[str, Caller]:
    roles = {r.inputs["tags"].get("bulkhead:database"): r.outputs["arn"]
             for r in run.by_type("aws:iam/role:Role") if r.inputs.get("tags", {}).get("bulkhead:role") == "bootstrap"}
    admin = ("*",)
    return {
        "deployer": Caller(arn=DEPLOYER, account=A, identity_allows=admin),
        "break-glass": Caller(arn=ROOT_USER, account=A, identity_allows=admin),
        "bootstrap": Caller(arn=roles[database], account=A,
                            identity_allows=("secretsmanager:GetSecretValue", "kms:Decrypt")),
        "other-bootstrap": Caller(arn=next(v for k, v in roles.items() if k != database), account=A,
                                  identity_allows=("secretsmanager:GetSecretValue", "kms:Decrypt")),
        # a service's task role: its access policy grants rds-db:connect only
        "task-role": Caller(arn=f"arn:aws:iam::{A}:role/auth-service-task", account=A, identity_allows=("rds-db:connect",)),
        "account-admin": Caller(arn=f"arn:aws:iam::{A}:role/AdministratorAccess", account=A, identity_allows=admin),
    }


def _via(caller: Caller, service: str) -> Caller:
    return Caller(arn=caller.arn, account=caller.account, identity_allows=caller.identity_allows,
                  context={"kms:ViaService": f"{service}.{REGION}.amazonaws.com", "kms:CallerAccount": A})


SECRET_TABLE = {
    # principal: (GetSecretValue, PutSecretValue, PutResourcePolicy, DeleteSecret); issue 20 denies every write
    # to all but the deployers and break-glass, so an account admin cannot plant a master password either
    "deployer": ("allow", "allow", "allow", "allow"),
    "break-glass": ("allow", "allow", "allow", "allow"),
    "bootstrap": ("allow", "deny", "deny", "deny"),
    "other-bootstrap": ("deny", "deny", "deny", "deny"),
    "task-role": ("deny", "deny", "deny", "deny"),
    "account-admin": ("deny", "deny", "deny", "deny"),
}
SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:PutResourcePolicy",
                  "secretsmanager:DeleteSecret")


def test_master_secret_decision_table(run):
    for policy in run.by_type("aws:secretsmanager/secretPolicy:SecretPolicy"):
        doc = json.loads(policy.inputs["policy"])
        database = policy.name.removesuffix("-master-secret-policy")
        callers = _callers(run, database)
        table = {who: tuple(decide(doc, callers[who], a, key_policy=False) for a in SECRET_ACTIONS) for who in SECRET_TABLE}
        assert table == SECRET_TABLE, database


KEY_TABLE = {
    # principal: (Decrypt direct, Decrypt via Secrets Manager, Decrypt via RDS, PutKeyPolicy, ScheduleKeyDeletion)
    "deployer": ("deny", "allow", "allow", "allow", "allow"),
    "break-glass": ("deny", "allow", "allow", "allow", "allow"),
    "bootstrap": ("deny", "allow", "deny", "deny", "deny"),
    "other-bootstrap": ("deny", "deny", "deny", "deny", "deny"),
    "task-role": ("deny", "deny", "deny", "deny", "deny"),
    "account-admin": ("deny", "allow", "allow", "allow", "allow"),
}


def test_database_key_decision_table(run):
    """The default key_admins (the account root) lets IAM decide who administers; use is only ever
    through the AWS services, and the bootstrap role's own decrypt only through Secrets Manager.
    (The secret's own deny still stops the account admin reading the secret: the table above.)"""
    for key in [k for k in run.by_type("aws:kms/key:Key") if k.inputs["tags"].get("bulkhead:role") == "key"]:
        doc = json.loads(key.inputs["policy"])
        callers = _callers(run, key.inputs["tags"]["bulkhead:database"])
        table = {}
        for who in KEY_TABLE:
            c = callers[who]
            table[who] = (decide(doc, c, "kms:Decrypt", key_policy=True),
                          decide(doc, _via(c, "secretsmanager"), "kms:Decrypt", key_policy=True),
                          decide(doc, _via(c, "rds"), "kms:Decrypt", key_policy=True),
                          decide(doc, c, "kms:PutKeyPolicy", key_policy=True),
                          decide(doc, c, "kms:ScheduleKeyDeletion", key_policy=True))
        # the bootstrap role's IAM policy allows kms:Decrypt; via RDS it is the root statement's
        # ViaService use, which IAM grants it: allow. Its table row says what its policy lets it reach.
        expected = dict(KEY_TABLE, bootstrap=("deny", "allow", "allow", "deny", "deny"),
                        **{"other-bootstrap": ("deny", "allow", "allow", "deny", "deny")})
        assert table == expected, key.name
        # AWS services: CloudWatch Logs, for this database's log groups only
        logs = f"logs.{REGION}.amazonaws.com"
        ident = json.dumps(doc).split("/aws/rds/instance/")[1].split("/")[0]
        own = Caller(arn=None, account=A, service=logs, context={
            "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{A}:log-group:/aws/rds/instance/{ident}/postgresql"})
        other = Caller(arn=None, account=A, service=logs, context={
            "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{A}:log-group:/aws/lambda/anything"})
        assert decide(doc, own, "kms:GenerateDataKey", key_policy=True) == "allow"
        assert decide(doc, other, "kms:GenerateDataKey", key_policy=True) == "deny"
        assert decide(doc, Caller(arn=None, account=A, service=f"rds.{REGION}.amazonaws.com"), "kms:Decrypt",
                      key_policy=True) == "deny", "RDS uses the key as the caller (ViaService), never as itself"


VAULT_TABLE = {
    # principal: (DeleteRecoveryPoint, UpdateRecoveryPointLifecycle, PutBackupVaultAccessPolicy, StartRestoreJob)
    "deployer": ("deny", "deny", "allow", "deny"),
    "break-glass": ("allow", "allow", "allow", "allow"),
    "task-role": ("deny", "deny", "deny", "deny"),
    "account-admin": ("deny", "deny", "deny", "deny"),
}
VAULT_ACTIONS = ("backup:DeleteRecoveryPoint", "backup:UpdateRecoveryPointLifecycle",
                 "backup:PutBackupVaultAccessPolicy", "backup:StartRestoreJob")


def test_backup_vault_decision_table(run):
    policies = run.by_type("aws:backup/vaultPolicy:VaultPolicy")
    assert len(policies) == 2
    callers = _callers(run, "auth")
    (backup_role,) = [r for r in run.by_type("aws:iam/role:Role") if "backup" in r.inputs.get("namePrefix", "")]
    for policy in policies:
        doc = json.loads(policy.inputs["policy"])
        table = {who: tuple(decide(doc, callers[who], a, key_policy=False) for a in VAULT_ACTIONS) for who in VAULT_TABLE}
        assert table == VAULT_TABLE, policy.name
        restore = Caller(arn=backup_role.outputs["arn"], account=A, identity_allows=("backup:StartRestoreJob",))
        assert decide(doc, restore, "backup:StartRestoreJob", key_policy=False) == "allow"


def test_the_table_names_the_configured_deployers():
    assert DEPLOYER in stack_config("prod")["bulkhead:deployers"]
