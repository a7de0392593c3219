"""Issue 20, `auth: password`: another service reading the login secret.

The attack: worker-service's task role has secretsmanager:GetSecretValue and kms:Decrypt on *
(SecretsManagerReadWrite, PowerUserAccess, or a hand-written `secretsmanager:*`). In one account an
identity policy that allows is enough, so before this change it read app-service's login
password: the login secret's policy denied only writes. Reproduced below on the policy the stack
sent before (`owners=()`, the code on main) and refused on the planned one.
"""

from __future__ import annotations

import json

import pytest

from bulkhead.offline.mock_runtime import FAKE_ACCOUNT
from components.prod import key_policies
from tests.support.iam_eval import Caller, decide
from tests.support.program import run_stack

A = FAKE_ACCOUNT
REGION = "eu-west-1"
APP_TASK = f"arn:aws:iam::{A}:role/svc/app-service-task"
WORKER_TASK = f"arn:aws:iam::{A}:role/svc/worker-service-task"
DEPLOYER = f"arn:aws:iam::{A}:role/ci/bulkhead-ci"
ROOT_USER = f"arn:aws:iam::{A}:root"
READ = "secretsmanager:GetSecretValue"
BROAD = ("secretsmanager:*", "kms:Decrypt")


def _password(config):
    config["bulkhead:databases"]["app"]["auth"] = "password"
    config["bulkhead:owner_principals"] = {"app-service": [APP_TASK], "worker-service": [WORKER_TASK]}


@pytest.fixture(scope="module")
def run():
    return run_stack("prod", edit=_password)


def _login_policy(run) -> dict:
    (policy,) = [p for p in run.by_type("aws:secretsmanager/secretPolicy:SecretPolicy") if p.name == "app-login-secret-policy"]
    return json.loads(policy.inputs["policy"])


def _bootstrap(run, database: str) -> str:
    return next(r.outputs["arn"] for r in run.by_type("aws:iam/role:Role")
                if r.inputs.get("tags", {}).get("bulkhead:role") == "bootstrap"
                and r.inputs["tags"].get("bulkhead:database") == database)


def _callers(run) -> dict[str, Caller]:
    admin = ("*",)
    return {
        # app-service's task role: its access policy (access_policy_arn) allows reading its login secret
        "owner-task-role": Caller(arn=APP_TASK, account=A, identity_allows=(READ, "kms:Decrypt")),
        # the attacker: another service's role, allowed GetSecretValue on every secret by IAM
        "other-service-role": Caller(arn=WORKER_TASK, account=A, identity_allows=BROAD),
        "account-admin": Caller(arn=f"arn:aws:iam::{A}:role/AdministratorAccess", account=A, identity_allows=admin),
        "deployer": Caller(arn=DEPLOYER, account=A, identity_allows=admin),
        "break-glass": Caller(arn=ROOT_USER, account=A, identity_allows=admin),
        "bootstrap": Caller(arn=_bootstrap(run, "app"), account=A, identity_allows=(READ, "kms:Decrypt")),
        "other-bootstrap": Caller(arn=_bootstrap(run, "worker"), account=A, identity_allows=(READ, "kms:Decrypt")),
    }


# (GetSecretValue, PutSecretValue) on app's login secret
LOGIN_TABLE = {
    "owner-task-role": ("allow", "deny"),
    "other-service-role": ("deny", "deny"),
    "account-admin": ("deny", "deny"),
    "deployer": ("allow", "allow"),  # the provider reads back what it writes (secret_version.go)
    "break-glass": ("allow", "allow"),
    "bootstrap": ("allow", "deny"),
    "other-bootstrap": ("deny", "deny"),
}


def test_another_services_role_reads_the_login_secret_before_and_is_denied_after(run):
    callers = _callers(run)
    attacker = callers["other-service-role"]
    after = _login_policy(run)
    # before: the same policy as the stack wrote it on main (writes denied, reads left to IAM)
    before = key_policies.login_secret_policy(partition="aws", account=A, readers=[callers["bootstrap"].arn],
                                              break_glass=(), deployers=key_policies.deployer_principals([DEPLOYER]))
    assert decide(before, attacker, READ, key_policy=False) == "allow", "the attack, reproduced"
    assert decide(after, attacker, READ, key_policy=False) == "deny"


def test_login_secret_decision_table(run):
    doc = _login_policy(run)
    callers = _callers(run)
    table = {who: (decide(doc, callers[who], READ, key_policy=False),
                   decide(doc, callers[who], "secretsmanager:PutSecretValue", key_policy=False)) for who in LOGIN_TABLE}
    assert table == LOGIN_TABLE


def test_the_key_denies_decrypting_the_login_secret_to_the_same_principals(run):
    """Through Secrets Manager the key sees the secret's ARN in the encryption context (SecretARN);
    the master secret and every other use of the key (RDS, logs) are unchanged."""
    key = next(k for k in run.by_type("aws:kms/key:Key") if k.name == "app-key")
    doc = json.loads(key.inputs["policy"])
    login_arn = next(s for s in run.by_type("aws:secretsmanager/secret:Secret") if s.name == "app-login-secret").outputs["arn"]
    master_arn = next(s for s in run.by_type("aws:secretsmanager/secret:Secret") if s.name == "app-master-secret").outputs["arn"]
    callers = _callers(run)

    def via_sm(who: str, secret_arn: str) -> str:
        c = callers[who]
        caller = Caller(arn=c.arn, account=A, identity_allows=c.identity_allows, context={
            "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com", "kms:CallerAccount": A,
            "kms:EncryptionContext:SecretARN": secret_arn})
        return decide(doc, caller, "kms:Decrypt", key_policy=True)

    login = {who: via_sm(who, login_arn) for who in LOGIN_TABLE}
    assert login == {"owner-task-role": "allow", "other-service-role": "deny", "account-admin": "deny",
                     "deployer": "allow", "break-glass": "allow", "bootstrap": "allow", "other-bootstrap": "deny"}
    # the master secret: the key leaves it to the secret's own policy, as before
    assert via_sm("account-admin", master_arn) == "allow"
    # RDS uses the key without a SecretARN context: not affected
    rds = Caller(arn=callers["account-admin"].arn, account=A, identity_allows=("*",),
                 context={"kms:ViaService": f"rds.{REGION}.amazonaws.com", "kms:CallerAccount": A})
    assert decide(doc, rds, "kms:Decrypt", key_policy=True) == "allow"


def test_iam_databases_keys_are_unchanged(run):
    """Only an auth: password database's key gains the statement: no key-policy update for the others."""
    for key in run.by_type("aws:kms/key:Key"):
        sids = [s.get("Sid") for s in json.loads(key.inputs["policy"])["Statement"]] if key.inputs.get("policy") else []
        assert ("OnlyOwnerBootstrapDeployersAndBreakGlassDecryptTheLoginSecret" in sids) == (key.name == "app-key"), key.name
