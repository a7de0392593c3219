"""The evaluator on AWS's documented examples (IAM User Guide "Policy evaluation logic", KMS
"Default key policy", Secrets Manager "Resource-based policies")."""

from __future__ import annotations

from tests.support.iam_eval import Caller, decide

ACCOUNT = "111122223333"
ALICE = Caller(arn=f"arn:aws:iam::{ACCOUNT}:user/Alice", account=ACCOUNT, identity_allows=("kms:*", "secretsmanager:*"))
BOB = Caller(arn=f"arn:aws:iam::{ACCOUNT}:user/Bob", account=ACCOUNT)
# KMS "Default key policy": the account root statement lets IAM policies grant access.
DEFAULT_KEY_POLICY = {"Statement": [{"Sid": "Enable IAM User Permissions", "Effect": "Allow",
                                     "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}]}


def test_default_key_policy_delegates_to_iam():
    assert decide(DEFAULT_KEY_POLICY, ALICE, "kms:Decrypt", key_policy=True) == "allow"
    assert decide(DEFAULT_KEY_POLICY, BOB, "kms:Decrypt", key_policy=True) == "deny"


def test_a_key_policy_without_the_root_ignores_iam():
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/Bob"},
                             "Action": "kms:Decrypt", "Resource": "*"}]}
    assert decide(policy, ALICE, "kms:Decrypt", key_policy=True) == "deny", "IAM alone never grants a key"
    assert decide(policy, BOB, "kms:Decrypt", key_policy=True) == "allow"


def test_explicit_deny_wins_over_any_allow():
    # Secrets Manager guide: deny everyone but one role with aws:PrincipalArn
    policy = {"Statement": [{"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "secretsmanager:GetSecretValue",
                             "Resource": "*", "Condition": {"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/Bob"}}}]}
    assert decide(policy, ALICE, "secretsmanager:GetSecretValue", key_policy=False) == "deny"
    assert decide(policy, BOB, "secretsmanager:GetSecretValue", key_policy=False) == "deny", "Bob has no IAM allow"
    bob = Caller(arn=BOB.arn, account=ACCOUNT, identity_allows=("secretsmanager:GetSecretValue",))
    assert decide(policy, bob, "secretsmanager:GetSecretValue", key_policy=False) == "allow"


def test_conditions_string_equals_and_bool():
    policy = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ALICE.arn}, "Action": "kms:CreateGrant", "Resource": "*",
                             "Condition": {"StringEquals": {"kms:ViaService": ["rds.us-east-1.amazonaws.com"]},
                                           "Bool": {"kms:GrantIsForAWSResource": "true"}}}]}
    ok = Caller(arn=ALICE.arn, account=ACCOUNT, context={"kms:ViaService": "rds.us-east-1.amazonaws.com",
                                                        "kms:GrantIsForAWSResource": True})
    assert decide(policy, ok, "kms:CreateGrant", key_policy=True) == "allow"
    direct = Caller(arn=ALICE.arn, account=ACCOUNT, context={"kms:GrantIsForAWSResource": True})
    assert decide(policy, direct, "kms:CreateGrant", key_policy=True) == "deny"
